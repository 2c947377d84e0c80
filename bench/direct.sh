#!/usr/bin/env bash
# direct.sh - one librendezvous session between two clients on this machine,
# direct (rdv_session_connect, first path Direct: UDP between the clients) against
# relayed (A with direct_disable = 1: rdv_session_connect goes straight to the
# server's relay over the WebSocket), same load, back to back.
#
#   bench/direct.sh                      # builds, runs, prints the table
#   SECONDS_RUN=10 REPS=2 bench/direct.sh
#   APPEND=1 bench/direct.sh             # also appends the tables to bench/RESULTS.md
#
# The load: bench/loadgen_direct (direct.c; the real librendezvous, static,
# threaded mode, both clients in one process). Per mode, on one session:
# latency (LAT_COUNT (2000) 64-byte datagrams, 1 per ms, B echoes, A
# records the round trip: p50 / p99), then throughput with 1200-byte
# datagrams and with rdv_client_max_payload() ones, SECONDS_RUN (5) s each,
# paced only by RDV_ERR_BACKLOG (retry after 50 us). MB/s = 10^6 bytes of
# application payload B received per second (after 0.5 s); loss = datagrams
# rdv_session_send() accepted that B never received. Each mode gets a fresh
# rendezvousd (defaults plus --stun-port; RDV_FLAGS adds flags).
#
# Build: the server and librendezvous from `git archive HEAD` (FROM=head,
# the default: other work in progress in the tree does not matter;
# unpacked in build-bench-direct-src/) or from the working tree (FROM=tree),
# Release, no sanitizers, tests off, into build-bench-direct-head/ (FROM=tree:
# build-bench-direct/); bench/ as its
# own CMake project against it in build-bench-direct-gen/ (target
# loadgen_direct only). Ports RDV_PORT (18680), STUN_PORT (18681; its
# RFC 5780 alternate is +1). Everything started here is stopped by PID on
# exit; every wait is bounded; traffic stays on this host (127.0.0.1, and
# the clients' own host candidates, which Linux routes over lo).
set -u
OUT=${OUT:-$(mktemp -d /tmp/rdv-direct-bench.XXXXXX)}
FROM=${FROM:-head}
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
if [ "$FROM" = head ]; then
    SRV_BUILD=${SRV_BUILD:-$REPO_DIR/build-bench-direct-head}
else
    SRV_BUILD=${SRV_BUILD:-$REPO_DIR/build-bench-direct}
fi
GEN_BUILD=${GEN_BUILD:-$REPO_DIR/build-bench-direct-gen}
RDV_PORT=${RDV_PORT:-18680}
OP_PORT=${OP_PORT:-18682}   # the operator's listener (/metrics)
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"

STUN_PORT=${STUN_PORT:-18681}
SECONDS_RUN=${SECONDS_RUN:-5}
LAT_COUNT=${LAT_COUNT:-2000}
REPS=${REPS:-2}
GEN=$GEN_BUILD/loadgen_direct
trap stop_rdv EXIT

command -v cmake >/dev/null || die "cmake not found (scripts/bootstrap installs it)"
command -v curl >/dev/null || die "curl not found"

# ---- build ---------------------------------------------------------------
SERVER_FROM=$FROM   # lib.sh's name for it (server_line: "built from git archive HEAD")
DIRTY_PATHS="rendezvous schema db client"
build_server_tree "$REPO_DIR/build-bench-direct-src" rendezvousd rendezvous_static
src=$SRC
log "building loadgen_direct in $GEN_BUILD"
cmake -S "$BENCH_DIR" -B "$GEN_BUILD" -DCMAKE_BUILD_TYPE=Release -DRDV_MAIN_BUILD="$SRV_BUILD" \
    -DRDV_MAIN_SOURCE="$src" >"$OUT/cmake-gen.log" 2>&1 \
    || die "configuring bench/ failed; see $OUT/cmake-gen.log"
cmake --build "$GEN_BUILD" -j2 --target loadgen_direct >>"$OUT/cmake-gen.log" 2>&1 \
    || die "building loadgen_direct failed; see $OUT/cmake-gen.log"
RDVD=$SRV_BUILD/rendezvous/rendezvousd

# ---- server ----------------------------------------------------------------
start_direct_rdv() {
    port_free "$RDV_PORT" || die "port $RDV_PORT is in use (set RDV_PORT)"
    rm -f "$OUT"/rdv.db "$OUT"/rdv.db-*
    "$RDVD" --port "$RDV_PORT" --stun-port "$STUN_PORT" --db "$OUT/rdv.db" --name bench \
        --operator-listen "127.0.0.1:$OP_PORT" \
        --log-level warn $RDV_FLAGS >>"$OUT/rdv.log" 2>&1 &
    RDV_PID=$!
    local i
    for i in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$RDV_PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$RDV_PID" 2>/dev/null || die "rendezvousd exited at start; see $OUT/rdv.log"
        sleep 0.1
    done
    die "rendezvousd not ready after 10 s; see $OUT/rdv.log"
}

