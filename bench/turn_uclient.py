#!/usr/bin/env python3
"""turn_uclient.py - one coturn relay run measured like loadgen_relay --warmup.

   turn_uclient.py --port P --sessions S --payload L --interval-ms Z \
       --warmup W --seconds T --server-pid PID [--tcp] [--core C] [--out FILE]

Runs Debian's turnutils_uclient (coturn) against a turnserver on 127.0.0.1
that has user bench:bench: 2*S clients, client to client (-y: client 2i
and 2i+1 send to each other's relay address, so every session is two-way),
no RTCP (-c), L-byte messages (-l), one message every Z ms per client with
at most 50 per 1 ms tick (-z; Z = 0: 50 per tick, uclient's ceiling), over
UDP or, with --tcp, over TCP to the server (-t; the relay between the two
allocations is UDP either way). Pinned to core C with taskset when given.

uclient prints cumulative counters (messages and payload bytes sent and
received over all clients) once a second; this script stamps each such line
on arrival (stdout line-buffered with stdbuf) and reads the turnserver's,
uclient's and the machine's CPU at that moment. Clients start sending at a
random 1-6 s after the allocations are done ("Total connect time"), so the
measured window starts W s after that + 6 s, when every client sends, and
ends at the counters line about T s later (lines come once a second): the same window as loadgen_relay
(W s after the last sender started, T s long, counters at both ends).
Paced runs (Z > 0) send enough messages to outlast the window and are left
to finish (uclient then waits for stragglers up to 10 s), so its final
totals give the whole-run loss; unpaced runs (Z = 0) are stopped after the
window (their whole-run loss is not known: run_lost=-1). A run in which any
client had finished before the window ended is status=short.

Output: one "RESULT key=value ..." line with loadgen_relay's fields (p50/p99:
-1, uclient's clock has 1 ms resolution; its average round trip, when it
printed one, is avg_rtt_ms). Every wait is bounded; the child is killed on
every exit path.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

TCK = os.sysconf("SC_CLK_TCK")
STATS = re.compile(r"start_mclient: msz=(\d+), tot_send_msgs=(\d+), tot_recv_msgs=(\d+), "
                   r"tot_send_bytes ~ (\d+), tot_recv_bytes ~ (\d+)")
FINAL_MSGS = re.compile(r"start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)")
RTT = re.compile(r"Average round trip delay ([0-9.]+) ms")


def proc_cpu(pid):
    """CPU seconds of process pid (all threads), -1 if unknown."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return -1.0
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / TCK


def machine_busy():
    """Busy CPU seconds of the machine (all cores), as bench/common.c reads it."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TCK


def snap(line_vals, srv_pid, gen_pid):
    return {"t": time.monotonic(), "msz": line_vals[0], "sent": line_vals[1],
            "recv": line_vals[2], "sent_b": line_vals[3], "recv_b": line_vals[4],
            "srv": proc_cpu(srv_pid), "gen": proc_cpu(gen_pid), "busy": machine_busy()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--payload", type=int, default=1200)
    ap.add_argument("--interval-ms", type=int, default=0)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--tcp", action="store_true")
    ap.add_argument("--core", default="")
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    clients = 2 * a.sessions
    stagger = 6.0  # uclient starts each client 1 + random()%5000 ms after connecting
    if a.interval_ms > 0:
        # every client must still be sending when the window ends
        msgs = int((1000 / a.interval_ms) * (stagger + a.warmup + a.seconds + 2)) + 1
    else:
        msgs = 50 * 1000 * int(stagger + a.warmup + a.seconds + 60)  # stopped after the window
    cmd = ["stdbuf", "-oL", "turnutils_uclient", "-p", str(a.port), "-u", "bench", "-w", "bench",
           "-e", "127.0.0.1", "-y", "-c", "-m", str(clients), "-l", str(a.payload),
           "-n", str(msgs), "-z", str(a.interval_ms)]
    if a.tcp:
        cmd.append("-t")
    cmd.append("127.0.0.1")
    if a.core != "":
        cmd = ["taskset", "-c", a.core] + cmd
    # a SIGTERM (relay.sh's timeout) unwinds through the finally below,
    # which stops uclient
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log = open(a.out, "w") if a.out else open(os.devnull, "w")
    log.write(" ".join(cmd) + "\n")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace")
    limit = time.monotonic() + 60 + stagger + a.warmup + a.seconds + 30
    t_conn = None
    A = B = None
    last = None
    final = None
    rtt = -1.0
    status = "ok"
    try:
        for line in p.stdout:
            log.write(line)
            now = time.monotonic()
            if now > limit:
                status = "timeout"
                break
            if t_conn is None and "Total connect time" in line:
                t_conn = now
                continue
            m = STATS.search(line)
            if m:
                vals = [int(x) for x in m.groups()]
                last = vals
                if t_conn is None:
                    continue
                if A is None and now >= t_conn + stagger + a.warmup:
                    A = snap(vals, a.server_pid, p.pid)
                elif A is not None and B is None and now >= A["t"] + a.seconds - 0.5:
                    B = snap(vals, a.server_pid, p.pid)
                    if a.interval_ms <= 0:
                        break
                continue
            m = FINAL_MSGS.search(line)
            if m:
                final = (int(m.group(1)), int(m.group(2)))
            m = RTT.search(line)
            if m:
                rtt = float(m.group(1))
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()

    if A is None or B is None:
        print("RESULT status=%s mode=turn-%s sessions=%d directions=2 payload=%d "
              "interval_ms=%d msgs_per_s=0" % ("failed" if status == "ok" else status,
                                                "tcp" if a.tcp else "udp", a.sessions,
                                                a.payload, a.interval_ms))
        return 1
    if B["msz"] < A["msz"] or A["msz"] < clients:
        status = "short"
    secs = B["t"] - A["t"]
    sm, rm = B["sent"] - A["sent"], B["recv"] - A["recv"]
    rb = B["recv_b"] - A["recv_b"]
    srv = (B["srv"] - A["srv"]) / secs if a.server_pid > 0 else -1
    gen = (B["gen"] - A["gen"]) / secs
    other = (B["busy"] - A["busy"]) / secs - gen - max(srv, 0)
    if final:
        run_sent, run_recv = final
        run_lost = run_sent - min(run_recv, run_sent)
    else:
        run_sent, run_recv, run_lost = (last[1], last[2], -1) if last else (0, 0, -1)
    print("RESULT status=%s mode=turn-%s sessions=%d directions=2 payload=%d interval_ms=%d "
          "window=0 secs=%.2f sent_msgs=%d recv_msgs=%d msgs_per_s=%.0f mbps=%.1f "
          "loss_pct=%.3f run_sent=%d run_recv=%d run_lost=%d p50_us=-1 p99_us=-1 "
          "win_server_cores=%.2f win_gen_cores=%.2f win_other_cores=%.2f "
          "srv_us_per_msg=%.2f srv_us_per_mb=%.1f gen_us_per_msg=%.2f avg_rtt_ms=%.3f" % (
              status, "tcp" if a.tcp else "udp", a.sessions, a.payload, a.interval_ms, secs,
              sm, rm, rm / secs, rb / 1e6 / secs, 100.0 * (1 - rm / sm) if sm else 0.0,
              run_sent, run_recv, run_lost, srv, gen, other,
              srv * secs * 1e6 / rm if rm and srv >= 0 else -1,
              srv * secs * 1e6 / (rb / 1e6) if rb and srv >= 0 else -1,
              gen * secs * 1e6 / rm if rm else -1, rtt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
