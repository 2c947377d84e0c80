#!/usr/bin/env python3
"""matrix.py - ctest nat_lab_matrix: every pair of NAT types through the
real librendezvous (nat_node) and rendezvousd, in the lab of natlab.py.

  matrix.py --rendezvousd PATH --nat-node PATH [options]

For every ordered pair (initiator type, responder type) of fullCone,
restrictedCone, portRestricted, symmetric and none (no NAT) - 25 cells -
with fresh sites (new NAT boxes: fresh conntrack and nft state) per cell:
the responder runs `nat_node --listen` behind a box of its type, the
initiator `nat_node --connect` behind another; both start at once, the
initiator gets the listener's node ID on stdin once the listener is ready.
rendezvousd (one for the run) is in the pub namespace.

Asserted per cell:
  - each node's reported NAT type is the emulated one (none: "fullCone"
    with no_nat 1; behind a box no_nat 0);
  - first path Direct when neither side is symmetric, Relayed when one is
    (a symmetric<->cone cell whose direct path won the race against the
    relay leg fails, unless --allow-direct-first);
  - every datagram came back intact (nat_node exit 0: N datagrams of S
    bytes echoed and compared byte for byte, and N more after an upgrade);
  - symmetric <-> cone or none: an upgrade to Direct within
    --upgrade-wait-ms (--no-require-upgrade turns this off);
  - a Direct path is real: at least N UDP datagrams each way were bridged
    between the two sites' public addresses in pub (nft counters), per
    batch sent on the direct path;
  - both nat_node processes exit 0 with no sanitizer report.
  - each node's natMethod names the behaviours of its box in RFC 4787
    terms (METHOD_WANT; PROTOCOL.md 13.1).
With --portmap [both|natpmp|upnp] the boxes also run miniupnpd (natlab.py;
--portmap-side init / resp: only that side's box), each node waits for its
port mapping before it is ready, and a symmetric<->symmetric cell where a
box maps must upgrade to Direct like symmetric<->cone (relay first; the
nodes meet at the mapped address); every mapping side must report one.
With --fresh the initiator is a fresh node (nat_node --fresh): it starts
once the listener is ready and connects as soon as it is AUTHENTICATED,
without waiting for NAT discovery; its type is checked when discovery has
ended. Asserted then (behind restrictedCone, portRestricted and symmetric
boxes, whose filtering tests wait 1250 ms for answers the box never lets
through): the offer did not wait for the filtering result, i.e. the
listener got the request before the initiator's discovery ended. Only
asserted when the connect came at least FRESH_MARGIN_MS before the end of
discovery (else noted): a loaded machine must not fail it, and without the
behaviour the request always comes after the end.
Reported, never asserted: time to connect against the goals (direct <= 1 s,
relayed <= 3 s), an upgrade between two symmetric NATs, peer_nat mismatches;
per cell the time to the first path and to the direct path (since
rdv_session_connect(), and with --fresh since the client started).

Prints the matrix (rows initiator, columns responder; "D 120ms",
"R 45ms→D 900ms", "FAIL ..."), the medians, and "N cells, M passed";
exit 1 on any failure, 77 (with "SKIP: ...") when the machine cannot run
the lab (not root, no namespaces, no nft).
"""
import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
import wanreport  # noqa: E402
from natlab import log  # noqa: E402

TYPES = ["fullCone", "restrictedCone", "portRestricted", "symmetric", "none"]
SHORT = {"fullCone": "full", "restrictedCone": "restr", "portRestricted": "portR",
         "symmetric": "sym", "none": "none"}
READY_TIMEOUT_MS = 15000       # nat_node --ready-timeout-ms
CELL_TIMEOUT_S = 75            # hard bound per cell (then everything is killed)
BUDGET_S = 520                 # whole run (ctest TIMEOUT is 600): later cells
                               # are reported as not run, the report still prints
LISTENER_EXIT_S = 10           # after stdin EOF
DIRECT_GOAL_MS = 1000
RELAYED_GOAL_MS = 3000
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
FRESH_MARGIN_MS = 500          # --fresh: connect this long before discovery
                               # ended, or the offer check is only noted
