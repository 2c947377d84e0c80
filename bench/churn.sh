#!/usr/bin/env bash
# churn.sh - workload 3: connect/authenticate/disconnect storms while a
# light signaling load measures routing latency. For each server:
#   1. baseline: SIG_PAIRS pairs, window 1, SIG_RATE messages/s in total for
#      SECONDS, no churn;
#   2. the same signaling run while CHURN_PROCS generators each keep
#      CHURN_SLOTS connections cycling connect -> hello/welcome (PeerJS:
#      OPEN) -> close -> reconnect as fast as the server lets them.
# Every rendezvousd authentication is a presence write (online, then
# offline) to its SQLite store; handshakes/s is the presence update rate.
# rendezvousd runs with its default --verify-signatures on.
#
#   bench/churn.sh
#   SECONDS_RUN=5 bench/churn.sh
set -u
. "$(dirname "$0")/lib.sh"
GEN_PIDS=()
stop_gens() { local p; for p in "${GEN_PIDS[@]}"; do stop_pid "$p"; done; GEN_PIDS=(); }
trap 'stop_gens; cleanup' EXIT
trap 'exit 130' INT TERM

SECONDS_RUN=${SECONDS_RUN:-10}
SIG_PAIRS=${SIG_PAIRS:-20}
SIG_RATE=${SIG_RATE:-2000}
CHURN_PROCS=${CHURN_PROCS:-2}
CHURN_SLOTS=${CHURN_SLOTS:-100}

build_all
log "output in $OUT"
ROWS=()
MSGS=$((SIG_RATE * SECONDS_RUN))

# signal_run PROTO PORT SERVER_PID -> RESULT line
signal_run() {
    timeout $((SECONDS_RUN * 4 + 60)) "$GEN_BUILD/loadgen_signal" --proto "$1" --port "$2" \
        --name bench --pairs "$SIG_PAIRS" --window 1 --rate "$SIG_RATE" --messages "$MSGS" \
        --warmup $((SIG_RATE / 2)) --family 11 --timeout $((SECONDS_RUN * 4 + 30)) \
        --server-pid "$3" --quiet 2>>"$OUT/loadgen.log" | grep '^RESULT'
}

# run_churn LABEL PROTO PORT SERVER_PID
run_churn() {
    local label=$1 proto=$2 port=$3 spid=$4 base during i hs=0 failed=0 line f p99=0
    sleep 1
    wait_quiet
    base=$(signal_run "$proto" "$port" "$spid")
    echo "$label baseline $base" >>"$OUT/results.txt"
    wait_quiet
    rm -f "$OUT"/churn-$proto.*.out
    GEN_PIDS=()
    # the churners start first and run a little longer than the signaling run,
    # which needs ~1 s to build its messages and connect
    for i in $(seq 0 $((CHURN_PROCS - 1))); do
        "$GEN_BUILD/loadgen_idle" --proto "$proto" --port "$port" --name bench \
            --conns "$CHURN_SLOTS" --inflight "$CHURN_SLOTS" --offset $((i * 100000)) \
            --family 12 --churn $((SECONDS_RUN + 4)) \
            --timeout $((SECONDS_RUN + 30)) \
            >"$OUT/churn-$proto.$i.out" 2>"$OUT/churn-$proto.$i.err" &
        GEN_PIDS+=($!)
    done
    during=$(signal_run "$proto" "$port" "$spid")
    echo "$label churn $during" >>"$OUT/results.txt"
    for i in "${GEN_PIDS[@]}"; do
        local w=0
        while kill -0 "$i" 2>/dev/null && [ $w -lt 600 ]; do sleep 0.1; w=$((w + 1)); done
        stop_pid "$i"
    done
    GEN_PIDS=()
    local rate=0
    for f in "$OUT"/churn-$proto.*.out; do
        line=$(grep '^RESULT' "$f")
        [ -n "$line" ] || { log "bench: $label: no churn result in $f"; continue; }
        echo "$label churner $line" >>"$OUT/results.txt"
        rate=$(awk -v a="$rate" -v b="$(field handshakes_per_s "$line")" 'BEGIN {print a + b}')
        failed=$((failed + $(field failed "$line")))
        p99=$(awk -v a="$p99" -v b="$(field hs_p99_ms "$line")" 'BEGIN {print (b > a) ? b : a}')
    done
    kill -0 "$spid" 2>/dev/null || log "bench: $label: the server died during churn; see $OUT"
    [ -n "$base" ] || base="RESULT status=failed"
    [ -n "$during" ] || during="RESULT status=failed"
    ROWS+=("$(printf '| %-20s | %7s | %5s | %7s | %6s / %6s / %6s | %6s / %6s / %6s | %s / %s | %4s / %4s |' \
        "$label" "$rate" "$failed" "$p99" \
        "$(field p50_us "$base")" "$(field p99_us "$base")" "$(field p999_us "$base")" \
        "$(field p50_us "$during")" "$(field p99_us "$during")" "$(field p999_us "$during")" \
        "$(field msgs_per_s "$base")" "$(field msgs_per_s "$during")" \
        "$(field server_cores "$base")" "$(field server_cores "$during")")")
    for line in "$base" "$during"; do
        [ "$(field status "$line")" = ok ] || log "bench: $label: signaling run: $line"
    done
}

log "rendezvousd (verify on)"
start_rdv on
run_churn "rendezvousd" rdv "$RDV_PORT" "$RDV_PID"
stop_rdv
log "PeerJS server"
start_peerjs
run_churn "PeerJS (peer@1.0.2)" peerjs "$PEER_PORT" "$PEER_PID"
stop_peerjs

{
echo "## Churn: $CHURN_PROCS x $CHURN_SLOTS connections cycling for ${SECONDS_RUN}+ s; signaling $SIG_PAIRS pairs, window 1, $SIG_RATE msgs/s"
echo
machine_line
echo
echo "hs/s: completed handshakes per second during the storm (rendezvousd: authenticated, so"
echo "one presence update online and one offline each; PeerJS: WebSocket open + OPEN)."
echo "Latency: one-way signaling latency in microseconds, p50 / p99 / p999, without and with"
echo "the storm; msgs/s achieved (target $SIG_RATE); server cores used during each run."
echo
echo "| server               |    hs/s | fail | hs p99 ms | latency no churn (us)  | latency in churn (us)  | msgs/s   | srv cores |"
echo "|----------------------|---------|------|-----------|------------------------|------------------------|----------|-----------|"
printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/table.md"
