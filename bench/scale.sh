#!/usr/bin/env bash
# scale.sh - what K idle authenticated nodes cost rendezvousd, per event
# loop (issue 15): its CPU while they sit idle (pings every 20 s, the
# sweep), RSS per node, and a paced signaling stream through the same
# server (p50 / p99, the server's CPU). Each event loop's every wake-up
# differs: poll() scans every connection, libuv (epoll) only the ready ones.
#
#   bench/scale.sh
#   K_NODES=10000 LOOPS="uv poll" REPS=3 bench/scale.sh
#
# Per run: a fresh server (`start_rdv on`: caps lifted, verification on),
# K_NODES nodes through PROCS loadgen_idle processes, SETTLE s, then the
# server's CPU over IDLE_S s with nothing but the idle nodes, then
# loadgen_signal (SIG_PAIRS pairs, window SIG_WINDOW, SIG_RATE msgs/s,
# SIG_S s after a 2 s warm-up). Runs of the loops are interleaved
# (A B, B A, ...). Cells are min / median / max over REPS runs.
# The generators share the machine's cores with the server (no pinning:
# the idle nodes need several processes); `other` is everything else.
set -u
. "$(dirname "$0")/lib.sh"

K_NODES=${K_NODES:-10000}
PROCS=${PROCS:-4}
INFLIGHT=${INFLIGHT:-250}
LOOPS=${LOOPS:-"uv poll"}
REPS=${REPS:-3}
SETTLE=${SETTLE:-3}
IDLE_S=${IDLE_S:-30}
SIG_PAIRS=${SIG_PAIRS:-20}
SIG_WINDOW=${SIG_WINDOW:-4}
SIG_RATE=${SIG_RATE:-2000}
SIG_S=${SIG_S:-20}
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-120}
QUIET_WAIT=${QUIET_WAIT:-10}
QUIET_CORES=${QUIET_CORES:-0.3}

build_all
trap 'pkill -f "loadgen_idle --proto rdv --port $RDV_PORT" 2>/dev/null; cleanup' EXIT
log "output in $OUT"

# run_scale LOOP: one run; prints "loop idle_cores kib_per_node msgs_per_s p50 p99 srv_cores other"
run_scale() {
    local loop=$1 i per rss0 rss1 a b tck gens=() line
    wait_quiet
    start_rdv on --stun off --event-loop "$loop"
    rss0=$(rss_kb "$RDV_PID")
    rm -f "$OUT"/ready.*
    per=$(( (K_NODES + PROCS - 1) / PROCS ))
    for i in $(seq 0 $((PROCS - 1))); do
        "$GEN_BUILD/loadgen_idle" --proto rdv --port "$RDV_PORT" --name bench --conns "$per" \
            --inflight "$INFLIGHT" --offset $((i * 100000)) --family 7 \
            --hold $((CONNECT_TIMEOUT + IDLE_S + SIG_S + 60)) --timeout "$CONNECT_TIMEOUT" \
            --ready-file "$OUT/ready.$i" >"$OUT/scale-idle.$i.out" 2>"$OUT/scale-idle.$i.err" &
        gens+=($!)
    done
    local t=0
    while [ "$(ls "$OUT"/ready.* 2>/dev/null | wc -l)" -lt "$PROCS" ] &&
        [ $t -lt $((CONNECT_TIMEOUT * 10)) ]; do
        sleep 0.1; t=$((t + 1))
    done
    sleep "$SETTLE"
    rss1=$(rss_kb "$RDV_PID")
    tck=$(getconf CLK_TCK)
    a=$(proc_ticks "$RDV_PID"); sleep "$IDLE_S"; b=$(proc_ticks "$RDV_PID")
    line=$("$GEN_BUILD/loadgen_signal" --port "$RDV_PORT" --name bench --pairs "$SIG_PAIRS" \
        --window "$SIG_WINDOW" --rate "$SIG_RATE" --warmup $((SIG_RATE * 2)) \
        --messages $((SIG_RATE * (SIG_S + 2))) --timeout $((SIG_S + 60)) \
        --server-pid "$RDV_PID" --quiet 2>>"$OUT/scale-signal.err" | grep '^RESULT')
    kill "${gens[@]}" 2>/dev/null; wait "${gens[@]}" 2>/dev/null
    stop_rdv
    awk -v l="$loop" -v a="$a" -v b="$b" -v t="$tck" -v s="$IDLE_S" -v r0="$rss0" -v r1="$rss1" \
        -v k="$K_NODES" -v m="$(field msgs_per_s "$line")" -v p50="$(field p50_us "$line")" \
        -v p99="$(field p99_us "$line")" -v sc="$(field server_cores "$line")" \
        -v oc="$(field other_cores "$line")" \
        'BEGIN { printf "%s %.3f %.2f %s %s %s %s %s\n", l, (b - a) / t / s, (r1 - r0) / k,
                 m == "" ? 0 : m, p50 == "" ? 0 : p50, p99 == "" ? 0 : p99,
                 sc == "" ? -1 : sc, oc == "" ? -1 : oc }'
}

: >"$OUT/scale.txt"
for rep in $(seq 1 "$REPS"); do
    order=$LOOPS
    [ $((rep % 2)) = 0 ] && order=$(printf '%s\n' $LOOPS | tac | tr '\n' ' ')
    for loop in $order; do
        log "rep $rep: --event-loop $loop, $K_NODES idle nodes"
        run_scale "$loop" | tee -a "$OUT/scale.txt" >&2
    done
done

server_line
machine_line
echo "$K_NODES idle authenticated nodes ($PROCS loadgen_idle), then loadgen_signal $SIG_PAIRS pairs, window $SIG_WINDOW, $SIG_RATE msgs/s for $SIG_S s; $REPS runs per loop, interleaved; min / median / max."
echo
echo "| event loop | runs | idle server cores | KiB/node | msgs/s | p50 µs | p99 µs | srv cores (signaling) | other cores |"
echo "|---|---|---|---|---|---|---|---|---|"
for loop in $LOOPS; do
    f=$(mktemp)
    awk -v l="$loop" '$1 == l' "$OUT/scale.txt" >"$f"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$loop" "$(wc -l <"$f")" \
        "$(awk '{print $2}' "$f" | stats2)" "$(awk '{print $3}' "$f" | stats2)" \
        "$(awk '{print $4}' "$f" | statsi)" "$(awk '{print $5}' "$f" | statsi)" \
        "$(awk '{print $6}' "$f" | statsi)" "$(awk '{print $7}' "$f" | stats2)" \
        "$(awk '{print $8}' "$f" | stats2)"
    rm -f "$f"
done
