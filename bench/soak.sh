#!/usr/bin/env bash
# bench/soak.sh - the soak (issue 18): mixed load against a Release
# rendezvousd for a duration you pass, sampled into a CSV and a plot.
#
#   bench/soak.sh --duration 1800            # 30 minutes
#   bench/soak.sh --duration 120 --load PATH # ctest soak_short (2 minutes)
#
# Builds rendezvousd (and tests/soak/soak_load unless --load names one) in
# Release, without sanitizers, into --build-dir (default build/soak-release),
# from the working tree; or runs --server PATH. Starts it on loopback
# (ephemeral WebSocket and STUN ports, a fresh database in --out), runs
# soak_load (signaling pairs, churn storms with the offline queue, relay
# sessions, STUN, lookups, watches: see tests/soak/soak_load.c) for the
# duration, and every --sample seconds (default 5) appends to
# OUT/samples.csv the server's RSS, open descriptors and threads (from
# /proc), its /metrics counters (connections, offline queue depth, errors
# sent, routed messages, relay, STUN, drops) and the load's counters.
# Then stops the server with SIGTERM and writes OUT/soak.png (gnuplot).
#
# Fails (exit 1) when:
#   - soak_load fails: a message lost, duplicated or out of order (offers
#     and answers, relay datagrams, queued offers), a lookup unanswered, an
#     `error` of any kind, a long-lived node reconnected, STUN answers
#     under 99.9 %;
#   - the server sent any `error` (rendezvous_errors_sent_total, every code:
#     the load provokes none on purpose), dropped a message, logged an
#     ERROR line, or did not exit 0 on SIGTERM;
#   - after the warm-up (--warmup, default a quarter of the duration, at
#     least 30 s), the samples split in two halves and the second half's
#     peak RSS exceeds the first half's by more than 10 % + 4 MiB, or its
#     peak open descriptors by more than 16 (churn storms come every 10 s,
#     so both halves hold several).
# Every wait is bounded; the machine's load does not change the verdict
# (counts, not times).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
DURATION=120
WARMUP=
SAMPLE=5
BUILD_DIR=$REPO_DIR/build/soak-release
SERVER=
LOAD=
OUT=
LOAD_ARGS=()
SERVER_ARGS=()

usage() {
    sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --duration S --warmup S --sample S --build-dir DIR --server PATH"
    echo "         --load PATH --out DIR --server-arg ARG (repeatable: one more rendezvousd"
    echo "         argument); soak_load options after --, e.g. -- --pairs 8"
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --sample) SAMPLE=$2; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --server) SERVER=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --server-arg) SERVER_ARGS+=("$2"); shift 2 ;;
    --) shift; LOAD_ARGS=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "soak.sh: unknown option '$1'" >&2; usage ;;
    esac
done
case "$DURATION$SAMPLE" in *[!0-9]*) echo "soak.sh: --duration and --sample are seconds" >&2; exit 2 ;; esac
if [ -z "$WARMUP" ]; then
    WARMUP=$(( DURATION / 4 )); [ "$WARMUP" -ge 30 ] || WARMUP=30
fi
[ "$DURATION" -gt $(( WARMUP + 4 * SAMPLE )) ] \
    || { echo "soak.sh: --duration must exceed the warm-up ($WARMUP s) by 4 samples" >&2; exit 2; }
OUT=${OUT:-$(mktemp -d /tmp/rdv-soak.XXXXXX)}
mkdir -p "$OUT"
rm -f "$OUT"/samples.csv "$OUT"/soak.png "$OUT"/load.status "$OUT"/server.log "$OUT"/soak.db*

