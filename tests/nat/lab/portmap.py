#!/usr/bin/env python3
"""portmap.py - ctest nat_lab_portmap: librendezvous's port mapping
(client/nat/portmap.h) against Debian's miniupnpd in the lab's boxes
(natlab.py add_site(T, portmap=...)), with the real nat_node and
rendezvousd.

  portmap.py --rendezvousd PATH --nat-node PATH

Cases (two symmetric NATs each: without a mapping they stay relayed):
  natpmp    the listener's box speaks NAT-PMP only; the listener asks for
            a 4 s lease. Asserted: it reports a NAT-PMP mapping at its box's
            public address, the box has that DNAT rule, the initiator's
            session goes Relayed -> Direct, the lease is renewed (>= 3
            renewals in 2.5 lifetimes, the same public port, the rule still
            there when miniupnpd would have expired it), and once the
            listener exits the box has no mapping left (deleted on close).
  upnp      the initiator's box speaks UPnP-IGD only (the other side maps):
            a UPnP mapping, Relayed -> Direct, nothing left after exit.
  off       both boxes map but both nodes run with --no-portmap
            (cfg.portmap_disable): no mapping requested (the boxes' rule
            lists stay empty, miniupnpd logs no request), the session stays
            relayed.
  bad_gateway  a fake NAT-PMP gateway (fake_natpmp.py) in a box answers
            wrongly: garbage, truncated, refused (result code 2), a mapping
            of another port, lifetime 0, public address 0.0.0.0, a wrong
            opcode, a wrong version. Each time the node reports no mapping
            and why (NAT-PMP), offers no mapped address, and exits cleanly.
Exit 0 when every case passed, 1 otherwise, 77 ("SKIP: ...") when the
machine cannot run the lab.
"""
import argparse
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import log  # noqa: E402
from matrix import Node, SANITIZER_MARKS  # noqa: E402

LEASE_S = 4                    # short enough to see renewals
HOLD_S = 2.5 * LEASE_S         # listener kept after ready: 2.5 lifetimes
READY_S = 25                   # ready (discovery + port mapping)
RESULT_S = 40
EXIT_S = 10
UPGRADE_WAIT_MS = 15000
SYM_SYM_WAIT_MS = 3000


class Case:
    def __init__(self, name):
        self.name = name
        self.failures = []
        self.notes = []

    def check(self, ok, msg):
        if not ok:
            self.failures.append(msg)
        return ok


def node_argv(a, url, extra):
    return [a.nat_node, "--server", url, "--stun", "%s:%d" % (natlab.SERVER_IP, natlab.STUN_PORT),
            "--ready-timeout-ms", "15000", "--portmap-wait-ms", "8000"] + extra


def check_mapping(case, lab, site, ready, proto, role):
    """The node reported a mapping by proto at its box's public address and
    the box holds it."""
    case.check(ready.get("portmap") == proto, "%s: portmap %r (%s), want %s" %
               (role, ready.get("portmap"), ready.get("portmap_status"), proto))
    pub = ready.get("portmap_public", "")
    case.check(pub.startswith(site.public_ip + ":"), "%s: mapped address %r is not on its box's "
               "public address %s" % (role, pub, site.public_ip))
    rules = lab.box_mappings(site) or []
    port = pub.rsplit(":", 1)[-1]
    case.check(any(("dport %s " % port) in r and site.node_ip in r for r in rules),
               "%s: the box has no DNAT rule for %s (rules %s)" % (role, pub, rules))
    return pub


def run_pair(lab, a, url, init_site, resp_site, init_extra, resp_extra, up_wait, tag):
    """Starts the listener (resp) and the initiator; returns (lst, con,
    ready_r, ready_i) after both are ready and the initiator got the ID."""
    lst = Node(lab, resp_site.node_ns, node_argv(a, url, resp_extra + ["--listen"]),
               os.path.join(lab.tmp, tag + ".listener.err"))
    con = Node(lab, init_site.node_ns,
               node_argv(a, url, init_extra + ["--connect", "-", "--count", "20",
                                               "--upgrade-wait-ms", str(up_wait)]),
               os.path.join(lab.tmp, tag + ".initiator.err"))
    by = time.monotonic() + READY_S
    ready_r = lst.wait_event("ready", by) or {}
    ready_i = con.wait_event("ready", by) or {}
    if ready_r.get("node"):
        con.write(ready_r["node"] + "\n")
    return lst, con, ready_r, ready_i


def finish(case, node, role, stdin_eof=False):
    if stdin_eof:
        node.close_stdin()
    rc = node.wait(EXIT_S if stdin_eof else RESULT_S)
    err = node.finish()
    case.check(rc == 0, "%s exit status %s" % (role, "killed" if rc is None else rc))
    case.check(not any(m in err for m in SANITIZER_MARKS), "%s: sanitizer report" % role)
    if rc != 0:
        case.notes.append("%s stdout: %s" % (role, " | ".join(node.lines[-8:])))
        case.notes.append("%s stderr: %s" % (role, " | ".join(err.strip().splitlines()[-8:])))


