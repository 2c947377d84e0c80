"""wanreport.py - the matrix under WAN emulation (matrix.py --wanem with
--rtt-ms / --loss / --jitter-ms / --rate-kbit, and --runs): the options,
the per-cell timeline taken from both nodes' JSON lines, and the summary
with per-cell counts over the runs.

Per cell and run (metrics()):
  connected    a first path came and every datagram came back intact
  final        the initiator's last path
  first_ms     rdv_session_connect() -> first path (initiator)
  direct_ms    rdv_session_connect() -> Direct (initiator), None if never
  know_ms      rdv_session_connect() -> the moment both sides had each
               other's candidates: the later of the two sides'
               candidates_ms (keys + the peer's connectionInfo; its
               candidates follow on the same WebSocket), on one clock
               (CLOCK_MONOTONIC "t" of the path events: t0 = t - ms)
  checks_ms    ... the later of the two sides' start of the checks (relay
               first cells: once the relay leg is up)
  to_direct_ms Direct on both sides - know_ms (the issue's goal: <= 3 RTT)
  to_direct_after_checks_ms  Direct on both sides - checks_ms
  rounds       check rounds each side sent before its Direct (initiator /
               listener), from rdv_session_info.probe_rounds
  first_try    the cell went Direct without losing it: first path Direct
               (neither side symmetric) or Relayed -> Direct once
               (exactly one of them symmetric)
"""
import statistics

from natlab import WanLink, log

SHORT = {"fullCone": "full", "restrictedCone": "restr", "portRestricted": "portR",
         "symmetric": "sym", "none": "none"}


def add_arguments(ap):
    g = ap.add_argument_group("WAN emulation (tests/nat/wanem.c on every site's link)")
    g.add_argument("--wanem", default="", help="the wanem binary; without it no emulation")
    g.add_argument("--rtt-ms", type=float, default=40.0,
                   help="site-to-site round trip (each link: rtt/4 each way)")
    g.add_argument("--loss", type=float, default=0.0,
                   help="site-to-site one-way loss in percent (each link: 1-sqrt(1-p))")
    g.add_argument("--jitter-ms", type=float, default=0.0, help="per link, uniform +-J")
    g.add_argument("--rate-kbit", type=int, default=0, help="per link and direction (tbf)")
    g.add_argument("--reorder", action="store_true", help="jitter may reorder frames")
    ap.add_argument("--runs", type=int, default=1, help="run every cell this many times")


def wan_link(a):
    """The WanLink of the options, None without --wanem."""
    if not a.wanem:
        return None
    return WanLink.for_path(a.wanem, a.rtt_ms, a.loss, a.jitter_ms, a.rate_kbit, a.reorder)


def wire_floor(want, a):
    """Datagrams a direct batch must show on the bridge: all of them on a
    lossless lab, fewer when links drop some (resends make up for most)."""
    if not a.wanem or a.loss <= 0:
        return want
    return int(want * (1.0 - 2.0 * a.loss / 100.0))


def _t0(paths):
    """CLOCK_MONOTONIC ms of a side's session start (t - ms of a path event)."""
    for e in paths:
        if "t" in e and "ms" in e:
            return e["t"] - e["ms"]
    return None


def _first(paths, name):
    for e in paths:
        if e.get("path") == name:
            return e
    return None


def _last_info(paths, key):
    """The latest non-negative value of key among the path events."""
    v = None
    for e in paths:
        x = e.get(key)
        if isinstance(x, int) and x >= 0:
            v = x
    return v


def metrics(c):
    """The timeline of one cell's run (a dict; see the module comment)."""
    r = c.result or {}
    m = {"connected": bool(r) and r.get("first_path") in ("Direct", "Relayed") and
         r.get("sent", 0) > 0 and r.get("intact") == r.get("sent") and not r.get("corrupt"),
         "final": r.get("final_path"), "first": r.get("first_path"),
         "first_ms": r.get("first_ms"), "direct_ms": None, "know_ms": None,
         "checks_ms": None, "to_direct_ms": None, "to_direct_after_checks_ms": None,
         "rounds": [None, None], "family": r.get("family", "")}
    if r.get("direct_ms", -1) is not None and r.get("direct_ms", -1) >= 0:
        m["direct_ms"] = r["direct_ms"]
    ti, tr = _t0(c.init_paths), _t0(c.listener_paths)
    if ti is None and r.get("t_connect") is not None:
        ti = r["t_connect"]
    ci = r.get("candidates_ms", -1)
    cr = _last_info(c.listener_paths, "candidates_ms")
    if ti is not None and tr is not None and ci is not None and ci >= 0 and cr is not None:
        know = max(ti + ci, tr + cr)
        m["know_ms"] = know - ti
        ki, kr = r.get("checks_ms", -1), _last_info(c.listener_paths, "checks_ms")
        if ki is not None and ki >= 0 and kr is not None:
            m["checks_ms"] = max(ti + ki, tr + kr) - ti
        di, dr = _first(c.init_paths, "Direct"), _first(c.listener_paths, "Direct")
        if di and dr:
            both = max(di["t"], dr["t"])
            m["to_direct_ms"] = both - know
            if m["checks_ms"] is not None:
                m["to_direct_after_checks_ms"] = both - (ti + m["checks_ms"])
    di, dr = _first(c.init_paths, "Direct"), _first(c.listener_paths, "Direct")
    m["rounds"] = [di.get("probe_rounds") if di else r.get("probe_rounds"),
                   dr.get("probe_rounds") if dr else None]
    seq = [e.get("path") for e in c.init_paths]
    sym_i, sym_r = c.init == "symmetric", c.resp == "symmetric"
    if sym_i and sym_r:
        want = None
    elif sym_i or sym_r:
        want = ["Relayed", "Direct"]
    else:
        want = ["Direct"]
    m["first_try"] = want is not None and m["connected"] and seq == want
    return m