FILTERING_BOXES = ("restrictedCone", "portRestricted", "symmetric")
# natMethod of each box type (PROTOCOL.md 13.1): substrings that must occur.
METHOD_WANT = {
    "fullCone": ("mapping endpoint-independent (alternate IP)",
                 "filtering endpoint-independent"),
    "restrictedCone": ("mapping endpoint-independent (alternate IP)",
                       "filtering address-dependent (change port answered"),
    "portRestricted": ("mapping endpoint-independent (alternate IP)",
                       "filtering address-and-port-dependent"),
    "symmetric": ("mapping address-and-port-dependent (alternate IP, then port)",
                  "filtering address-and-port-dependent"),
    "none": ("no NAT", "filtering endpoint-independent"),
}


PORTMAP = {"mode": None, "side": "both"}  # set from --portmap in main()
PORTMAP_WAIT_MS = 8000         # nat_node --portmap-wait-ms with --portmap


def is_sym(t):
    return t == "symmetric"


def maps(role, t):
    """True when the box of this role ("init" / "resp") of type t runs
    miniupnpd in this run."""
    return bool(PORTMAP["mode"]) and t != "none" and PORTMAP["side"] in ("both", role)


def expected_first(init, resp):
    return "Relayed" if is_sym(init) or is_sym(resp) else "Direct"


def upgrade_expected(init, resp):
    if is_sym(init) and is_sym(resp):
        return maps("init", init) or maps("resp", resp)
    return is_sym(init) != is_sym(resp)


class Node:
    """A nat_node process in a namespace: its JSON lines arrive in a queue
    (a reader thread), stderr goes to a file."""

    def __init__(self, lab, ns, argv, errpath):
        self.errpath = errpath
        self.err = open(errpath, "wb")
        self.p = lab.popen(ns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=self.err)
        self.lines = []          # every stdout line (text)
        self.events = []         # parsed JSON objects
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            self.events.append(ev)
            self.q.put(ev)
        self.q.put(None)  # EOF

    def wait_event(self, name, deadline):
        """The first event named `name` (already seen or arriving before the
        deadline, time.monotonic()), or None."""
        for ev in self.events:
            if ev.get("event") == name:
                return ev
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if ev is None:
                # process ended: take a last look at what was read
                for e in self.events:
                    if e.get("event") == name:
                        return e
                return None
            if ev.get("event") == name:
                return ev

    def write(self, text):
        try:
            self.p.stdin.write(text.encode())
            self.p.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def wait(self, timeout):
        """Exit status, or None when it had to be killed."""
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def finish(self):
        """Kills it if needed, joins the reader, returns stderr text."""
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.t.join(timeout=5)
        self.err.close()
        with open(self.errpath, "r", errors="replace") as f:
            return f.read()


class Cell:
    def __init__(self, init, resp):
        self.init, self.resp = init, resp
        self.failures = []       # assertion failures (strings)
        self.notes = []          # reported, not asserted
        self.result = None       # the initiator's result event
        self.ready = {}          # "init"/"resp" -> ready event
        self.listener_paths = []
        self.out = {}            # "init"/"resp" -> (stdout lines, stderr text, rc)
        self.wire = (-1, -1)     # UDP datagrams bridged initiator->responder, back
        self.requests = []       # the listener's request events
        self.wall_s = 0.0
        self.init_paths = []     # the initiator's path events

    def fail(self, msg):
        self.failures.append(msg)

    @property
    def ok(self):
        return not self.failures

    def text(self):
        """The matrix cell: path letters and times."""
        r = self.result
        if not r or r.get("first_path") in (None, "none"):
            if self.failures and self.failures[0].startswith("not run"):
                return "not run"
            return "FAIL no path"
        first = r["first_path"][0]
        s = "%s %dms" % (first, r.get("first_ms", -1))
        if first == "R" and r.get("direct_ms", -1) >= 0:
            s += "→D %dms" % r["direct_ms"]
        if not self.ok:
            s += " !"
        return s


def nat_expect(t):
    """(nat, no_nat) a node of type t must report."""
    return ("fullCone", 1) if t == "none" else (t, 0)