def case_natpmp(lab, a, url):
    c = Case("natpmp: listener maps (NAT-PMP), lease renewed, deleted on close")
    r = lab.add_site("symmetric", portmap="natpmp")
    i = lab.add_site("symmetric")
    lst = con = None
    try:
        lst, con, ready_r, ready_i = run_pair(
            lab, a, url, i, r, [], ["--portmap-lease-s", str(LEASE_S)], UPGRADE_WAIT_MS, "natpmp")
        t_ready = time.monotonic()
        pub = check_mapping(c, lab, r, ready_r, "natpmp", "listener")
        c.check(ready_r.get("portmap_lifetime_s") == LEASE_S, "listener: lifetime %r, want %d" %
                (ready_r.get("portmap_lifetime_s"), LEASE_S))
        c.check(ready_i.get("portmap") == "", "initiator: a mapping without a mapping box: %r" %
                ready_i.get("portmap"))
        res = con.wait_event("result", time.monotonic() + RESULT_S) or {}
        c.check(res.get("first_path") == "Relayed" and res.get("final_path") == "Direct" and
                res.get("upgraded") == 1, "session: first %s final %s upgraded %s (want Relayed "
                "-> Direct through the mapping; %s)" % (res.get("first_path"), res.get("final_path"),
                                                        res.get("upgraded"), res.get("direct_error")))
        finish(c, con, "initiator")
        time.sleep(max(0.0, HOLD_S - (time.monotonic() - t_ready)))
        events = [e for e in lst.events if e.get("event") == "portmap"]
        last = events[-1] if events else {}
        c.check(last.get("renewals", 0) >= 3, "renewals %s in %.0f s with a %d s lease (want >= 3)" %
                (last.get("renewals"), HOLD_S, LEASE_S))
        c.check(all(e.get("public") == pub for e in events), "the mapped address changed: %s" %
                [e.get("public") for e in events])
        c.check(len(lab.box_mappings(r) or []) == 1, "after %.0f s (%d s lease) the box holds %s "
                "(want the renewed mapping)" % (HOLD_S, LEASE_S, lab.box_mappings(r)))
        finish(c, lst, "listener", stdin_eof=True)
        lst = None
        c.check(lab.box_mappings(r) == [], "after the listener exited the box still maps: %s" %
                lab.box_mappings(r))
        c.check("mapping removed" in lab.miniupnpd_text(r),
                "miniupnpd logged no removal (deleted by us, not expired)")
    finally:
        for n in (con, lst):
            if n is not None and n.p.poll() is None:
                n.finish()
        lab.remove_site(i)
        lab.remove_site(r)
    return c


def case_upnp(lab, a, url):
    c = Case("upnp: initiator maps (UPnP-IGD), direct, deleted on close")
    r = lab.add_site("symmetric")
    i = lab.add_site("symmetric", portmap="upnp")
    lst = con = None
    try:
        lst, con, ready_r, ready_i = run_pair(lab, a, url, i, r, ["--portmap-lease-s", "60"], [],
                                              UPGRADE_WAIT_MS, "upnp")
        check_mapping(c, lab, i, ready_i, "upnp", "initiator")
        res = con.wait_event("result", time.monotonic() + RESULT_S) or {}
        c.check(res.get("final_path") == "Direct" and res.get("upgraded") == 1,
                "session: first %s final %s upgraded %s (%s)" % (
                    res.get("first_path"), res.get("final_path"), res.get("upgraded"),
                    res.get("direct_error")))
        finish(c, con, "initiator")
        con = None
        c.check(lab.box_mappings(i) == [], "after the initiator exited its box still maps: %s" %
                lab.box_mappings(i))
        finish(c, lst, "listener", stdin_eof=True)
        lst = None
    finally:
        for n in (con, lst):
            if n is not None and n.p.poll() is None:
                n.finish()
        lab.remove_site(i)
        lab.remove_site(r)
    return c


