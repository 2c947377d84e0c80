#!/usr/bin/env bash
# signaling.sh - workload 1 (issue 8), measured the way issue 15 asks:
# fixed-duration runs after a warm-up, REPS runs per configuration,
# interleaved (A B B A A B ...), min / median / max of every figure and the
# range of the per-round ratio, never a best run.
#
#   bench/signaling.sh                      # all parts, defaults below
#   PARTS="off" REPS=5 bench/signaling.sh   # one part
#
# Parts (PARTS, default "off on paced"):
#   off    goal 1: server CPU per routed offer, rendezvousd
#          --verify-signatures off vs the PeerJS server, WINDOWS ("10 1"),
#          server pinned to core SERVER_CORE, generator to GEN_CORE (taskset),
#          so the generator's core use (gen) shows it is not the limit.
#   on     goal 2: rendezvousd with verification (the default) unpinned,
#          --verify-threads 1 then 2 interleaved, window 10; msgs/s against
#          (cores - generator) x one core's Ed25519 verify rate (verify_rate)
#          and server CPU per offer against the bare verify cost.
#   paced  goal 3: window 1 at PACED_RATE msgs/s in total, rendezvousd at its
#          defaults (verification on) vs PeerJS, pinned as in `off`: one-way
#          p50 / p99; and the raw TCP baseline (tcp_pair: a poll() forwarder
#          of the same bytes between the same number of pairs, pinned the
#          same way), so the table shows what the server adds over TCP.
#          Both generators pace the same way: one message per PACED_TICK_US
#          tick of a timerfd on an absolute schedule, sleeping in epoll_wait
#          between ticks (a generator that spun between ticks held its core
#          at 100 % and stalled that core's softirq work: p99 was its own).
# Every run starts a fresh server, builds its messages (loadgen_signal: one
# canonical template per direction, every offer unique; signed for
# verification, random signatures with --unsigned for verify off, PeerJS
# frames padded to the same byte count with --pad-to), connects PAIRS pairs,
# sends WARMUP unmeasured messages, then measures SECONDS_RUN seconds. The
# figures are the loadgen's win_* ones: CPU of the server, the generator and
# everything else during the measured seconds.
set -u
. "$(dirname "$0")/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

PAIRS=${PAIRS:-100}
WINDOWS=${WINDOWS:-"10 1"}
REPS=${REPS:-5}
SECONDS_RUN=${SECONDS_RUN:-20}
WARMUP=${WARMUP:-20000}
BUDGET_OFF=${BUDGET_OFF:-3000000}   # messages built per verify-off / PeerJS run
BUDGET_ON=${BUDGET_ON:-1500000}     # signed messages per verify-on run
PACED_RATE=${PACED_RATE:-5000}
# one message per tick, evenly spaced (not PACED_RATE/1000 back to back
# each millisecond, which queues a burst's last message behind the others)
PACED_TICK_US=${PACED_TICK_US:-$((1000000 / PACED_RATE))}
PARTS=${PARTS:-"off on paced"}
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
THREADS_LIST=${THREADS_LIST:-"1 2"}
RUN_TIMEOUT=$((SECONDS_RUN + 90))

build_all
log "output in $OUT"
"$GEN_BUILD/verify_rate" --seconds 2 >"$OUT/verify_rate.txt" 2>&1 || die "verify_rate failed"
VERIFY_PER_S=$(awk '$1 == "sodium_verify" {print $2}' "$OUT/verify_rate.txt")
NCORES=$(nproc)

# msg_bytes of our offer, for --pad-to (PeerJS gets the same frame size)
RDV_BYTES=

# run_one rdv|peerjs VERIFY PIN WINDOW [loadgen args...] [-- server flags...]:
# one run on a fresh server; prints its RESULT line. PIN: "pin" (server and
# generator on their cores) or "free".
run_one() {
    local who=$1 verify=$2 pin=$3 w=$4; shift 4
    local sflags=() gflags=() spid port line tsrv=() tgen=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do gflags+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    sflags=("$@")
    if [ "$pin" = pin ]; then
        tsrv=(taskset -c "$SERVER_CORE"); tgen=(taskset -c "$GEN_CORE")
    fi
    wait_quiet
    if [ "$who" = rdv ]; then
        RDVD_PREFIX="${tsrv[*]}" start_rdv "$verify" --stun off "${sflags[@]}"
        spid=$RDV_PID; port=$RDV_PORT
    else
        PEER_PREFIX="${tsrv[*]}" start_peerjs
        spid=$PEER_PID; port=$PEER_PORT
    fi
    line=$(timeout $((RUN_TIMEOUT + 60)) "${tgen[@]}" "$GEN_BUILD/loadgen_signal" --proto "$who" \
        --port "$port" --name bench --pairs "$PAIRS" --window "$w" --warmup "$WARMUP" \
        --seconds "$SECONDS_RUN" --timeout "$RUN_TIMEOUT" --server-pid "$spid" --quiet \
        "${gflags[@]}" 2>>"$OUT/loadgen.log" | grep '^RESULT')
    if [ "$who" = rdv ]; then stop_rdv; else stop_peerjs; fi
    [ -n "$line" ] || line="RESULT status=failed msgs_per_s=0"
    [ "$(field status "$line")" = ok ] || log "bench: $who $verify $pin w=$w: $line"
    printf '%s\n' "$line"
}