def check_method(cell, role, t, method):
    """natMethod of a node behind a box of type t (goal 6 of issue 19)."""
    missing = [w for w in METHOD_WANT[t] if w not in (method or "")]
    if missing:
        cell.fail("%s (%s) natMethod %r lacks %s" % (role, t, method, " and ".join(
            repr(m) for m in missing)))


def run_cell(lab, a, url, init, resp):
    """Runs one cell with fresh sites. Returns the Cell."""
    cell = Cell(init, resp)
    t0 = time.monotonic()
    deadline = t0 + a.cell_timeout
    stun = "%s:%d" % (natlab.SERVER_IP, natlab.STUN_PORT)
    common = [a.nat_node, "--server", url, "--stun", stun,
              "--ready-timeout-ms", str(READY_TIMEOUT_MS)]
    if a.direct_timeout_ms:
        common += ["--direct-timeout-ms", str(a.direct_timeout_ms)]
    if a.spray_ports:
        common += ["--spray-ports", str(a.spray_ports)]
    if a.portmap:
        common += ["--portmap-wait-ms", str(PORTMAP_WAIT_MS)]
    if a.ipv6:
        up_wait = 0  # direct first in every cell (global IPv6 on both sides)
    elif is_sym(init) and is_sym(resp) and not upgrade_expected(init, resp):
        up_wait = a.sym_sym_wait_ms
    elif upgrade_expected(init, resp):
        up_wait = a.upgrade_wait_ms
    else:
        up_wait = 0
    site_r = site_i = None
    lst = con = None
    tag = "%s-%s" % (SHORT[init], SHORT[resp])
    try:
        site_r = lab.add_site(resp, portmap=PORTMAP["mode"] if maps("resp", resp) else None)
        site_i = lab.add_site(init, portmap=PORTMAP["mode"] if maps("init", init) else None)
        watch = lab.watch_pair(site_i, site_r)
        lst = Node(lab, site_r.node_ns, common + ["--listen"],
                   os.path.join(lab.tmp, tag + ".listener.err"))
        con_argv = common + ["--connect", "-", "--count", str(a.count), "--size", str(a.size),
                             "--upgrade-wait-ms", str(up_wait)]
        if a.fresh:
            # A fresh initiator: started once the listener is ready, it
            # connects as soon as it is AUTHENTICATED (--fresh).
            ev = lst.wait_event("ready", time.monotonic() + READY_TIMEOUT_MS / 1000.0 + 5)
            if ev and not ev.get("timeout"):
                con_argv = [x if x != "-" else ev["node"] for x in con_argv] + ["--fresh"]
        con = Node(lab, site_i.node_ns, con_argv, os.path.join(lab.tmp, tag + ".initiator.err"))
        ready_by = time.monotonic() + READY_TIMEOUT_MS / 1000.0 + 5
        for role, node, t in (("resp", lst, resp), ("init", con, init)):
            ev = node.wait_event("ready", ready_by)
            if ev is None:
                cell.fail("%s (%s) printed no ready line" % (role, t))
                continue
            cell.ready[role] = ev
            want_nat, want_no = nat_expect(t)
            if ev.get("timeout"):
                cell.fail("%s (%s): not ready within %d ms (state %s, discovered %s)" %
                          (role, t, READY_TIMEOUT_MS, ev.get("state"), ev.get("discovered")))
            if maps(role, t) and not ev.get("portmap"):
                cell.fail("%s (%s): no port mapping from its box (%s)" %
                          (role, t, ev.get("portmap_status")))
            if role == "init" and a.fresh:
                continue  # the type so far: checked in the result (nat_end)
            if ev.get("nat") != want_nat or ev.get("no_nat") != want_no:
                cell.fail("%s (%s) reports nat %s no_nat %s, want %s no_nat %d" %
                          (role, t, ev.get("nat"), ev.get("no_nat"), want_nat, want_no))
            check_method(cell, role, t, ev.get("method"))
        if "resp" in cell.ready and not cell.ready["resp"].get("timeout") and \
                con.p.poll() is None:
            if not a.fresh:
                con.write(cell.ready["resp"]["node"] + "\n")
            res = con.wait_event("result", deadline)
            cell.result = res
            rc_i = con.wait(max(1.0, deadline - time.monotonic()))
        else:
            res, rc_i = None, con.wait(0.1)
        cell.wire = lab.pair_counts(watch)
        lst.close_stdin()
        rc_r = lst.wait(LISTENER_EXIT_S)
        err_i = con.finish()
        err_r = lst.finish()
        cell.out["init"] = (con.lines, err_i, rc_i)
        cell.out["resp"] = (lst.lines, err_r, rc_r)
        cell.listener_paths = [e for e in lst.events if e.get("event") == "path"]
        cell.requests = [e for e in lst.events if e.get("event") == "request"]
        cell.init_paths = [e for e in con.events if e.get("event") == "path"]
        check_cell(cell, a, res, rc_i, rc_r, err_i, err_r, up_wait)
    except natlab.LabError as e:
        cell.fail("lab error: %s" % e)
    finally:
        for n in (con, lst):
            if n is not None and n.p.poll() is None:
                n.p.kill()
                n.p.wait()
        for s in (site_i, site_r):
            if s is not None:
                lab.remove_site(s)
    cell.wall_s = time.monotonic() - t0
    return cell


