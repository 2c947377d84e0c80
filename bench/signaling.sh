#!/usr/bin/env bash
# signaling.sh - workload 1: 100 node pairs exchange ~530-byte offers, 200k
# messages, window 10 and window 1; rendezvousd with --verify-signatures off
# and on, then the PeerJS server, back to back on this machine. Prints one
# table (best of REPS runs per row, the median beside it) and the ratios.
#
#   bench/signaling.sh                 # defaults below
#   REPS=1 MESSAGES=50000 bench/signaling.sh
#   PERF=1 bench/signaling.sh          # also perf-profile rendezvousd (1st rep)
#
# Closed-loop latency is queueing (Little's law: in-flight / rate), so each
# server also gets one paced run below saturation: window 1 at PACED_RATE
# msgs/s in total (PACED_MESSAGES messages; PACED_RATE=0 skips it).
set -u
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

PAIRS=${PAIRS:-100}
MESSAGES=${MESSAGES:-200000}
WINDOWS=${WINDOWS:-"10 1"}
REPS=${REPS:-2}
PERF=${PERF:-0}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
PACED_RATE=${PACED_RATE:-5000}
PACED_MESSAGES=${PACED_MESSAGES:-50000}

build_all
log "output in $OUT"
"$GEN_BUILD/verify_rate" --seconds 2 >"$OUT/verify_rate.txt" 2>&1 || die "verify_rate failed"
VERIFY_PER_S=$(awk '$1 == "sodium_verify" {print $2}' "$OUT/verify_rate.txt")
CODEC_VERIFY_PER_S=$(awk '$1 == "codec_verify" {print $2}' "$OUT/verify_rate.txt")

ROWS=()
declare -A RATE P99

# Server CPU microseconds per routed message: robust to other work on the
# machine, which slows a run down but does not add to the server's CPU time.
us_per_msg() {
    awk -v c="$(field server_cores "$1")" -v r="$(field msgs_per_s "$1")" \
        'BEGIN { if (r > 0 && c > 0) printf "%.1f", 1e6 * c / r; else print "n/a" }'
}

# run_config LABEL PROTO PORT SERVER_PID
run_config() {
    local label=$1 proto=$2 port=$3 spid=$4 w rep line
    for w in $WINDOWS; do
        local rates=() lines=()
        for rep in $(seq 1 "$REPS"); do
            local perf_pid=
            wait_quiet
            if [ "$PERF" = 1 ] && [ "$rep" = 1 ] && [ "$proto" = rdv ]; then
                perf record -e cpu-clock -g -p "$RDV_PID" -o "$OUT/perf-$label-w$w.data" \
                    >"$OUT/perf-$label-w$w.log" 2>&1 &
                perf_pid=$!
                sleep 0.3
            fi
            line=$(timeout $((RUN_TIMEOUT + 30)) "$GEN_BUILD/loadgen_signal" --proto "$proto" \
                --port "$port" --name bench --pairs "$PAIRS" --messages "$MESSAGES" \
                --window "$w" --timeout "$RUN_TIMEOUT" --server-pid "$spid" --quiet \
                2>>"$OUT/loadgen.log" \
                | grep '^RESULT')
            if [ -n "$perf_pid" ]; then
                kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null
                perf report -i "$OUT/perf-$label-w$w.data" --no-children --sort dso --stdio \
                    -g none >"$OUT/perf-$label-w$w.dso.txt" 2>/dev/null
                perf report -i "$OUT/perf-$label-w$w.data" --children --stdio -g none \
                    >"$OUT/perf-$label-w$w.children.txt" 2>/dev/null
                perf report -i "$OUT/perf-$label-w$w.data" --no-children --stdio -g none \
                    >"$OUT/perf-$label-w$w.self.txt" 2>/dev/null
            fi
            echo "$label w=$w rep=$rep $line" >>"$OUT/results.txt"
            [ -n "$line" ] || { log "bench: $label window $w: no result (see $OUT/loadgen.log)"; line="RESULT status=failed msgs_per_s=0"; }
            if [ "$(field status "$line")" != ok ]; then
                log "bench: $label window $w rep $rep: $line"
            fi
            rates+=("$(field msgs_per_s "$line")")
            lines+=("$line")
        done
        # The best run (highest rate) is the row: other work on a shared
        # machine only ever slows a run down. The median is shown beside it.
        local med best i pick=${lines[0]}
        med=$(printf '%s\n' "${rates[@]}" | median)
        best=$(printf '%s\n' "${rates[@]}" | sort -g | tail -1)
        for i in "${!rates[@]}"; do
            [ "${rates[$i]}" = "$best" ] && { pick=${lines[$i]}; break; }
        done
        RATE[$label,$w]=$best
        P99[$label,$w]=$(field p99_us "$pick")
        ROWS+=("$(printf '| %-22s | %6s | %9s | %9s | %7s | %7s | %7s | %7s | %5s | %4s | %4s | %4s | %s |' \
            "$label" "$w" "$best" "$med" "$(field p50_us "$pick")" "$(field p99_us "$pick")" \
            "$(field p999_us "$pick")" "$(field max_us "$pick")" "$(us_per_msg "$pick")" \
            "$(field server_cores "$pick")" \
            "$(field loadgen_cores "$pick")" "$(field other_cores "$pick")" \
            "$(field errors "$pick")")")
    done
    if [ "$PACED_RATE" -gt 0 ]; then
        wait_quiet
        line=$(timeout $((RUN_TIMEOUT + 30)) "$GEN_BUILD/loadgen_signal" --proto "$proto" \
            --port "$port" --name bench --pairs "$PAIRS" --messages "$PACED_MESSAGES" \
            --warmup $((PACED_RATE / 2)) --window 1 --rate "$PACED_RATE" \
            --timeout "$RUN_TIMEOUT" --server-pid "$spid" --quiet 2>>"$OUT/loadgen.log" \
            | grep '^RESULT')
        echo "$label paced $line" >>"$OUT/results.txt"
        [ -n "$line" ] || line="RESULT status=failed msgs_per_s=0"
        [ "$(field status "$line")" = ok ] || log "bench: $label paced: $line"
        P99[$label,paced]=$(field p99_us "$line")
        ROWS+=("$(printf '| %-22s | %6s | %9s | %9s | %7s | %7s | %7s | %7s | %5s | %4s | %4s | %4s | %s |' \
            "$label" "1, paced" "$(field msgs_per_s "$line")" "(1 run)" "$(field p50_us "$line")" \
            "$(field p99_us "$line")" "$(field p999_us "$line")" "$(field max_us "$line")" \
            "$(us_per_msg "$line")" \
            "$(field server_cores "$line")" "$(field loadgen_cores "$line")" \
            "$(field other_cores "$line")" "$(field errors "$line")")")
    fi
}