# run_tcp: one paced run through tcp_pair (the raw TCP forwarder), pinned
# like the servers; prints its RESULT line.
run_tcp() {
    local n=$1 port=18790 spid line tsrv=() tgen=()
    tsrv=(taskset -c "$SERVER_CORE"); tgen=(taskset -c "$GEN_CORE")
    wait_quiet
    port_free "$port" || die "port $port is in use"
    "${tsrv[@]}" "$GEN_BUILD/tcp_pair" serve --port "$port" 2>>"$OUT/tcp_pair.log" &
    spid=$!
    sleep 0.3
    line=$(timeout $((RUN_TIMEOUT + 60)) "${tgen[@]}" "$GEN_BUILD/tcp_pair" load --port "$port" \
        --pairs "$PAIRS" --rate "$PACED_RATE" --tick-us "$PACED_TICK_US" --messages "$n" --size "$RDV_BYTES" \
        --warmup $((PACED_RATE * 10)) --timeout "$RUN_TIMEOUT" --server-pid "$spid" \
        2>>"$OUT/tcp_pair.log" | grep '^RESULT')
    stop_pid "$spid"
    [ -n "$line" ] || line="RESULT status=failed msgs_per_s=0"
    printf '%s\n' "$line"
}


TABLES=()
row() { # row LABEL FILE: one table row over the runs in FILE
    local f=$2
    TABLES+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' "$1" \
        "$(wc -l <"$f")" "$(col "$f" msgs_per_s | stats)" "$(col "$f" srv_us_per_msg | stats)" \
        "$(col "$f" p50_us | stats)" "$(col "$f" p99_us | stats)" \
        "$(col "$f" win_server_cores | stats)" "$(col "$f" win_loadgen_cores | stats)" \
        "$(col "$f" win_other_cores | stats)" \
        "$(col "$f" errors | awk '{s+=$1} END {print s+0}') / $(grep -vc 'status=ok' "$f")")")
}
HEADER='| configuration | runs | msgs/s | srv us/msg | p50 us | p99 us | srv cores | gen cores | other cores | errors / bad runs |
|---|---|---|---|---|---|---|---|---|---|'
NOTES=()


rdv_bytes() { # the size of our offer frame (from a short run's RESULT line)
    [ -n "$RDV_BYTES" ] && return
    start_rdv off --stun off
    local l
    l=$(timeout 60 "$GEN_BUILD/loadgen_signal" --proto rdv --port "$RDV_PORT" --name bench \
        --pairs 2 --messages 100 --warmup 10 --unsigned --quiet 2>>"$OUT/loadgen.log" | grep '^RESULT')
    stop_rdv
    RDV_BYTES=$(field msg_bytes "$l")
    [ -n "$RDV_BYTES" ] || die "cannot size the offer"
}

for part in $PARTS; do
case $part in
off)
    rdv_bytes
    for w in $WINDOWS; do
        fa="$OUT/off-rdv-w$w.txt" fb="$OUT/off-peerjs-w$w.txt"
        : >"$fa"; : >"$fb"
        for rep in $(seq 1 "$REPS"); do
            order="A B"; [ $((rep % 2)) = 0 ] && order="B A"
            for x in $order; do
                if [ "$x" = A ]; then
                    run_one rdv off pin "$w" --unsigned --messages "$BUDGET_OFF" >>"$fa"
                else
                    run_one peerjs - pin "$w" --pad-to "$RDV_BYTES" --messages "$BUDGET_OFF" >>"$fb"
                fi
            done
        done
        row "rendezvousd verify=off, window $w, pinned" "$fa"
        row "PeerJS, window $w, pinned" "$fb"
        NOTES+=("- window $w: server CPU per offer, PeerJS / ours per round (goal >= 3): $(ratio_range "$fa" "$fb" srv_us_per_msg); msgs/s ours / PeerJS per round: $(paste -d' ' <(col "$fb" msgs_per_s) <(col "$fa" msgs_per_s) | awk '$1 > 0 {printf "%.3f\n", $2 / $1}' | stats2)")
    done
    ;;