def check_cell(cell, a, res, rc_i, rc_r, err_i, err_r, up_wait):
    init, resp = cell.init, cell.resp
    for role, err in (("initiator", err_i), ("listener", err_r)):
        if any(m in err for m in SANITIZER_MARKS):
            cell.fail("%s: sanitizer report on stderr" % role)
    if rc_r != 0:
        cell.fail("listener exit status %s (want 0 after stdin EOF)" %
                  ("killed" if rc_r is None else rc_r))
    if res is None:
        if cell.ready.get("resp") and cell.ready.get("init"):
            cell.fail("initiator printed no result (exit %s)" %
                      ("killed" if rc_i is None else rc_i))
        return
    if res.get("error"):
        cell.fail("initiator: %s" % res["error"])
    if a.fresh:
        check_fresh(cell, res)
    want = "Direct" if a.ipv6 else expected_first(init, resp)
    direct_first_race = (not a.ipv6 and upgrade_expected(init, resp) and
                         res.get("first_path") == "Direct")
    # Symmetric <-> symmetric: no IPv4 pair opens (many-port probing runs
    # only between a symmetric and a cone side, and it may win the race
    # there), so Direct means IPv6.
    v4_closed = is_sym(init) and is_sym(resp)
    if a.ipv6 and v4_closed and res.get("family") != "ipv6":
        cell.fail("IPv6 variant: no IPv4 pair of %s <-> %s opens at once, so the direct "
                  "path must be IPv6, but it is %r (remote %s)" %
                  (init, resp, res.get("family"), res.get("remote")))
    if a.ipv6 and res.get("final_path") != "Direct":
        cell.fail("IPv6 variant: final path %s, want Direct (paths %s)" %
                  (res.get("final_path"), ", ".join(res.get("paths", []))))
    if direct_first_race and a.allow_direct_first:
        cell.notes.append("first path Direct at %s ms, no Relayed path reported first "
                          "[allowed by --allow-direct-first]" % res.get("first_ms"))
    elif direct_first_race:
        cell.fail("first path Direct at %s ms, want Relayed (the direct path was confirmed "
                  "before the relay leg; no Relayed cb_path on the initiator%s)" %
                  (res.get("first_ms"),
                   ", though cb_session_ready came" if any(
                       ln.startswith('{"event":"relay_ready"') for ln in cell.out["init"][0])
                   else ""))
    elif res.get("first_path") != want:
        cell.fail("first path %s, want %s" % (res.get("first_path"), want))
    sent, intact = res.get("sent", 0), res.get("intact", -1)
    if sent <= 0 or intact != sent or res.get("corrupt", 1) != 0 or res.get("missing", 1) != 0:
        cell.fail("data: sent %s intact %s missing %s corrupt %s (resent %s, send errors %s)" %
                  (sent, intact, res.get("missing"), res.get("corrupt"), res.get("resent"),
                   res.get("send_errors")))
    if rc_i != 0:
        cell.fail("initiator exit status %s" % ("killed" if rc_i is None else rc_i))
    direct_batches = (1 if res.get("first_path") == "Direct" else 0) + \
        (1 if res.get("phase2") else 0)
    if direct_batches and res.get("final_path") == "Direct" and \
            min(cell.wire) < wanreport.wire_floor(direct_batches * a.count, a):
        cell.fail("the path is Direct but only %d/%d UDP datagrams went between the two "
                  "sites' public addresses (want >= %d each way)" %
                  (cell.wire[0], cell.wire[1], direct_batches * a.count))
    direct_ms = res.get("direct_ms", -1)
    upgraded = res.get("first_path") == "Relayed" and direct_ms is not None and direct_ms >= 0
    if upgrade_expected(init, resp) and not direct_first_race and not a.ipv6:
        if not upgraded:
            msg = "no upgrade to Direct within %d ms (final path %s%s)" % (
                up_wait, res.get("final_path"),
                ", direct error: " + res["direct_error"] if res.get("direct_error") else "")
            if a.require_upgrade:
                cell.fail(msg)
            else:
                cell.notes.append(msg + " [not asserted]")
        elif not res.get("phase2"):
            cell.fail("upgraded but the second batch did not run on the direct path")
    elif is_sym(init) and is_sym(resp) and upgraded:
        cell.notes.append("symmetric<->symmetric upgraded to Direct at %d ms%s" %
                          (direct_ms, " (via spray)" if res.get("via_spray") else ""))
    if res.get("first_path") == "Direct" and res.get("first_ms", 0) > DIRECT_GOAL_MS:
        cell.notes.append("direct after %d ms (goal <= %d ms)" % (res["first_ms"], DIRECT_GOAL_MS))
    if res.get("first_path") == "Relayed" and res.get("first_ms", 0) > RELAYED_GOAL_MS:
        cell.notes.append("relayed after %d ms (goal <= %d ms)" %
                          (res["first_ms"], RELAYED_GOAL_MS))
    want_peer = nat_expect(resp)[0]
    if res.get("peer_nat") != want_peer:
        cell.notes.append("peer_nat %s (responder is %s)" % (res.get("peer_nat"), want_peer))
    spray_l = any(e.get("via_spray") for e in cell.listener_paths)
    if upgraded and not res.get("via_spray") and not spray_l and not PORTMAP["mode"] and (
            init, resp) in (
            ("portRestricted", "symmetric"), ("symmetric", "portRestricted")):
        cell.notes.append("port-restricted<->symmetric upgraded, but neither side reports "
                          "via_spray (this pair needs many-port probing)")
    if (res.get("first_path") == "Direct" or upgraded) and res.get("final_path") != "Direct":
        cell.notes.append("the direct path did not last: final path %s (paths %s)" %
                          (res.get("final_path"), ", ".join(res.get("paths", []))))


