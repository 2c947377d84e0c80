#!/usr/bin/env bash
# relay.sh - the relay of last resort against coturn's TURN relay and raw
# loopback TCP, in one run, on this machine (issue 5).
#
#   bench/relay.sh                 # builds, runs, prints the table
#   SECONDS_PER_RUN=5 bench/relay.sh
#   APPEND=1 bench/relay.sh        # also appends the table to bench/RESULTS.md
#
# For 1 and 50 concurrent sessions it measures:
#   rendezvousd   bench/loadgen_relay --mode ws: binary relay frames of 16 KiB
#                 between pairs of authenticated nodes (consented sessions),
#                 at most 256 KiB in flight per session; the server with its
#                 defaults (--relay-rate 128 MiB/s per node, 256-byte
#                 receive chunks), and tuned for relaying: --rx-buffer
#                 16384 --relay-rate 0 (see README "Configuration").
#   raw TCP       loadgen_relay --mode tcp through `--mode forwarder`, a
#                 thread-per-pair read/write splice: the ceiling.
#   coturn        turnserver (Debian coturn) on 127.0.0.1 with a temporary
#                 config, loaded by turnutils_uclient: UDP, client-to-client
#                 (-y), 1200-byte messages, -m 1 and -m 50 clients. MB/s is
#                 the steady-state slope of its per-second tot_recv_bytes.
# Latency: loadgen_relay's one-way delay of 1200-byte messages sent every
# 10 ms per session (p50 / p99, microseconds, "added" by the path in
# between); coturn's uclient only reports an average round trip, shown as
# avg RTT/2. Every wait is bounded; everything started here is stopped by
# PID on exit.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
SRV_BUILD=${SRV_BUILD:-$REPO_DIR/build-relay/release}
GEN_DIR=${GEN_DIR:-$REPO_DIR/build-relay/bench}
OUT=${OUT:-$(mktemp -d /tmp/rdv-relay-bench.XXXXXX)}
RDV_PORT=${RDV_PORT:-18580}
FWD_PORT=${FWD_PORT:-18581}
TURN_PORT=${TURN_PORT:-18582}
SECS=${SECONDS_PER_RUN:-5}
PIDS=()

log() { printf '%s\n' "$*" >&2; }
die() { log "relay.sh: $*"; exit 1; }
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
}
trap cleanup EXIT

command -v turnserver >/dev/null || die "turnserver not found (apt-get install coturn)"
command -v turnutils_uclient >/dev/null || die "turnutils_uclient not found (coturn)"
command -v curl >/dev/null || die "curl not found"

# ---- build ---------------------------------------------------------------
log "building rendezvousd (Release) in $SRV_BUILD and loadgen_relay in $GEN_DIR"
cmake -S "$REPO_DIR" -B "$SRV_BUILD" -DCMAKE_BUILD_TYPE=Release -DRDV_SANITIZE=OFF \
    -DRDV_BUILD_TESTS=OFF >"$OUT/cmake.log" 2>&1 || die "cmake failed; see $OUT/cmake.log"
cmake --build "$SRV_BUILD" -j2 --target rendezvousd >>"$OUT/cmake.log" 2>&1 \
    || die "building rendezvousd failed; see $OUT/cmake.log"