log "rendezvousd, --verify-signatures off"
start_rdv off
run_config "rendezvousd verify=off" rdv "$RDV_PORT" "$RDV_PID"
stop_rdv
log "rendezvousd, --verify-signatures on"
start_rdv on
run_config "rendezvousd verify=on" rdv "$RDV_PORT" "$RDV_PID"
stop_rdv
log "PeerJS server"
start_peerjs
run_config "PeerJS (peer@1.0.2)" peerjs "$PEER_PORT" "$PEER_PID"
stop_peerjs

# the same per-core check after the runs: a drift between the two means the
# CPU itself got slower or faster meanwhile (e.g. a busy host under this VM)
"$GEN_BUILD/verify_rate" --seconds 2 >"$OUT/verify_rate_end.txt" 2>&1 || die "verify_rate failed"
VERIFY_END=$(awk '$1 == "sodium_verify" {print $2}' "$OUT/verify_rate_end.txt")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

{
echo "## Signaling: $PAIRS pairs, $MESSAGES messages (+5% warm-up), best of $REPS runs; paced: window 1 at $PACED_RATE msgs/s, $PACED_MESSAGES messages"
echo
machine_line
echo
echo "Latency is one-way (send to receive, one clock), of the best run. CPU columns: cores"
echo "used during that run by the server, the load generator, and anything else on the machine."
echo
echo "srv us/msg: server CPU time per message (server cores / msgs/s), which other work on"
echo "the machine does not inflate."
echo
echo "| server                 | window | msgs/s best | median | p50 us | p99 us | p999 us | max us | srv us/msg | srv cores | gen cores | other | errors |"
echo "|------------------------|--------|-------------|--------|--------|--------|---------|--------|------------|-----------|-----------|-------|--------|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Ed25519 on one core (bench/verify_rate): crypto_sign_verify_detached $VERIFY_PER_S/s"
echo "before the runs, $VERIFY_END/s after them;"
echo "the codec's rdv_sig_verify_from (JCS + verify, what the server runs per offer) $CODEC_VERIFY_PER_S/s."
echo
for w in $WINDOWS; do
    off=${RATE["rendezvousd verify=off",$w]}; on=${RATE["rendezvousd verify=on",$w]}
    pj=${RATE["PeerJS (peer@1.0.2)",$w]}
    echo "- window $w: verify off / PeerJS = $(ratio "$off" "$pj")x msgs/s (goal >= 3);" \
         "verify on / PeerJS = $(ratio "$on" "$pj")x;" \
         "verify on / Ed25519 verify limit = $(ratio "$on" "$VERIFY_PER_S")" \
         "(/ codec verify limit = $(ratio "$on" "$CODEC_VERIFY_PER_S"));" \
         "p99 PeerJS / ours: off $(ratio "${P99["PeerJS (peer@1.0.2)",$w]}" "${P99["rendezvousd verify=off",$w]}")x," \
         "on $(ratio "${P99["PeerJS (peer@1.0.2)",$w]}" "${P99["rendezvousd verify=on",$w]}")x (goal >= 10)"
done
if [ "$PACED_RATE" -gt 0 ]; then
    pj=${P99["PeerJS (peer@1.0.2)",paced]}
    echo "- paced, window 1 at $PACED_RATE msgs/s: p99 PeerJS / ours:" \
         "off $(ratio "$pj" "${P99["rendezvousd verify=off",paced]}")x," \
         "on $(ratio "$pj" "${P99["rendezvousd verify=on",paced]}")x (goal >= 10)"
fi
} | tee "$OUT/table.md"