def check_fresh(cell, res):
    """--fresh: the initiator's final type and natMethod, and that its offer
    did not wait for the filtering tests."""
    init = cell.init
    want_nat, want_no = nat_expect(init)
    if not res.get("discovered_end"):
        cell.fail("initiator (%s): NAT discovery did not end" % init)
    elif res.get("nat_end") != want_nat or res.get("no_nat_end") != want_no:
        cell.fail("initiator (%s) ends with nat %s no_nat %s, want %s no_nat %d" %
                  (init, res.get("nat_end"), res.get("no_nat_end"), want_nat, want_no))
    check_method(cell, "initiator", init, res.get("method_end"))
    sent_nat = cell.requests[0].get("peer_nat") if cell.requests else None
    if sent_nat and sent_nat != want_nat:
        cell.notes.append("the offer carried natType %s (the type so far), final %s: the "
                          "next offer carries it" % (sent_nat, want_nat))
    if init not in FILTERING_BOXES or not res.get("discovered_end"):
        return
    t_req = cell.requests[0].get("t") if cell.requests else None
    t_disc, t_conn = res.get("t_discovered", -1), res.get("t_connect", -1)
    margin = t_disc - t_conn
    if t_req is None:
        return  # no request: the cell fails elsewhere
    if t_req < t_disc:
        cell.notes.append("offer before the filtering result: request %d ms after connect, "
                          "discovery ended %d ms after connect" % (t_req - t_conn, margin))
    elif res.get("discovered_at_connect") or margin < FRESH_MARGIN_MS:
        cell.notes.append("offer vs filtering result not shown: connect only %d ms before "
                          "discovery ended (machine slow?) [not asserted]" % margin)
    else:
        cell.fail("the offer waited for the filtering tests: the listener got the request "
                  "%d ms after connect, after the initiator's discovery ended (%d ms after "
                  "connect)" % (t_req - t_conn, margin))