# ---- runs ------------------------------------------------------------------
log "results in $OUT"
: >"$OUT/results.jsonl"
for rep in $(seq 1 "$REPS"); do
    for mode in direct relayed; do
        wait_quiet
        start_direct_rdv
        b0=$(busy_ticks)
        timeout $((SECONDS_RUN * 2 + 90)) "$GEN" --url "ws://127.0.0.1:$RDV_PORT/v1" \
            --stun "127.0.0.1:$STUN_PORT" --mode "$mode" --seconds "$SECONDS_RUN" \
            --lat-count "$LAT_COUNT" --server-pid "$RDV_PID" >"$OUT/run-$rep-$mode.json" \
            2>"$OUT/run-$rep-$mode.log"
        rc=$?
        b1=$(busy_ticks)
        curl -sf "http://127.0.0.1:$OP_PORT/metrics" >"$OUT/metrics-$rep-$mode.txt" 2>/dev/null
        srv_s=$(awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$RDV_PID/stat")
        stop_rdv
        [ "$rc" = 0 ] || die "loadgen_direct --mode $mode failed (status $rc); see $OUT/run-$rep-$mode.log"
        python3 - "$OUT/run-$rep-$mode.json" "$rep" "$b0" "$b1" "$(getconf CLK_TCK)" "$srv_s" \
            "$OUT/metrics-$rep-$mode.txt" \
            >>"$OUT/results.jsonl" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
rep, b0, b1, tck, srv = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
d["rep"] = rep
# CPU of everything else on the machine during the generator's life
d["other_cores"] = max(0.0, ((b1 - b0) / tck - d["gen_cpu_s"] - srv) / d["gen_wall_s"])
# the server's relay drops over the whole run (all phases), by reason
drops = {}
try:
    for line in open(sys.argv[7]):
        if line.startswith("rendezvous_relay_dropped_messages_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            n = int(float(line.split()[-1]))
            if n:
                drops[reason] = n
except (OSError, IndexError, ValueError):
    pass
d["srv_relay_drops"] = drops
print(json.dumps(d))
PY
        sed -n '/latency:\| B: /p' "$OUT/run-$rep-$mode.log" | sed "s/^/[$rep $mode]/" >&2
    done
done

# ---- table -----------------------------------------------------------------
{
    machine_line
    echo
    python3 - "$OUT/results.jsonl" "$SECONDS_RUN" "$LAT_COUNT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
secs, lat = sys.argv[2], sys.argv[3]
maxp = rows[0]["tmax_size"]
print(f"{secs} s per throughput run (first 0.5 s not counted); latency: {lat} x 64 B, 1 per ms; "
      f"max payload = rdv_client_max_payload() = {maxp} B.")
print("Loss: datagrams accepted by rdv_session_send() never received. cli cores: the generator "
      "process (both clients + sender thread); srv: rendezvousd; other: rest of the machine.")
for rep in sorted({r["rep"] for r in rows}):
    by = {r["mode"]: r for r in rows if r["rep"] == rep}
    d, r = by["direct"], by["relayed"]
    print()
    print(f"Run {rep}:")
    print()
    print(f"| path | MB/s (1200 B) | MB/s ({maxp} B) | loss % (1200 / max) | RTT p50 us | RTT p99 us "
          f"| cli cores (1200 / max) | srv cores (1200 / max) | other cores |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, x in (("direct", d), ("relayed", r)):
        print(f"| {m} ({x['path']}) | {x['t1200_mbps']:.1f} | {x['tmax_mbps']:.1f} | "
              f"{x['t1200_loss_pct']:.2f} / {x['tmax_loss_pct']:.2f} | {x['rtt_p50_us']:.0f} | "
              f"{x['rtt_p99_us']:.0f} | {x['t1200_proc_cores']:.2f} / {x['tmax_proc_cores']:.2f} | "
              f"{x['t1200_srv_cores']:.2f} / {x['tmax_srv_cores']:.2f} | {x['other_cores']:.2f} |")
    q = lambda a, b: f"{a / b:.2f}x" if b else "n/a"
    print(f"| direct / relayed | {q(d['t1200_mbps'], r['t1200_mbps'])} | {q(d['tmax_mbps'], r['tmax_mbps'])} "
          f"| | {q(d['rtt_p50_us'], r['rtt_p50_us'])} | {q(d['rtt_p99_us'], r['rtt_p99_us'])} | | | |")
    print()
    for m, x in (("direct", d), ("relayed", r)):
        print(f"- {m}: sent {x['t1200_sent_mbps']:.1f} / {x['tmax_sent_mbps']:.1f} MB/s "
              f"(sender thread {x['t1200_sender_cores']:.2f} / {x['tmax_sender_cores']:.2f} cores), "
              f"RDV_ERR_BACKLOG retries {x['t1200_backlog']} / {x['tmax_backlog']}, "
              f"kernel UDP RcvbufErrors {x['t1200_udp_rcvbuf_err']} / {x['tmax_udp_rcvbuf_err']}, "
              f"dup {x['t1200_dup']} / {x['tmax_dup']}, reordered {x['t1200_reorder']} / {x['tmax_reorder']}, "
              f"corrupt {x['t1200_bad']} / {x['tmax_bad']}, path changes "
              f"{x['t1200_path_changes']} / {x['tmax_path_changes']}; latency {x['lat_recv']}/{x['lat_sent']} "
              f"answered, max {x['rtt_max_us']:.0f} us; server relay drops (whole run) "
              f"{x['srv_relay_drops'] or 0}; remote '{x['remote']}'")
PY
} >"$OUT/table.md"
cat "$OUT/table.md"
log "raw results: $OUT"
if [ "${APPEND:-0}" = 1 ]; then
    {
        echo
        echo "## Direct vs relayed session (librendezvous)"
        echo
        echo "Command: \`bench/direct.sh\` (SECONDS_RUN=$SECONDS_RUN, REPS=$REPS, FROM=$FROM)"
        echo
        cat "$OUT/table.md"
    } >>"$BENCH_DIR/RESULTS.md"
    log "appended to bench/RESULTS.md"
fi