on)
    files=()
    for t in $THREADS_LIST; do : >"$OUT/on-t$t.txt"; done
    for rep in $(seq 1 "$REPS"); do
        order=$THREADS_LIST
        [ $((rep % 2)) = 0 ] && order=$(printf '%s\n' $THREADS_LIST | tac | tr '\n' ' ')
        for t in $order; do
            run_one rdv on free 10 --messages "$BUDGET_ON" --sign-threads "$NCORES" \
                -- --verify-threads "$t" >>"$OUT/on-t$t.txt"
        done
    done
    vus=$(awk -v r="$VERIFY_PER_S" 'BEGIN {printf "%.1f", 1e6 / r}')
    for t in $THREADS_LIST; do
        f="$OUT/on-t$t.txt"
        row "rendezvousd verify=on, --verify-threads $t, unpinned" "$f"
        NOTES+=("- verify on, $t thread(s): msgs/s / (0.9 x ($NCORES cores - generator) x $VERIFY_PER_S verifies/s per core) per run (goal >= 1): $(while read -r l; do awk -v r="$(field msgs_per_s "$l")" -v g="$(field win_loadgen_cores "$l")" -v n="$NCORES" -v v="$VERIFY_PER_S" 'BEGIN {printf "%.3f\n", r / (0.9 * (n - g) * v)}'; done <"$f" | stats2); server CPU per offer / bare verify ($vus us) (goal <= 1.15): $(col "$f" srv_us_per_msg | awk -v v="$vus" '{printf "%.3f\n", $1 / v}' | stats2)")
    done
    ;;
paced)
    rdv_bytes
    fa="$OUT/paced-rdv.txt" fb="$OUT/paced-peerjs.txt" fc="$OUT/paced-tcp.txt"
    : >"$fa"; : >"$fb"; : >"$fc"
    n=$((PACED_RATE * (SECONDS_RUN + 10)))
    for rep in $(seq 1 "$REPS"); do
        order="A B C"; [ $((rep % 2)) = 0 ] && order="C B A"
        for x in $order; do
            if [ "$x" = A ]; then
                run_one rdv on pin 1 --rate "$PACED_RATE" --tick-us "$PACED_TICK_US" \
                    --messages "$n" >>"$fa"
            elif [ "$x" = B ]; then
                run_one peerjs - pin 1 --rate "$PACED_RATE" --tick-us "$PACED_TICK_US" \
                    --pad-to "$RDV_BYTES" \
                    --messages "$n" >>"$fb"
            else
                run_tcp "$n" >>"$fc"
            fi
        done
    done
    row "rendezvousd (defaults, verify on), window 1 paced $PACED_RATE/s, pinned" "$fa"
    row "PeerJS, window 1 paced $PACED_RATE/s, pinned" "$fb"
    row "raw TCP forwarder (tcp_pair), paced $PACED_RATE/s, pinned" "$fc"
    NOTES+=("- paced $PACED_RATE/s: p50 ours / PeerJS per round (goal <= 0.5): $(ratio_range "$fb" "$fa" p50_us); p99 ours / PeerJS: $(ratio_range "$fb" "$fa" p99_us)")
    NOTES+=("- paced $PACED_RATE/s: p50 ours - raw TCP per round, us (goal <= 50): $(paste -d' ' <(col "$fc" p50_us) <(col "$fa" p50_us) | awk '{printf "%.1f\n", $2 - $1}' | stats)")
    ;;
esac
done

{
    machine_line
    echo
    echo "Ed25519 verify on one core (verify_rate): $VERIFY_PER_S/s; $REPS runs per row, interleaved, $SECONDS_RUN s measured after $WARMUP warm-up messages; $PAIRS pairs; offer ${RDV_BYTES:-?} B on the wire for both servers (PeerJS: --pad-to; it adds src on the way out)."
    echo "Each cell: min / median / max over the runs. pinned: server on core $SERVER_CORE, generator on core $GEN_CORE (taskset). srv us/msg: server CPU in the measured seconds / messages."
    echo
    echo "$HEADER"
    printf '%s\n' "${TABLES[@]}"
    echo
    printf '%s\n' "${NOTES[@]}"
} | tee "$OUT/table.md"