def since_start(r, key):
    """--fresh: ms from the initiator's client start to r[key] (ms since
    connect), or None."""
    if not r or r.get(key, -1) is None or r.get(key, -1) < 0 or "t_start" not in r:
        return None
    return r["t_connect"] - r["t_start"] + r[key]


def median(xs):
    return "%d ms (n=%d)" % (statistics.median(xs), len(xs)) if xs else "n/a"


def print_report(cells, types):
    w = 22
    log("")
    log("NAT lab matrix: rows = initiator (rdv_session_connect), columns = responder (listener);")
    log("D = Direct, R = Relayed, time since rdv_session_connect(); '!' = cell failed")
    log("%-16s" % "" + "".join("%-*s" % (w, t) for t in types))
    by = {(c.init, c.resp): c for c in cells}
    for i in types:
        row = "%-16s" % i
        for r in types:
            c = by.get((i, r))
            row += "%-*s" % (w, c.text() if c else "-")
        log(row)
    log("")
    direct_first = [c.result["first_ms"] for c in cells
                    if c.result and c.result.get("first_path") == "Direct"]
    relayed_first = [c.result["first_ms"] for c in cells
                     if c.result and c.result.get("first_path") == "Relayed"]
    upgrades = [c.result["direct_ms"] for c in cells
                if c.result and c.result.get("first_path") == "Relayed"
                and c.result.get("direct_ms", -1) >= 0]
    log("per cell: time to the first path / to the direct path, ms since rdv_session_connect()"
        " (-: none)")
    log("%-16s" % "" + "".join("%-*s" % (w, t) for t in types))
    for i in types:
        row = "%-16s" % i
        for r in types:
            c = by.get((i, r))
            res = c.result if c else None
            if not res or res.get("first_path") in (None, "none"):
                row += "%-*s" % (w, "-")
                continue
            d = res.get("direct_ms", -1)
            row += "%-*s" % (w, "%d / %s" % (res.get("first_ms", -1), d if d >= 0 else "-"))
        log(row)
    if any(c.result and "t_start" in c.result for c in cells):
        log("fresh initiator: the same since its client started (rdv_client_start), "
            "and whether its offer went before its filtering result ('*' = it did)")
        log("%-16s" % "" + "".join("%-*s" % (w, t) for t in types))
        for i in types:
            row = "%-16s" % i
            for r in types:
                c = by.get((i, r))
                res = c.result if c else None
                f, d = since_start(res, "first_ms"), since_start(res, "direct_ms")
                if f is None:
                    row += "%-*s" % (w, "-")
                    continue
                star = "*" if c.requests and res.get("t_discovered", -1) > 0 and \
                    c.requests[0].get("t", 1 << 62) < res["t_discovered"] else ""
                row += "%-*s" % (w, "%d / %s%s" % (f, d if d is not None else "-", star))
            log(row)
        fs = [since_start(c.result, "first_ms") for c in cells]
        fs = [x for x in fs if x is not None]
        log("median time to the first path since client start: %s" % median(fs))
    log("")
    log("median time to a direct path (first path Direct): %s" % median(direct_first))
    log("median time to a relayed path:                     %s" % median(relayed_first))
    log("median time to the direct upgrade (Relayed first): %s" % median(upgrades))
    met_d = sum(1 for x in direct_first if x <= DIRECT_GOAL_MS)
    met_r = sum(1 for x in relayed_first if x <= RELAYED_GOAL_MS)
    want_up = [c for c in cells if upgrade_expected(c.init, c.resp)]
    got_up = [c for c in want_up if c.result and c.result.get("direct_ms", -1) >= 0]
    log("goals: direct <= %d ms in %d/%d, relayed <= %d ms in %d/%d, "
        "symmetric<->cone upgrades %d/%d" % (DIRECT_GOAL_MS, met_d, len(direct_first),
                                            RELAYED_GOAL_MS, met_r, len(relayed_first),
                                            len(got_up), len(want_up)))
    spray = [c for c in cells if c.result and (c.result.get("via_spray") or any(
        e.get("via_spray") for e in c.listener_paths))]
    if spray:
        log("found by many-port probing (via_spray on either side): %s" %
            ", ".join("%s->%s" % (SHORT[c.init], SHORT[c.resp]) for c in spray))
    for c in cells:
        if c.notes:
            log("note %s -> %s: %s" % (c.init, c.resp, "; ".join(c.notes)))
    log("")