def _med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _fmt(x, unit="ms"):
    return "-" if x is None else "%d %s" % (round(x), unit) if unit else "%d" % round(x)


def print_summary(cells, a, totals):
    """Per-cell counts and medians over the runs, and the goals."""
    by = {}
    for c in cells:
        by.setdefault((c.init, c.resp), []).append(c)
    rtt = a.rtt_ms if a.wanem else None
    log("")
    if a.wanem:
        log("WAN summary: RTT %.0f ms site to site, loss %.1f%% one way, jitter +-%.1f ms per "
            "link%s; %d run(s) per cell" % (a.rtt_ms, a.loss, a.jitter_ms,
                                           ", rate %d kbit/s" % a.rate_kbit if a.rate_kbit
                                           else "", a.runs))
    log("%-13s %5s %5s %5s %6s %9s %9s %9s %9s %9s %7s %s" % (
        "cell", "conn", "final", "1st", "first", "1st path", "direct", "know->D",
        "know->D", "checks->D", "rounds", "passed"))
    log("%-13s %5s %5s %5s %6s %9s %9s %9s %9s %9s %7s %s" % (
        "init->resp", "", "D", "try", "path", "(median)", "(median)", "(median)", "(RTTs)",
        "(median)", "(i/l)", ""))
    goal_first, goal_rtt = [0, 0], [0, 0]
    for (i, r), cs in by.items():
        ms = [metrics(c) for c in cs]
        n = len(ms)
        conn = sum(1 for m in ms if m["connected"])
        fin = sum(1 for m in ms if m["final"] == "Direct")
        first_try = sum(1 for m in ms if m["first_try"])
        firsts = "".join(sorted(set((m["first"] or "-")[0] for m in ms)))
        kd = _med([m["to_direct_ms"] for m in ms])
        rounds_i = _med([m["rounds"][0] for m in ms])
        rounds_l = _med([m["rounds"][1] for m in ms])
        log("%-13s %2d/%-2d %2d/%-2d %2d/%-2d %6s %9s %9s %9s %9s %9s %7s %d/%d" % (
            "%s->%s" % (SHORT[i], SHORT[r]), conn, n, fin, n, first_try, n, firsts,
            _fmt(_med([m["first_ms"] for m in ms])),
            _fmt(_med([m["direct_ms"] for m in ms])), _fmt(kd),
            "%.1f" % (kd / rtt) if kd is not None and rtt else "-",
            _fmt(_med([m["to_direct_after_checks_ms"] for m in ms])),
            "%s/%s" % (_fmt(rounds_i, ""), _fmt(rounds_l, "")),
            sum(1 for c in cs if c.ok), n))
        if not (i == "symmetric" and r == "symmetric"):
            goal_first[0] += first_try
            goal_first[1] += n
        if i != "symmetric" and r != "symmetric" and rtt:
            for m in ms:
                goal_rtt[1] += 1
                if m["to_direct_ms"] is not None and m["to_direct_ms"] <= 3 * rtt:
                    goal_rtt[0] += 1
    log("goal: direct on the first attempt in every cell but sym<->sym: %d/%d runs" %
        tuple(goal_first))
    if rtt:
        log("goal: direct-first cells Direct on both sides within 3 RTT (%d ms) of both "
            "knowing the candidates: %d/%d runs" % (3 * rtt, goal_rtt[0], goal_rtt[1]))
    if totals:
        modelled = totals["rx"] - totals["control"]
        log("emulators: %d IP frames in, %d lost (%.2f%%), %d overflow, %d send errors, "
            "releases late by %d us on average, %d us at worst" % (modelled, totals["lost"],
                                          100.0 * totals["lost"] / max(1, modelled),
                                          totals["overflow"], totals["tx_err"],
                                          totals["late_avg_us"], totals["late_max_us"]))
    log("")
