#!/usr/bin/env python3
"""same_nat.py - ctest nat_lab_same_nat: two nodes behind ONE NAT box, and
two nodes on one host, connect directly over their host candidates (issue
19, goal 3), through the real librendezvous (nat_node) and rendezvousd.

  same_nat.py --rendezvousd PATH --nat-node PATH [--cases a,b] [--count N]

Cases (each with fresh boxes):
  portRestricted-lan  two node namespaces on the LAN bridge of one
                      portRestricted box (natlab add_shared_site): Direct
                      first (neither side symmetric).
  symmetric-lan       the same behind one symmetric box: both sides are
                      symmetric, which alone means "relay only" (PROTOCOL.md
                      14.6); with the same public IP they go relay first and
                      upgrade over their host candidates.
  portRestricted-host both nodes in ONE namespace behind a portRestricted
                      box (two nodes on one host; the server is not on
                      loopback, so no loopback candidate is offered).
  symmetric-host      the same behind a symmetric box (relay first, then
                      Direct over the host address).
  none-host           both nodes in one namespace on the public bridge (one
                      host without NAT).

Asserted per case:
  - the initiator's data came back intact (nat_node exit 0), and the
    listener exits 0; no sanitizer report;
  - the final path is Direct on both sides (first path Direct, or Relayed
    then Direct for symmetric-lan);
  - the address each side uses is the peer's host address: its private
    LAN address (lan cases) or the shared host address (host cases), never
    the box's public address (which the box does not hairpin anyway);
  - lan cases: at least N UDP datagrams each way crossed the box's LAN
    bridge between the two nodes (nft counters in a bridge table).
Reported, never asserted: the times, and the UDP datagrams nodes sent to
their box's public address (hairpin attempts: the checks probe every
candidate pair at once, the peer's public one included).
Exit 0 when every case passed, 1 otherwise, 77 (SKIP) without root.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import log  # noqa: E402
from matrix import Node, SANITIZER_MARKS, READY_TIMEOUT_MS  # noqa: E402

CASES = ("portRestricted-lan", "symmetric-lan", "portRestricted-host", "symmetric-host",
         "none-host")
CASE_TIMEOUT_S = 60
UPGRADE_WAIT_MS = 15000
LISTENER_EXIT_S = 10


def ip_of(addr):
    """"10.1.0.2:4000" -> "10.1.0.2" ("" for junk)."""
    return addr.rsplit(":", 1)[0].strip("[]") if addr and ":" in addr else ""


def run_case(lab, a, url, case):
    """Returns (failures, notes, line)."""
    box, where = case.split("-")
    fails, notes = [], []
    t0 = time.monotonic()
    if where == "lan":
        site = lab.add_shared_site(box, 2)
        ns_l, ns_i = site.node_nses[0], site.node_nses[1]
        ip_l, ip_i = site.node_ips[0], site.node_ips[1]
        lab.box_input_udp(site)  # starts the hairpin counter
    else:
        site = lab.add_site(box)
        ns_l = ns_i = site.node_ns
        ip_l = ip_i = site.node_ip
        if site.box_ns:
            lab.box_input_udp(site)
    stun = "%s:%d" % (natlab.SERVER_IP, natlab.STUN_PORT)
    common = [a.nat_node, "--server", url, "--stun", stun,
              "--ready-timeout-ms", str(READY_TIMEOUT_MS)]
    tag = case
    lst = con = None
    res = None
    try:
        lst = Node(lab, ns_l, common + ["--listen"],
                   os.path.join(lab.tmp, tag + ".listener.err"))
        con = Node(lab, ns_i, common + ["--connect", "-", "--count", str(a.count),
                                        "--upgrade-wait-ms", str(UPGRADE_WAIT_MS)],
                   os.path.join(lab.tmp, tag + ".initiator.err"))
        deadline = t0 + CASE_TIMEOUT_S
        ready = lst.wait_event("ready", time.monotonic() + READY_TIMEOUT_MS / 1000.0 + 5)
        if not ready or ready.get("timeout"):
            fails.append("listener not ready")
        else:
            con.write(ready["node"] + "\n")
            res = con.wait_event("result", deadline)
        rc_i = con.wait(max(1.0, deadline - time.monotonic()))
        lan = lab.lan_pair_counts(site, ip_i, ip_l) if where == "lan" else None
        hairpin = lab.box_input_udp(site) if site.box_ns else None
        lst.close_stdin()
        rc_l = lst.wait(LISTENER_EXIT_S)
        err_i, err_l = con.finish(), lst.finish()
        for role, err in (("initiator", err_i), ("listener", err_l)):
            if any(m in err for m in SANITIZER_MARKS):
                fails.append("%s: sanitizer report" % role)
        if rc_l != 0:
            fails.append("listener exit %s" % rc_l)
        if res is None:
            fails.append("initiator printed no result (exit %s)" % rc_i)
            return fails, notes, "%-20s FAIL no result" % case, (con, lst, err_i, err_l)
        if rc_i != 0 or res.get("error"):
            fails.append("initiator exit %s %s: sent %s intact %s" % (
                rc_i, res.get("error", ""), res.get("sent"), res.get("intact")))
        want_first = "Relayed" if box == "symmetric" else "Direct"
        if res.get("first_path") != want_first:
            fails.append("first path %s, want %s" % (res.get("first_path"), want_first))
        if res.get("final_path") != "Direct":
            fails.append("final path %s, want Direct (direct error: %s)" % (
                res.get("final_path"), res.get("direct_error")))
        if ip_of(res.get("remote")) != ip_l:
            fails.append("the initiator's direct path goes to %s, want the listener's host "
                         "address %s (public %s)" % (res.get("remote"), ip_l, site.public_ip))
        lpaths = [e for e in lst.events if e.get("event") == "path" and e.get("path") == "Direct"]
        if not lpaths:
            fails.append("the listener never reported a Direct path")
        elif ip_of(lpaths[-1].get("remote")) != ip_i:
            fails.append("the listener's direct path goes to %s, want the initiator's host "
                         "address %s" % (lpaths[-1].get("remote"), ip_i))
        if lan is not None:
            want = a.count * (2 if res.get("phase2") else 1)
            if min(lan) < want:
                fails.append("only %d/%d UDP datagrams crossed the LAN between the nodes "
                             "(want >= %d each way)" % (lan[0], lan[1], want))
        if hairpin is not None:
            notes.append("UDP to the box's public address from its LAN: %s (hairpin attempts; "
                         "not asserted)" % hairpin)
        line = "%-20s %s %sms%s remote %s%s (%.1f s)" % (
            case, res.get("first_path", "?")[0], res.get("first_ms"),
            "" if res.get("first_path") == "Direct" else
            "→D %sms" % res.get("direct_ms"), res.get("remote"),
            "" if lan is None else " lan %d/%d" % lan, time.monotonic() - t0)
        return fails, notes, line, (con, lst, err_i, err_l)
    finally:
        for n in (con, lst):
            if n is not None and n.p.poll() is None:
                n.p.kill()
                n.p.wait()
        lab.remove_site(site)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rendezvousd", required=True)
    ap.add_argument("--nat-node", required=True)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--count", type=int, default=50, help="datagrams per batch")
    a = ap.parse_args()
    cases = [c for c in a.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            log("unknown case", c)
            return 2
    rc = natlab.prepare((a.rendezvousd, a.nat_node))
    if rc is not None:
        return rc
    natlab.cleanup_stale()
    failed = 0
    with natlab.Lab() as lab:
        prefix = lab.prefix
        lab.setup_pub()
        url = lab.start_server(a.rendezvousd)
        for case in cases:
            try:
                fails, notes, line, procs = run_case(lab, a, url, case)
            except natlab.LabError as e:
                fails, notes, line, procs = ["lab error: %s" % e], [], "%-20s FAIL" % case, None
            log("case %s %s" % (line, "ok" if not fails else "FAIL"))
            for n in notes:
                log("     note: " + n)
            if fails:
                failed += 1
                for f in fails:
                    log("  - " + f)
                if procs:
                    con, lst, err_i, err_l = procs
                    for name, node, err in (("initiator", con, err_i), ("listener", lst, err_l)):
                        log("  %s stdout:" % name)
                        for ln in node.lines:
                            log("    " + ln)
                        for ln in err.strip().splitlines()[-20:]:
                            log("    " + ln)
        st = lab.stop_server()
        if st is not None and (st[0] != 0 or any(m in st[1] for m in SANITIZER_MARKS)):
            log("FAIL: rendezvousd exit %s" % st[0])
            failed += 1
    left = [ns for ns in natlab.list_netns() if ns.startswith(prefix)]
    if left:
        log("FAIL: namespaces left behind:", " ".join(left))
        failed += 1
    log("%d cases, %d failed" % (len(cases), failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except natlab.LabError as e:
        log("FAIL: lab setup: %s" % e)
        sys.exit(1)