mkdir -p "$GEN_DIR"
# shellcheck disable=SC2046
cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I "$REPO_DIR" \
    -o "$GEN_DIR/loadgen_relay" "$BENCH_DIR/loadgen_relay.c" "$REPO_DIR"/schema/*.c \
    $(pkg-config --cflags --libs jansson libsodium) -lpthread -lm >"$OUT/cc.log" 2>&1 \
    || die "building loadgen_relay failed; see $OUT/cc.log"
RDVD=$SRV_BUILD/rendezvous/rendezvousd
GEN=$GEN_DIR/loadgen_relay

# ---- servers --------------------------------------------------------------
start_rdv() { # extra flags...
    rm -f "$OUT"/rdv.db*
    "$RDVD" --port "$RDV_PORT" --db "$OUT/rdv.db" --name bench --log-level warn "$@" \
        >>"$OUT/rdv.log" 2>&1 &
    RDV_PID=$!
    PIDS+=("$RDV_PID")
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$RDV_PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$RDV_PID" 2>/dev/null || die "rendezvousd exited; see $OUT/rdv.log"
        sleep 0.1
    done
    die "rendezvousd not ready in 10 s"
}
stop_rdv() {
    kill -TERM "$RDV_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$RDV_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$RDV_PID" 2>/dev/null
}

"$GEN" --mode forwarder --port "$FWD_PORT" >"$OUT/forwarder.log" 2>&1 &
PIDS+=($!)

cat >"$OUT/turn.conf" <<EOF
listening-ip=127.0.0.1
listening-port=$TURN_PORT
relay-ip=127.0.0.1
min-port=50000
max-port=59999
allow-loopback-peers
no-tls
no-dtls
no-cli
lt-cred-mech
user=bench:bench
realm=bench
fingerprint
no-multicast-peers
simple-log
log-file=$OUT/turn.log
pidfile=$OUT/turn.pid
userdb=$OUT/turndb
EOF
turnserver -c "$OUT/turn.conf" >"$OUT/turn.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do
    ss -Hlnu "sport = :$TURN_PORT" 2>/dev/null | grep -q . && break
    sleep 0.1
done
ss -Hlnu "sport = :$TURN_PORT" 2>/dev/null | grep -q . || die "turnserver did not start; see $OUT/turn.out"

# ---- measurements ----------------------------------------------------------
# loadgen N MODE PORT -> one JSON line (also kept in $OUT)
loadgen() {
    timeout $((SECS + 60)) "$GEN" --mode "$2" --port "$3" --sessions "$1" --seconds "$SECS" \
        --lat-seconds 3 2>>"$OUT/loadgen.log" | tail -1
}
jget() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['$2'])" "$1"; }

# coturn N -> "MBps avg_rtt_ms"
coturn() {
    local n=$1 msgs
    # enough messages for a steady state of a few seconds: one client pair
    # moves ~25k msgs/s, 50 clients ~40-60k msgs/s together (they ramp up)
    if [ "$n" = 1 ]; then msgs=$((25000 * SECS)); else msgs=$(( (60000 * SECS) / n + 1000 )); fi
    timeout $((SECS * 4 + 60)) turnutils_uclient -p "$TURN_PORT" -u bench -w bench \
        -e 127.0.0.1 -y -c -m "$n" -l 1200 -n "$msgs" -z 0 127.0.0.1 \
        >"$OUT/uclient-$n.log" 2>&1
    timeout 60 turnutils_uclient -p "$TURN_PORT" -u bench -w bench -e 127.0.0.1 -y -c \
        -m "$n" -l 1200 -n 300 -z 10 127.0.0.1 >"$OUT/uclient-lat-$n.log" 2>&1
    python3 - "$OUT/uclient-$n.log" "$OUT/uclient-lat-$n.log" <<'PY'
import re, sys
tot = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"\s*(\d+): : start_mclient: msz=\d+, .*tot_recv_bytes ~ (\d+)", line)
    if m:
        tot.append((int(m.group(1)), int(m.group(2))))
d = [b2 - b1 for (t1, b1), (t2, b2) in zip(tot, tot[1:]) if t2 == t1 + 1]
top = max(d) if d else 0
steady = [x for x in d if x >= top / 2] or [0]
rtt = "nan"
for line in open(sys.argv[2], errors="replace"):
    m = re.search(r"Average round trip delay ([0-9.]+) ms", line)
    if m:
        rtt = m.group(1)
print("%.1f %s" % (sum(steady) / len(steady) / 1e6, rtt))
PY
}

declare -A MBPS P50 P99
for n in 1 50; do
    log "sessions=$n: rendezvousd (defaults)"
    start_rdv
    r=$(loadgen "$n" ws "$RDV_PORT"); echo "$r" >>"$OUT/results.jsonl"
    MBPS[rdv,$n]=$(jget "$r" mbps); P50[rdv,$n]=$(jget "$r" lat_p50_us); P99[rdv,$n]=$(jget "$r" lat_p99_us)
    stop_rdv
    log "sessions=$n: rendezvousd --rx-buffer 16384 --relay-rate 0"
    start_rdv --rx-buffer 16384 --relay-rate 0
    r=$(loadgen "$n" ws "$RDV_PORT"); echo "$r" >>"$OUT/results.jsonl"
    MBPS[rdv16,$n]=$(jget "$r" mbps); P50[rdv16,$n]=$(jget "$r" lat_p50_us); P99[rdv16,$n]=$(jget "$r" lat_p99_us)
    stop_rdv
    log "sessions=$n: raw TCP forwarder"
    r=$(loadgen "$n" tcp "$FWD_PORT"); echo "$r" >>"$OUT/results.jsonl"
    MBPS[tcp,$n]=$(jget "$r" mbps); P50[tcp,$n]=$(jget "$r" lat_p50_us); P99[tcp,$n]=$(jget "$r" lat_p99_us)
    log "sessions=$n: coturn (turnutils_uclient -m $n)"
    read -r mb rtt < <(coturn "$n")
    MBPS[turn,$n]=$mb
    # uclient's clock has 1 ms resolution: show its average round trip as is
    P50[turn,$n]="n/a (avg RTT $(printf '%.3f' "$rtt") ms"
    P99[turn,$n]="1-ms clock)"
done

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2f' % (a/b) if b>0 else 'n/a')" "$1" "$2"; }
{
    echo "Relay, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${SECS} s per run:"
    echo
    echo "| path | sessions | MB/s | one-way latency p50 / p99 (us) | vs raw TCP | vs coturn |"
    echo "|---|---|---|---|---|---|"
    for n in 1 50; do
        for k in rdv rdv16 tcp turn; do
            case $k in
            rdv) name="rendezvousd (defaults)";;
            rdv16) name="rendezvousd --rx-buffer 16384 --relay-rate 0";;
            tcp) name="raw TCP forwarder (ceiling)";;
            turn) name="coturn TURN/UDP (uclient -y)";;
            esac
            echo "| $name | $n | ${MBPS[$k,$n]} | ${P50[$k,$n]} / ${P99[$k,$n]} | $(ratio "${MBPS[$k,$n]}" "${MBPS[tcp,$n]}") | $(ratio "${MBPS[$k,$n]}" "${MBPS[turn,$n]}") |"
        done
    done
} >"$OUT/table.md"
cat "$OUT/table.md"
log "raw results: $OUT"
if [ "${APPEND:-0}" = 1 ]; then
    {
        echo
        echo "## Relay"
        echo
        echo "\`bench/relay.sh\` (loadgen_relay: 16 KiB binary relay frames, 256 KiB in flight per"
        echo "session; latency: 1200-byte messages every 10 ms; coturn: turnutils_uclient -y -l 1200,"
        echo "MB/s from its per-second counters, latency = its average round trip / 2)."
        echo
        cat "$OUT/table.md"
    } >>"$BENCH_DIR/RESULTS.md"
    log "appended to bench/RESULTS.md"
fi