log() { printf 'soak: %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

command -v gnuplot >/dev/null || die "gnuplot not found (scripts/bootstrap --test installs gnuplot-nox)"
command -v curl >/dev/null || die "curl not found"

# ---- build ------------------------------------------------------------------
if [ -z "$SERVER" ] || [ -z "$LOAD" ]; then
    targets=()
    [ -n "$SERVER" ] || targets+=(rendezvousd)
    [ -n "$LOAD" ] || targets+=(soak_load)
    log "building ${targets[*]} (Release, no sanitizers) in $BUILD_DIR"
    cmake -S "$REPO_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DRDV_SANITIZE=OFF \
        -DRDV_BUILD_TESTS=ON >"$OUT/build.log" 2>&1 || die "cmake failed; see $OUT/build.log"
    nice cmake --build "$BUILD_DIR" -j2 --target "${targets[@]}" >>"$OUT/build.log" 2>&1 \
        || die "build failed; see $OUT/build.log"
    [ -n "$SERVER" ] || SERVER=$BUILD_DIR/rendezvous/rendezvousd
    [ -n "$LOAD" ] || LOAD=$BUILD_DIR/tests/soak/soak_load
fi
[ -x "$SERVER" ] || die "no server at $SERVER"
[ -x "$LOAD" ] || die "no load generator at $LOAD"

# ---- the server -------------------------------------------------------------
SRV_PID=
LOAD_PID=
cleanup() {
    [ -n "$LOAD_PID" ] && kill "$LOAD_PID" 2>/dev/null || true
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
}
trap cleanup EXIT

srv_args=(--listen 127.0.0.1 --port 0 --stun-port 0 --db "$OUT/soak.db")
# the operator's listener, where /metrics lives when the server has one
if "$SERVER" --help 2>/dev/null | grep -q -- '--operator-listen'; then
    srv_args+=(--operator-listen 127.0.0.1:0)
fi
"$SERVER" "${srv_args[@]}" "${SERVER_ARGS[@]}" >"$OUT/server.log" 2>&1 &
SRV_PID=$!
PORT=
for _ in $(seq 1 200); do
    PORT=$(sed -n 's|.*listening on ws://[^ ]*:\([0-9][0-9]*\)/v1.*|\1|p' "$OUT/server.log" | head -1)
    [ -n "$PORT" ] && break
    kill -0 "$SRV_PID" 2>/dev/null || die "rendezvousd exited at start; see $OUT/server.log"
    sleep 0.05
done
[ -n "$PORT" ] || die "rendezvousd did not log its port within 10 s; see $OUT/server.log"
STUN_PORT=$(sed -n 's|.*stun on udp://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$OUT/server.log" | head -1)
[ -n "$STUN_PORT" ] || die "rendezvousd serves no STUN; see $OUT/server.log"
MPORT=$(sed -n 's|.*operator on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$OUT/server.log" | head -1)
MPORT=${MPORT:-$PORT}
log "rendezvousd pid $SRV_PID: ws port $PORT, STUN $STUN_PORT, metrics on $MPORT; output in $OUT"

# ---- the load ---------------------------------------------------------------
"$LOAD" --url "ws://127.0.0.1:$PORT/v1" --stun-port "$STUN_PORT" --duration "$DURATION" \
    --status "$OUT/load.status" "${LOAD_ARGS[@]}" >"$OUT/load.out" 2>"$OUT/load.err" &
LOAD_PID=$!

# ---- sampling ---------------------------------------------------------------
# metric NAME: the sum of every series of NAME in $METRICS (0 when absent)
metric() {
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d", s }' \
        <<<"$METRICS"
}
status() { sed -n "s/^$1=//p" "$OUT/load.status" 2>/dev/null | head -1; }
echo "t_s,rss_kb,fds,threads,connections,nodes,offline_queue,errors_sent,routed,dropped,relay_sessions,relay_dropped,stun_requests,load_offers_recv,load_relay_recv,load_storms,load_stun_recv,load_errors" \
    >"$OUT/samples.csv"
T0=$(date +%s)
next=$T0
while kill -0 "$LOAD_PID" 2>/dev/null; do
    now=$(date +%s)
    if [ "$now" -ge "$next" ]; then
        next=$(( next + SAMPLE ))
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo 0)
        thr=$(awk '/^Threads:/ { print $2 }' "/proc/$SRV_PID/status" 2>/dev/null || echo 0)
        fds=$(ls "/proc/$SRV_PID/fd" 2>/dev/null | wc -l)
        METRICS=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" || true)
        [ -n "$METRICS" ] || log "warning: /metrics did not answer at t=$(( now - T0 )) s"
        echo "$(( now - T0 )),${rss:-0},$fds,${thr:-0},$(metric rendezvous_connections),$(metric rendezvous_nodes_authenticated),$(metric rendezvous_offline_queue_depth),$(metric rendezvous_errors_sent_total),$(metric rendezvous_messages_routed_total),$(metric rendezvous_dropped_messages_total),$(metric rendezvous_relay_sessions),$(metric rendezvous_relay_dropped_messages_total),$(metric rendezvous_stun_requests_total),$(status offers_recv),$(status relay_recv),$(status storms),$(status stun_recv),$(status errors)" \
            >>"$OUT/samples.csv"
    fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.5
done
load_rc=0
wait "$LOAD_PID" || load_rc=$?
LOAD_PID=
METRICS=$(curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" || true)
printf '%s\n' "$METRICS" >"$OUT/metrics.final"

# ---- the server stops ---------------------------------------------------------
srv_rc=0
if kill -0 "$SRV_PID" 2>/dev/null; then
    kill -TERM "$SRV_PID"
    for _ in $(seq 1 200); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$SRV_PID" 2>/dev/null; then
        kill -KILL "$SRV_PID"; srv_rc=137
    fi
fi
wait "$SRV_PID" || srv_rc=$?
SRV_PID=

# ---- the plot -----------------------------------------------------------------
# rates: differences of counters between samples
awk -F, 'NR == 1 { next } NR > 2 { dt = $1 - t; if (dt > 0) printf "%s,%.1f,%.1f,%.1f\n", $1, ($9 - r) / dt, ($13 - s) / dt, ($15 - l) / dt } { t = $1; r = $9; s = $13; l = $15 }' \
    "$OUT/samples.csv" >"$OUT/rates.csv"
gnuplot >"$OUT/gnuplot.log" 2>&1 <<EOF || log "warning: gnuplot failed; see $OUT/gnuplot.log"
set terminal pngcairo size 1200,900 noenhanced
set output "$OUT/soak.png"
set datafile separator ","
set multiplot layout 3,1 title "rendezvousd soak: $DURATION s, warm-up $WARMUP s (dashed)"
set xlabel "seconds"
set offsets 0, 0, graph 0.15, graph 0.05
set yrange [0:*]
set y2range [0:*]
set key top left
set ylabel "RSS (MiB)"
set y2label "open descriptors"
set y2tics
set ytics nomirror
set arrow from $WARMUP, graph 0 to $WARMUP, graph 1 nohead dt 2
plot "$OUT/samples.csv" every ::1 using 1:(\$2/1024.0) with lines lw 2 title "RSS (MiB)", \
     "" every ::1 using 1:3 axes x1y2 with lines title "open descriptors"
unset y2label
unset y2tics
set ytics mirror
set ylabel "count"
plot "$OUT/samples.csv" every ::1 using 1:5 with lines title "connections", \
     "" every ::1 using 1:7 with lines title "offline queue depth", \
     "" every ::1 using 1:8 with lines lw 2 title "errors sent (total)", \
     "" every ::1 using 1:10 with lines title "messages dropped (total)"
set ylabel "per second"
plot "$OUT/rates.csv" using 1:2 with lines title "routed messages/s", \
     "" using 1:3 with lines title "STUN requests/s", \
     "" using 1:4 with lines title "relay datagrams/s"
unset multiplot
EOF

# ---- the verdict --------------------------------------------------------------
fails=0
summary=$(tail -1 "$OUT/load.out" 2>/dev/null || true)
log "load: ${summary:-no summary}"
if [ "$load_rc" -ne 0 ]; then
    log "FAIL: soak_load exited $load_rc:"; sed 's/^/  /' "$OUT/load.err" | tail -20 >&2
    fails=$(( fails + 1 ))
fi
errs=$(metric rendezvous_errors_sent_total)
if [ "${errs:-0}" -ne 0 ]; then
    log "FAIL: the server sent $errs error(s):"
    grep '^rendezvous_errors_sent_total' "$OUT/metrics.final" | awk '$NF != 0' | sed 's/^/  /' >&2
    fails=$(( fails + 1 ))
fi
drops=$(( $(metric rendezvous_dropped_messages_total) + $(metric rendezvous_relay_dropped_messages_total) ))
if [ "$drops" -ne 0 ]; then
    log "FAIL: the server dropped $drops message(s)"; fails=$(( fails + 1 ))
fi
if grep -E ' ERROR |"level":"error"|Sanitizer|runtime error' "$OUT/server.log" >"$OUT/server.errors"; then
    log "FAIL: the server logged errors:"; head -5 "$OUT/server.errors" | sed 's/^/  /' >&2
    fails=$(( fails + 1 ))
fi
if [ "$srv_rc" -ne 0 ]; then
    log "FAIL: rendezvousd exited $srv_rc on SIGTERM"; fails=$(( fails + 1 ))
fi
growth=$(python3 - "$OUT/samples.csv" "$WARMUP" <<'EOF'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if int(r["t_s"]) >= int(sys.argv[2])]
if len(rows) < 4:
    print("FAIL too few samples after the warm-up (%d)" % len(rows)); sys.exit()
h = len(rows) // 2
a, b = rows[:h], rows[h:]
rss_a = max(int(r["rss_kb"]) for r in a); rss_b = max(int(r["rss_kb"]) for r in b)
fd_a = max(int(r["fds"]) for r in a); fd_b = max(int(r["fds"]) for r in b)
bad = []
if rss_b > rss_a * 1.10 + 4096:
    bad.append("RSS grows: peak %d KiB after %d KiB" % (rss_b, rss_a))
if fd_b > fd_a + 16:
    bad.append("descriptors grow: peak %d after %d" % (fd_b, fd_a))
print(("FAIL " if bad else "OK ") + "; ".join(bad + [
    "peak RSS %d -> %d KiB, peak descriptors %d -> %d (halves of %d samples after %s s)"
    % (rss_a, rss_b, fd_a, fd_b, len(rows), sys.argv[2])]))
EOF
)
log "growth: $growth"
case "$growth" in OK*) ;; *) fails=$(( fails + 1 )) ;; esac
log "samples: $OUT/samples.csv ($(( $(wc -l <"$OUT/samples.csv") - 1 )) rows), plot: $OUT/soak.png"
if [ "$fails" -ne 0 ]; then
    log "FAIL ($fails check(s))"
    exit 1
fi
log "PASS"
