#!/usr/bin/env python3
"""fallback.py - ctest nat_lab_fallback: a direct path that stops answering
falls back to the relay, and comes back when it answers again (PROTOCOL.md
14.8), through the real librendezvous (nat_node) in the lab of natlab.py.

  fallback.py --rendezvousd PATH --nat-node PATH [options]

Two portRestricted sites (A initiator, B listener) and rendezvousd in pub,
as in a matrix cell. A runs `nat_node --connect - --stream-ms ...`: one
datagram every --interval-ms (20), B echoes each, A checks every echo byte
for byte. Then:
  1. the first path is Direct (both sides);
  2. after --hold-direct s, a table in A's box drops UDP between A's box wan
     address and B's box wan address, both directions (prerouting before
     conntrack for what comes in, postrouting after the snat for what goes
     out, so it covers forwarded and the box's own traffic); the WebSocket
     (TCP) and STUN to 203.0.113.1/.2 are untouched;
  3. both sides report Relayed (via Unknown allowed) within --relay-bound s
     of the block; echoes keep coming over the relay (--hold-relay s), and
     while blocked not one UDP datagram goes from A's box to B's box;
  4. the table is deleted; both sides report Direct again within
     --direct-bound s; echoes keep coming for --hold-direct s, over real
     site-to-site UDP (pub's bridge counters).
Data: every echo received is intact (no corrupt or unknown datagram); no
send fails; the datagram nat_node sends from cb_path when A's path goes
Unknown (between Direct and Relayed: A closed its relay leg 3 s after
Direct, before the block) is taken and echoed. A datagram may go missing
only when it was sent in a switch window:
[block - 1 s, both Relayed + 2 s] or [unblock, both Direct + 2 s]. Both
nat_node processes and rendezvousd exit 0 without a sanitizer report.
Times are asserted only against those upper bounds; the timeline is
printed. Exit 0 pass, 1 fail, 77 (with "SKIP: ...") when the machine cannot
run the lab. Namespaces are deleted on exit (natlab.Lab), also on failure.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import log  # noqa: E402
from matrix import Node, SANITIZER_MARKS  # noqa: E402

NAT = "portRestricted"
READY_TIMEOUT_MS = 15000
FIRST_PATH_S = 15              # rdv_session_connect -> first path (nat_node waits 10 s)
PRE_BLOCK_MARGIN_MS = 1000     # a loss this long before the block is a loss
POST_SWITCH_GRACE_MS = 2000    # in flight / the other side's switch
BLOCK_TABLE = "natlab_block"


def now_ms():
    return int(time.monotonic() * 1000)  # CLOCK_MONOTONIC, as nat_node's "t"


def block_ruleset(a_wan, b_wan):
    return ("table ip %s {\n"
            "  chain pre {\n"
            "    type filter hook prerouting priority raw; policy accept;\n"
            "    ip saddr %s ip daddr %s meta l4proto udp counter drop\n"
            "  }\n"
            "  chain post {\n"
            "    type filter hook postrouting priority 110; policy accept;\n"
            "    ip saddr %s ip daddr %s meta l4proto udp counter drop\n"
            "  }\n"
            "}\n" % (BLOCK_TABLE, b_wan, a_wan, a_wan, b_wan))


def block_counts(lab, site):
    """(dropped inbound, dropped outbound) packets of the block table."""
    r = lab.box_nft(site, "list", "table", "ip", BLOCK_TABLE, check=False)
    got = []
    for line in r.stdout.splitlines():
        if "counter packets" in line:
            got.append(int(line.split("counter packets")[1].split()[0]))
    return tuple(got) if len(got) == 2 else (-1, -1)


def paths_since(node, t_from):
    return [e for e in list(node.events)
            if e.get("event") == "path" and e.get("t", 0) >= t_from]


def wait_path(nodes, want, t_from, deadline):
    """Waits until every node reported path `want` at or after t_from.
    Returns {role: t} of those that did (missing roles: none by the deadline)."""
    got = {}
    while True:
        for role, node in nodes.items():
            if role not in got:
                for e in paths_since(node, t_from):
                    if e.get("path") == want:
                        got[role] = e["t"]
                        break
        if len(got) == len(nodes) or time.monotonic() >= deadline:
            return got
        if any(n.p.poll() is not None for n in nodes.values()):
            deadline = min(deadline, time.monotonic() + 0.5)  # a last look
        time.sleep(0.02)


def last_stream(node):
    for e in reversed(list(node.events)):
        if e.get("event") == "stream":
            return e
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rendezvousd", required=True)
    ap.add_argument("--nat-node", required=True)
    ap.add_argument("--interval-ms", type=int, default=20)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--hold-direct", type=float, default=4.0,
                    help="seconds of streaming on the direct path before the block and "
                         "after the return")
    ap.add_argument("--hold-relay", type=float, default=5.0,
                    help="seconds of streaming over the relay before the unblock")
    ap.add_argument("--relay-bound", type=float, default=25.0)
    ap.add_argument("--direct-bound", type=float, default=40.0)
    ap.add_argument("--keepalive-ms", type=int, default=0, help="0: library default")
    a = ap.parse_args()
    rc = natlab.prepare((a.rendezvousd, a.nat_node))
    if rc is not None:
        return rc
    natlab.cleanup_stale()

    fails = []
    tl = {}                    # timeline, CLOCK_MONOTONIC ms
    res = None
    out = {}
    server_fail = None
    stream_ms = int((2 * a.hold_direct + a.hold_relay + a.relay_bound + a.direct_bound + 30)
                    * 1000)
    with natlab.Lab() as lab:
        prefix = lab.prefix
        lab.setup_pub()
        url = lab.start_server(a.rendezvousd)
        site_b = lab.add_site(NAT)
        site_a = lab.add_site(NAT)
        watch = lab.watch_pair(site_a, site_b)
        log("rendezvousd at %s; A (initiator) %s behind %s, B (listener) %s behind %s" %
            (url, NAT, site_a.public_ip, NAT, site_b.public_ip))
        common = [a.nat_node, "--server", url,
                  "--stun", "%s:%d" % (natlab.SERVER_IP, natlab.STUN_PORT),
                  "--ready-timeout-ms", str(READY_TIMEOUT_MS)]
        if a.keepalive_ms:
            common += ["--keepalive-ms", str(a.keepalive_ms)]
        lst = Node(lab, site_b.node_ns, common + ["--listen"],
                   os.path.join(lab.tmp, "B.listener.err"))
        con = Node(lab, site_a.node_ns,
                   common + ["--connect", "-", "--stream-ms", str(stream_ms),
                             "--interval-ms", str(a.interval_ms), "--size", str(a.size)],
                   os.path.join(lab.tmp, "A.initiator.err"))
        nodes = {"A": con, "B": lst}
        blocked = False
        try:
            ready_by = time.monotonic() + READY_TIMEOUT_MS / 1000.0 + 5
            ready = {}
            for role, node in (("B", lst), ("A", con)):
                ev = node.wait_event("ready", ready_by)
                if ev is None or ev.get("timeout"):
                    raise AssertionError("%s not ready: %s" % (role, ev))
                if ev.get("nat") != NAT:
                    raise AssertionError("%s reports nat %s, want %s" % (role, ev.get("nat"), NAT))
                ready[role] = ev
            con.write(ready["B"]["node"] + "\n")

            # 1. first path Direct, on both sides
            first = wait_path(nodes, "Direct", 0, time.monotonic() + FIRST_PATH_S)
            fp = [e for e in con.events if e.get("event") == "path"]
            if not fp or fp[0].get("path") != "Direct":
                raise AssertionError("first path %s, want Direct" %
                                     (fp[0].get("path") if fp else "none"))
            if len(first) != 2:
                raise AssertionError("no Direct path on %s" %
                                     ", ".join(r for r in nodes if r not in first))
            tl["direct1"] = max(first.values())
            time.sleep(a.hold_direct)
            st = last_stream(con)
            if not st or st.get("intact", 0) <= 0:
                raise AssertionError("no echoes on the direct path (stream %s)" % st)

            # 2. block the direct path in A's box
            tl["block"] = now_ms()
            lab.box_nft(site_a, "-f", "-", input=block_ruleset(site_a.public_ip,
                                                                site_b.public_ip))
            blocked = True
            log("t=%.1fs blocked UDP %s <-> %s in %s" %
                ((tl["block"] - tl["direct1"]) / 1000.0, site_a.public_ip, site_b.public_ip,
                 site_a.box_ns))

            # 3. both sides Relayed within the bound, then echoes over the relay
            rel = wait_path(nodes, "Relayed", tl["block"],
                            time.monotonic() + a.relay_bound)
            for role in nodes:
                if role in rel:
                    tl["relayed_" + role] = rel[role]
            if len(rel) != 2:
                raise AssertionError("no Relayed path within %.0f s of the block on %s "
                                     "(path events since the block: %s)" % (
                                         a.relay_bound,
                                         ", ".join(r for r in nodes if r not in rel),
                                         {r: [e.get("path") for e in paths_since(n, tl["block"])]
                                          for r, n in nodes.items()}))
            tl["relayed"] = max(rel.values())
            for role, node in nodes.items():
                seq = [e.get("path") for e in paths_since(node, tl["block"])
                       if e["t"] <= rel[role]]
                if any(p not in ("Unknown", "Relayed") for p in seq):
                    fails.append("%s: path events between the block and Relayed: %s" %
                                 (role, seq))
            time.sleep(max(0.0, (tl["relayed"] + POST_SWITCH_GRACE_MS - now_ms()) / 1000.0))
            tl["relay_hold"] = now_ms()
            wire0 = lab.pair_counts(watch)
            time.sleep(a.hold_relay)
            wire1 = lab.pair_counts(watch)
            tl["dropped"] = block_counts(lab, site_a)

            # 4. unblock: Direct again within the bound
            tl["unblock"] = now_ms()
            lab.box_nft(site_a, "delete", "table", "ip", BLOCK_TABLE)
            blocked = False
            for role, node in nodes.items():
                back = [e.get("path") for e in paths_since(node, tl["block"])
                        if e["t"] < tl["unblock"]]
                if "Direct" in back:
                    fails.append("%s reported Direct while the path was blocked: %s" %
                                 (role, back))
            if wire1[0] - wire0[0] != 0:
                fails.append("while blocked, %d UDP datagrams still went from A's box to "
                             "B's box" % (wire1[0] - wire0[0]))
            dr = wait_path(nodes, "Direct", tl["unblock"], time.monotonic() + a.direct_bound)
            for role in nodes:
                if role in dr:
                    tl["direct2_" + role] = dr[role]
            if len(dr) != 2:
                raise AssertionError("not Direct again within %.0f s of the unblock on %s "
                                     "(path events since the unblock: %s)" % (
                                         a.direct_bound,
                                         ", ".join(r for r in nodes if r not in dr),
                                         {r: [e.get("path") for e in
                                              paths_since(n, tl["unblock"])]
                                          for r, n in nodes.items()}))
            tl["direct2"] = max(dr.values())
            time.sleep(max(0.0, (tl["direct2"] + POST_SWITCH_GRACE_MS - now_ms()) / 1000.0))
            wire2 = lab.pair_counts(watch)
            t_w2 = now_ms()
            time.sleep(a.hold_direct)
            wire3 = lab.pair_counts(watch)
            t_w3 = now_ms()
            want = int((t_w3 - t_w2) / a.interval_ms * 0.5)
            if min(wire3[0] - wire2[0], wire3[1] - wire2[1]) < want:
                fails.append("back on Direct, but only %d/%d UDP datagrams went between the "
                             "sites in %.1f s (want >= %d each way)" % (
                                 wire3[0] - wire2[0], wire3[1] - wire2[1],
                                 (t_w3 - t_w2) / 1000.0, want))
            for role, node in nodes.items():
                after = [e.get("path") for e in paths_since(node, dr[role] + 1)]
                if after:
                    fails.append("%s: path changed again after Direct: %s" % (role, after))
        except AssertionError as e:
            fails.append(str(e))
        except natlab.LabError as e:
            fails.append("lab error: %s" % e)
        finally:
            if blocked:
                lab.box_nft(site_a, "delete", "table", "ip", BLOCK_TABLE, check=False)
            con.write("stop\n")
            res = con.wait_event("result", time.monotonic() + 10)
            rc_a = con.wait(10)
            lst.close_stdin()
            rc_b = lst.wait(10)
            out["A"] = (con.lines, con.finish(), rc_a)
            out["B"] = (lst.lines, lst.finish(), rc_b)
        st = lab.stop_server()
        if st is not None:
            rc, text = st
            if rc != 0 or any(m in text for m in SANITIZER_MARKS):
                server_fail = "rendezvousd exit status %s%s" % (
                    rc, ", sanitizer report" if any(m in text for m in SANITIZER_MARKS) else "")
                log(text[-6000:])
    left = [ns for ns in natlab.list_netns() if ns.startswith(prefix)]

    # ---- data and processes ----
    for role, (lines, err, rc) in out.items():
        if any(m in err for m in SANITIZER_MARKS):
            fails.append("%s: sanitizer report on stderr" % role)
    if out["B"][2] != 0:
        fails.append("listener exit status %s" % out["B"][2])
    if res is None or res.get("mode") != "stream":
        fails.append("initiator printed no stream result (exit %s)" % out["A"][2])
    else:
        if res.get("corrupt") or res.get("corrupt_unknown"):
            fails.append("corrupt echoes: %s (unknown %s)" %
                         (res.get("corrupt"), res.get("corrupt_unknown")))
        if res.get("stop") != "stdin":
            fails.append("the stream ended early (%s; closed %s %s)" %
                         (res.get("stop"), res.get("closed"), res.get("close_reason")))
        windows = []
        if "block" in tl:
            windows.append((tl["block"] - PRE_BLOCK_MARGIN_MS,
                            tl.get("relayed", tl["block"] + 10 ** 9) + POST_SWITCH_GRACE_MS))
        if "unblock" in tl:
            windows.append((tl["unblock"],
                            tl.get("direct2", tl["unblock"] + 10 ** 9) + POST_SWITCH_GRACE_MS))
        lost_in = [0] * len(windows)
        lost_out = []
        for e in con.events:
            if e.get("event") != "missing":
                continue
            n = e["to"] - e["from"] + 1
            for i, (w0, w1) in enumerate(windows):
                if w0 <= e["t_from"] and e["t_to"] <= w1:
                    lost_in[i] += n
                    break
            else:
                lost_out.append(e)
        if lost_out:
            fails.append("%d runs of datagrams lost outside the switch windows, e.g. %s" %
                         (len(lost_out), lost_out[:3]))
        # Between the paths: A's relay leg was closed (hold_direct > the 3 s
        # linger), so its fallback passes Unknown, and the datagram nat_node
        # sends from that cb_path must be taken (held) and echoed intact.
        if not res.get("gap_sends"):
            fails.append("the initiator's path never went Unknown: no datagram was sent "
                         "between the paths (paths %s)" % res.get("paths"))
        if res.get("gap_send_errors"):
            fails.append("%d of %d datagrams sent between the paths were refused" %
                         (res.get("gap_send_errors"), res.get("gap_sends")))
        if res.get("send_errors"):
            fails.append("%d stream sends failed (the application must not notice the "
                         "path changes)" % res.get("send_errors"))
        for seq in res.get("gap_seqs", []):
            for e in con.events:
                if e.get("event") == "missing" and e["from"] <= seq <= e["to"]:
                    fails.append("datagram %d, sent between the paths, never came back" % seq)
        relay_steady = 0
        if "relay_hold" in tl and "unblock" in tl:
            relay_steady = int((tl["unblock"] - tl["relay_hold"]) / a.interval_ms)
        tl["lost"] = lost_in
        log("data: sent %s, intact %s, missing %s (in the switch windows %s), corrupt %s, "
            "dups %s, send errors %s; ~%d sent over the relay while blocked; %s sent "
            "between the paths (seqs %s), %s refused" % (
                res.get("sent"), res.get("intact"), res.get("missing"),
                "/".join(str(x) for x in lost_in), res.get("corrupt"), res.get("dups"),
                res.get("send_errors"), relay_steady, res.get("gap_sends"),
                res.get("gap_seqs"), res.get("gap_send_errors")))
    if server_fail:
        fails.append(server_fail)
    if left:
        fails.append("namespaces left behind: " + " ".join(left))

    # ---- timeline ----
    if "direct1" in tl:
        t0 = tl["direct1"]

        def at(k):
            return "%7.2f s" % ((tl[k] - t0) / 1000.0) if k in tl else "      -  "
        log("")
        log("timeline (s since both sides Direct):")
        log("  block                %s" % at("block"))
        log("  Relayed on A         %s%s" % (at("relayed_A"), "  (+%.2f s after the block)" % (
            (tl["relayed_A"] - tl["block"]) / 1000.0) if "relayed_A" in tl else ""))
        log("  Relayed on B         %s%s" % (at("relayed_B"), "  (+%.2f s after the block)" % (
            (tl["relayed_B"] - tl["block"]) / 1000.0) if "relayed_B" in tl else ""))
        log("  unblock              %s%s" % (at("unblock"), "  (dropped in/out %s)" % (
            tl["dropped"],) if "dropped" in tl else ""))
        log("  Direct again on A    %s%s" % (at("direct2_A"), "  (+%.2f s after the unblock)" % (
            (tl["direct2_A"] - tl["unblock"]) / 1000.0) if "direct2_A" in tl else ""))
        log("  Direct again on B    %s%s" % (at("direct2_B"), "  (+%.2f s after the unblock)" % (
            (tl["direct2_B"] - tl["unblock"]) / 1000.0) if "direct2_B" in tl else ""))
        log("")
    for role in ("A", "B"):
        evs = [l for l in out.get(role, ([], "", None))[0] if '"event":"path"' in l]
        log("%s path events: %s" % (role, "; ".join(evs)))
    if fails:
        for role in ("A", "B"):
            if role not in out:
                continue
            lines, err, rc = out[role]
            log("---- %s (%s) exit %s, stdout (stream lines left out):" %
                (role, "initiator" if role == "A" else "listener", rc))
            for ln in lines:
                if '"event":"stream"' not in ln:
                    log("    " + ln)
            tail = err.strip().splitlines()[-30:]
            if tail:
                log("  stderr (last %d lines):" % len(tail))
                for ln in tail:
                    log("    " + ln)
        for f in fails:
            log("FAIL:", f)
        return 1
    log("PASS: direct -> relayed -> direct, every echo intact")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except natlab.LabError as e:
        log("FAIL: lab setup: %s" % e)
        sys.exit(1)