def case_off(lab, a, url):
    c = Case("off: --no-portmap asks no gateway; symmetric<->symmetric stays relayed")
    r = lab.add_site("symmetric", portmap=True)
    i = lab.add_site("symmetric", portmap=True)
    lst = con = None
    try:
        lst, con, ready_r, ready_i = run_pair(lab, a, url, i, r, ["--no-portmap"], ["--no-portmap"],
                                              SYM_SYM_WAIT_MS, "off")
        for role, ev in (("listener", ready_r), ("initiator", ready_i)):
            c.check(ev.get("portmap") == "" and str(ev.get("portmap_status", "")).startswith("off"),
                    "%s: portmap %r status %r (want none, off)" %
                    (role, ev.get("portmap"), ev.get("portmap_status")))
        res = con.wait_event("result", time.monotonic() + RESULT_S) or {}
        c.check(res.get("final_path") == "Relayed" and res.get("upgraded") == 0,
                "session: first %s final %s (want relayed only)" %
                (res.get("first_path"), res.get("final_path")))
        finish(c, con, "initiator")
        con = None
        finish(c, lst, "listener", stdin_eof=True)
        lst = None
        for s in (r, i):
            c.check(lab.box_mappings(s) == [], "box %s maps: %s" % (s.box_ns, lab.box_mappings(s)))
            text = lab.miniupnpd_text(s)
            c.check("port mapping request" not in text and "AddPortMapping" not in text and
                    "NAT-PMP request received" not in text,
                    "miniupnpd of %s was asked anyway" % s.box_ns)
    finally:
        for n in (con, lst):
            if n is not None and n.p.poll() is None:
                n.finish()
        lab.remove_site(i)
        lab.remove_site(r)
    return c


FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_natpmp.py")
BAD_MODES = ("garbage", "short", "refused", "otherport", "zerolife", "zeroaddr", "wrongop",
             "version")
MAPPING_ASKED = ("refused", "otherport", "zerolife")  # the address answer was right


def case_bad_gateway(lab, a, url):
    c = Case("bad_gateway: wrong NAT-PMP answers -> no mapping, no crash")
    for mode in BAD_MODES:
        s = lab.add_site("portRestricted")
        node = None
        try:
            flog = os.path.join(lab.tmp, "fake_%s.log" % mode)
            lab.popen(s.box_ns, [sys.executable, FAKE, mode, flog],
                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (
                    os.path.exists(flog) and "ready" in open(flog).read()):
                time.sleep(0.05)
            node = Node(lab, s.node_ns, node_argv(a, url, ["--listen"]),
                        os.path.join(lab.tmp, "bad_%s.err" % mode))
            ready = node.wait_event("ready", time.monotonic() + READY_S) or {}
            status = str(ready.get("portmap_status", ""))
            c.notes.append("%s: %s" % (mode, status))
            c.check(ready.get("node") and ready.get("portmap") == "" and
                    ready.get("portmap_public") == "",
                    "%s: ready %s portmap %r public %r (want ready, no mapping)" %
                    (mode, bool(ready.get("node")), ready.get("portmap"),
                     ready.get("portmap_public")))
            c.check(status.startswith("no mapping: NAT-PMP:"),
                    "%s: status %r (want the NAT-PMP failure)" % (mode, status))
            text = open(flog).read() if os.path.exists(flog) else ""
            c.check("req op=0" in text, "%s: the fake gateway saw no request" % mode)
            if mode in MAPPING_ASKED:
                c.check("req op=1" in text, "%s: no mapping request after a right address "
                        "answer" % mode)
            finish(c, node, "node (%s)" % mode, stdin_eof=True)
            node = None
        finally:
            if node is not None and node.p.poll() is None:
                node.finish()
            lab.remove_site(s)
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rendezvousd", required=True)
    ap.add_argument("--nat-node", required=True)
    ap.add_argument("--cases", default="natpmp,upnp,off,bad_gateway")
    a = ap.parse_args()
    rc = natlab.prepare((a.rendezvousd, a.nat_node, natlab.MINIUPNPD))
    if rc is not None:
        return rc
    natlab.cleanup_stale()
    cases = {"natpmp": case_natpmp, "upnp": case_upnp, "off": case_off,
             "bad_gateway": case_bad_gateway}
    done = []
    t0 = time.monotonic()
    with natlab.Lab() as lab:
        prefix = lab.prefix
        lab.setup_pub()
        url = lab.start_server(a.rendezvousd)
        for name in [x for x in a.cases.split(",") if x]:
            t = time.monotonic()
            try:
                c = cases[name](lab, a, url)
            except natlab.LabError as e:
                c = Case(name)
                c.failures.append("lab error: %s" % e)
            done.append(c)
            log("case %-60s %s (%.1f s)" % (c.name, "ok" if not c.failures else "FAIL",
                                            time.monotonic() - t))
            for f in c.failures:
                log("  - " + f)
            for n in c.notes:
                log("    " + n)
        st = lab.stop_server()
        server_bad = st is not None and (st[0] != 0 or any(m in st[1] for m in SANITIZER_MARKS))
    left = [ns for ns in natlab.list_netns() if ns.startswith(prefix)]
    if server_bad:
        log("FAIL: rendezvousd exit status %s or sanitizer report" % st[0])
    if left:
        log("FAIL: namespaces left behind:", " ".join(left))
    passed = sum(1 for c in done if not c.failures)
    log("%d passed, %d failed (%.0f s)" % (passed, len(done) - passed, time.monotonic() - t0))
    return 0 if passed == len(done) and not server_bad and not left else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except natlab.LabError as e:
        log("FAIL: lab setup: %s" % e)
        sys.exit(1)
