#!/usr/bin/env python3
"""wan_check.py - measures what the lab's WAN emulator (wanem.c) gives:
round-trip time and loss between two no-NAT sites (two emulated links)
and between a site and the pub namespace (one link), against what was
configured.

  wan_check.py --wanem PATH [--rtt-ms R] [--loss PCT] [--jitter-ms J]
               [--count N] [--interval-ms I] [--rate-kbit K]

A UDP echo runs in one namespace, the sender in the other: N datagrams,
one per I ms, each with its send time; the echo's arrival gives the RTT
(time.monotonic(); Python adds well under a millisecond). Round-trip
loss of p one way is 1 - (1 - p)^2. Prints min / median / p95 / max RTT
and loss per path, plus the emulators' own counters (frames lost per
direction, worst lateness of a release). Exit 0, or 77 without root.

--assert (ctest nat_lab_wan_check) fails (exit 1) when a path's smallest
RTT is below what was configured (the emulator never releases early, so
this never depends on the machine's speed) or its round-trip loss is
outside 6 binomial standard deviations of the configured one; upper
bounds on the RTT are reported, never asserted.
"""
import argparse
import math
import os
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import log  # noqa: E402

ECHO = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
'''

SEND = r'''
import json, socket, struct, sys, time
ip, port, n, iv = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) / 1000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((ip, port))
s.setblocking(False)
rtt = {}
t0 = time.monotonic()
i = 0
def drain():
    while True:
        try:
            d = s.recv(2048)
        except BlockingIOError:
            return
        seq, ts = struct.unpack("!Id", d[:12])
        rtt.setdefault(seq, (time.monotonic() - ts) * 1000)
while i < n:
    now = time.monotonic()
    if now >= t0 + i * iv:
        s.send(struct.pack("!Id", i, now) + b"x" * 88)
        i += 1
    drain()
    time.sleep(0.0005)
end = time.monotonic() + 2.0
while time.monotonic() < end:
    drain()
    time.sleep(0.001)
print(json.dumps({"sent": n, "rtt": [rtt[k] for k in sorted(rtt)]}), flush=True)
'''


def measure(lab, ns_from, ns_to, ip, count, interval_ms):
    echo = lab.popen(ns_to, [sys.executable, "-c", ECHO, "7777"], stdout=subprocess.PIPE)
    if natlab._read_line(echo.stdout, 10).strip() != "ready":
        raise natlab.LabError("echo did not start")
    r = subprocess.run(lab.exec_cmd(ns_from, [sys.executable, "-c", SEND, ip, "7777",
                                              str(count), str(interval_ms)]),
                       stdout=subprocess.PIPE, text=True, timeout=count * interval_ms / 1000 + 30)
    lab.stop(echo)
    import json
    return json.loads(r.stdout)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wanem", required=True)
    ap.add_argument("--rtt-ms", type=float, default=40)
    ap.add_argument("--loss", type=float, default=3.0, help="site-to-site one-way loss, %%")
    ap.add_argument("--jitter-ms", type=float, default=0)
    ap.add_argument("--rate-kbit", type=int, default=0)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--interval-ms", type=float, default=10)
    ap.add_argument("--assert", dest="check", action="store_true",
                    help="fail when the measured RTT / loss contradict the configuration")
    a = ap.parse_args()
    fails = []
    rc = natlab.prepare((a.wanem,))
    if rc is not None:
        return rc
    natlab.cleanup_stale()
    wan = natlab.WanLink.for_path(a.wanem, a.rtt_ms, a.loss, a.jitter_ms, a.rate_kbit)
    log("configured: site-to-site RTT %.1f ms, one-way loss %.2f%% (%s)" %
        (a.rtt_ms, a.loss, wan.describe()))
    with natlab.Lab(wan=wan) as lab:
        lab.setup_pub()
        s1 = lab.add_site("none")
        s2 = lab.add_site("none")
        rows = [("site -> site (2 links)", s1.node_ns, s2.node_ns, s2.public_ip,
                 a.rtt_ms, 1 - (1 - a.loss / 100) ** 2),
                ("site -> pub (1 link)", s1.node_ns, lab.pub, natlab.SERVER_IP,
                 a.rtt_ms / 2, 1 - (1 - wan.loss_pct / 100) ** 2)]
        for name, nf, nt, ip, want_rtt, want_loss in rows:
            m = measure(lab, nf, nt, ip, a.count, a.interval_ms)
            rtt = m["rtt"]
            lost = 1 - len(rtt) / m["sent"]
            if not rtt:
                fails.append("%s: no echo came back" % name)
                continue
            log("%-24s RTT min %.2f / median %.2f / p95 %.2f / max %.2f ms (want %.1f), "
                "round-trip loss %.2f%% (want %.2f%%), n=%d" %
                (name, min(rtt), statistics.median(rtt), pct(rtt, 0.95), max(rtt), want_rtt,
                 lost * 100, want_loss * 100, m["sent"]))
            if min(rtt) < want_rtt - 0.05:
                fails.append("%s: an echo came back after %.2f ms, sooner than the %.1f ms "
                             "configured" % (name, min(rtt), want_rtt))
            sd = math.sqrt(want_loss * (1 - want_loss) / m["sent"])
            if abs(lost - want_loss) > 6 * sd + 0.5 / m["sent"]:
                fails.append("%s: round-trip loss %.2f%%, configured %.2f%% (6 sd = %.2f%%)" %
                             (name, lost * 100, want_loss * 100, 600 * sd))
        for site in (s1, s2):
            lab.remove_site(site)
        tot = lab.wan_totals()
        modelled = tot["rx"] - tot["control"]
        log("emulators: %d IP frames in, %d out, %d lost (%.2f%%, configured %.3f%% per link), "
            "%d ARP/ND passed, %d overflow, %d send errors, releases late by %d us on "
            "average, %d us at worst" %
            (modelled, tot["tx"], tot["lost"], 100.0 * tot["lost"] / max(1, modelled),
             wan.loss_pct, tot["control"], tot["overflow"], tot["tx_err"],
             tot["late_avg_us"], tot["late_max_us"]))
        if tot["overflow"] or tot["tx_err"]:
            fails.append("the emulators dropped frames they should have sent (%d overflow, "
                         "%d send errors)" % (tot["overflow"], tot["tx_err"]))
    if a.check:
        for f in fails:
            log("FAIL:", f)
        if fails:
            return 1
        log("PASS: delay never shorter than configured, loss within bounds")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except natlab.LabError as e:
        log("FAIL: lab: %s" % e)
        sys.exit(1)