def print_failure(c):
    log("---- FAIL %s -> %s (%.1f s)" % (c.init, c.resp, c.wall_s))
    for f in c.failures:
        log("  - " + f)
    for role in ("init", "resp"):
        if role not in c.out:
            continue
        lines, err, rc = c.out[role]
        log("  %s (%s) exit %s, stdout:" % ("initiator" if role == "init" else "listener",
                                            c.init if role == "init" else c.resp, rc))
        for ln in lines:
            log("    " + ln)
        tail = err.strip().splitlines()[-25:]
        if tail:
            log("  stderr (last %d lines):" % len(tail))
            for ln in tail:
                log("    " + ln)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rendezvousd", required=True)
    ap.add_argument("--nat-node", required=True)
    ap.add_argument("--types", default=",".join(TYPES),
                    help="comma-separated subset (rows and columns)")
    ap.add_argument("--cells", default="",
                    help="only these cells, e.g. symmetric:fullCone,none:none")
    ap.add_argument("--count", type=int, default=50, help="datagrams per batch")
    ap.add_argument("--size", type=int, default=200, help="bytes per datagram")
    ap.add_argument("--upgrade-wait-ms", type=int, default=15000)
    ap.add_argument("--sym-sym-wait-ms", type=int, default=3000,
                    help="how long symmetric<->symmetric cells watch for an (unexpected) "
                         "upgrade")
    ap.add_argument("--no-require-upgrade", dest="require_upgrade", action="store_false",
                    help="report a missing symmetric<->cone upgrade instead of failing")
    ap.add_argument("--allow-direct-first", action="store_true",
                    help="symmetric<->cone: accept Direct as the first path (the direct path "
                         "won the race against the relay leg) instead of failing")
    ap.add_argument("--direct-timeout-ms", type=int, default=0)
    ap.add_argument("--spray-ports", type=int, default=0)
    ap.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT_S)
    ap.add_argument("--budget", type=float, default=BUDGET_S,
                    help="seconds for all cells; cells that would start later fail as not run")
    ap.add_argument("--json", default="", help="write every cell's data to this file")
    ap.add_argument("--portmap", nargs="?", const="both", default=None,
                    choices=("both", "natpmp", "upnp"),
                    help="boxes run miniupnpd with these protocols (default both)")
    ap.add_argument("--portmap-side", default="both", choices=("both", "init", "resp"),
                    help="with --portmap: whose boxes map")
    ap.add_argument("--fresh", action="store_true",
                    help="the initiator is a fresh node: it connects once AUTHENTICATED, "
                         "without waiting for NAT discovery (nat_node --fresh)")
    wanreport.add_arguments(ap)
    ap.add_argument("--ipv6", action="store_true",
                    help="the IPv6 variant: every node also has a global IPv6 address behind "
                         "its box's stateful firewall; every cell must be Direct first, over "
                         "IPv6 when both sides are symmetric")
    a = ap.parse_args()
    try:
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    except AttributeError:
        pass
    PORTMAP["mode"], PORTMAP["side"] = a.portmap, a.portmap_side
    types = [t for t in a.types.split(",") if t]
    for t in types:
        if t not in TYPES:
            log("unknown NAT type", t)
            return 2
    pairs = [(i, r) for i in types for r in types]
    if a.cells:
        want = [tuple(x.split(":")) for x in a.cells.split(",") if x]
        for p in want:
            if len(p) != 2 or p[0] not in TYPES or p[1] not in TYPES:
                log("bad --cells entry", ":".join(p))
                return 2
        pairs = want
    rc = natlab.prepare((a.rendezvousd, a.nat_node) + ((natlab.MINIUPNPD,) if a.portmap else ()))
    if rc is not None:
        return rc
    natlab.cleanup_stale()

    t0 = time.monotonic()
    cells = []
    server_fail = None
    wan = wanreport.wan_link(a)
    pairs = pairs * a.runs
    with natlab.Lab(wan=wan, ipv6=a.ipv6) as lab:
        prefix = lab.prefix
        lab.setup_pub()
        if wan:
            log("WAN emulation: site-to-site RTT %.0f ms, one-way loss %.1f%% (%s); "
                "%d run(s)" % (a.rtt_ms, a.loss, wan.describe(), a.runs))
        url = lab.start_server(a.rendezvousd)
        log("rendezvousd at %s, STUN %s:%d (alternate %s:%d); %d cells" %
            (url, natlab.SERVER_IP, natlab.STUN_PORT, natlab.SERVER_ALT_IP,
             natlab.STUN_ALT_PORT, len(pairs)))
        for init, resp in pairs:
            if time.monotonic() - t0 > a.budget:
                c = Cell(init, resp)
                c.fail("not run: the run's time budget (%.0f s) is spent" % a.budget)
                cells.append(c)
                continue
            c = run_cell(lab, a, url, init, resp)
            cells.append(c)
            r = c.result or {}
            log("cell %-15s -> %-15s %-22s %s (%.1f s)%s" %
                (init, resp, c.text(), "ok" if c.ok else "FAIL", c.wall_s,
                 "" if c.ok else ": " + "; ".join(c.failures)))
            if r:
                log("     nat %s/%s peer_nat %s first %s@%s direct %s upgraded %s spray %s "
                    "intact %s/%s remote %s wire %s/%s" %
                    (c.ready.get("init", {}).get("nat"), c.ready.get("resp", {}).get("nat"),
                     r.get("peer_nat"), r.get("first_path"), r.get("first_ms"),
                     r.get("direct_ms"), r.get("upgraded"), r.get("via_spray"),
                     r.get("intact"), r.get("sent"), r.get("remote"), c.wire[0], c.wire[1]))
        st = lab.stop_server()
        if st is not None:
            rc, text = st
            if rc != 0 or any(m in text for m in SANITIZER_MARKS):
                server_fail = "rendezvousd exit status %s%s" % (
                    rc, ", sanitizer report" if any(m in text for m in SANITIZER_MARKS) else "")
                log(text[-6000:])
    left = [ns for ns in natlab.list_netns() if ns.startswith(prefix)]

    print_report(cells, types if not a.cells else TYPES)
    if wan or a.runs > 1:
        wanreport.print_summary(cells, a, lab.wan_totals() if wan else None)
    for c in cells:
        if not c.ok:
            print_failure(c)
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"initiator": c.init, "responder": c.resp, "ok": c.ok,
                        "failures": c.failures, "notes": c.notes, "result": c.result,
                        "ready": c.ready, "listener_paths": c.listener_paths,
                        "listener_requests": c.requests,
                        "wire_datagrams": list(c.wire),
                        "wall_s": c.wall_s, "init_paths": c.init_paths,
                        "metrics": wanreport.metrics(c)} for c in cells], f, indent=1)
    passed = sum(1 for c in cells if c.ok)
    if server_fail:
        log("FAIL:", server_fail)
    if left:
        log("FAIL: namespaces left behind:", " ".join(left))
    log("%d cells, %d passed (%.0f s)" % (len(cells), passed, time.monotonic() - t0))
    return 0 if passed == len(cells) and not server_fail and not left else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except natlab.LabError as e:
        # the lab is already torn down (Lab.__exit__)
        log("FAIL: lab setup: %s" % e)
        sys.exit(1)
