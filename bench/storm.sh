#!/usr/bin/env bash
# storm.sh - the reconnect storm (issue 15, goal 4): signaling latency while
# every idle node drops and reconnects at once, rendezvousd and the PeerJS
# server side by side, measured the issue-15 way (REPS runs per server,
# interleaved A B B A ..., fresh server per run, min / median / max, per-run
# ratios, no best run).
#
# One run (either server):
#   1. K idle nodes (K_NODES, 19,500) connect over PROCS (4) loadgen_idle
#      processes (each under its own 20,000 open-file limit), at most
#      INFLIGHT (250) handshakes in flight each, and are held; SETTLE_S (5) s;
#   2. loadgen_signal: SIG_PAIRS (20) pairs, window SIG_WINDOW (4), paced at
#      SIG_RATE (2000) msgs/s in total, --phases 3; after its warm-up
#      (one second of messages):
#   3. quiet window, QUIET_S (10) s;
#   4. storm window: SIGUSR2 to every loadgen_idle (each closes all its
#      ready connections and reconnects them at once, rdv with the same
#      identity, PeerJS under a new ID) and to loadgen_signal (next window);
#      it ends when every generator printed STORM (all its nodes back:
#      welcome / OPEN), or after STORM_MAX (30) s;
#   5. after window, AFTER_S (5) s; then the run ends.
# The signaling nodes stay connected throughout. PeerJS nodes (idle and
# signaling) send a HEARTBEAT every HB_MS (20,000) ms, spread out: PeerJS
# closes a client silent for 90 s (its own client sends one every 5 s);
# rendezvousd pings every 20 s and lws answers. rendezvousd runs at its
# defaults (verification on, hello verified on the --verify-threads
# workers) with the rate and per-IP caps lifted (lib.sh); its offers are
# signed before the run (--ts-ahead-ms 29000: a run must end ~55 s after
# signing, which bounds QUIET_S + storm + AFTER_S).
#
# SERVERS ("rdv peerjs") lists what each round runs, in that order (reversed
# every other round); "rdv_uv" adds rendezvousd with --event-loop uv (its
# default poll() loop walks every connection on every wake-up, which costs
# latency and CPU with thousands of idle nodes held), e.g.
# SERVERS="rdv rdv_uv peerjs".
#
# Per run: p99 (and p50) of the one-way signaling latency in the quiet and
# the storm window and their ratio (goal: storm / quiet <= 3); the storm's
# handshakes/s (K / (last node back - SIGUSR2), over all generators; goal:
# ours >= 2 x PeerJS's); the CPU cores used in the storm window by the
# server, the idle generators (together), the signaling generator and
# everything else; and handshakes per server CPU second (K / the server's
# CPU seconds in the storm window): the per-core figure, fair when the
# generators, which share the 2 cores, are the limit; and rendezvousd's
# loop lag (rendezvous_loop_lag_seconds from its /metrics on OP_PORT, the
# longest its event loop was held in the last 10-20 s) at the end of the
# quiet and of the storm window: the server's own stalls, apart from the
# generators'.
#
#   bench/storm.sh                                   # ~12 min at the defaults
#   REPS=1 K_NODES=2000 PROCS=2 QUIET_S=3 AFTER_S=2 bench/storm.sh   # ~1 min check
set -u
. "$(dirname "$0")/lib.sh"
GEN_PIDS=()
SIG_PID=
stop_gens() {
    local p
    for p in "${GEN_PIDS[@]}"; do stop_pid "$p"; done
    GEN_PIDS=()
    stop_pid "$SIG_PID"; SIG_PID=
}
trap 'stop_gens; cleanup' EXIT
trap 'exit 130' INT TERM

REPS=${REPS:-5}
K_NODES=${K_NODES:-19500}
PROCS=${PROCS:-4}
INFLIGHT=${INFLIGHT:-250}
SIG_PAIRS=${SIG_PAIRS:-20}
SIG_WINDOW=${SIG_WINDOW:-4}
SIG_RATE=${SIG_RATE:-2000}
QUIET_S=${QUIET_S:-10}
STORM_MAX=${STORM_MAX:-30}
AFTER_S=${AFTER_S:-5}
SETTLE_S=${SETTLE_S:-5}   # after the K nodes are in, before the signaling stream
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-120}
SERVERS=${SERVERS:-"rdv peerjs"}
HB_MS=${HB_MS:-20000}   # PeerJS nodes' HEARTBEAT interval (ours: the server pings every 20 s)
OP_PORT=${OP_PORT:-18489} # rendezvousd's operator listener: /metrics' rendezvous_loop_lag_seconds

build_all
log "output in $OUT"
tck=$(getconf CLK_TCK)

# snap SERVER_PID: "server idle-generators signal-generator machine-busy" CPU ticks and the time

snap() {
    local s g=0 p
    s=$(proc_ticks "$1"); shift
    for p in "${GEN_PIDS[@]}"; do g=$((g + $(proc_ticks "$p"))); done
    printf '%s %s %s %s %s\n' "$s" "$g" "$(proc_ticks "$SIG_PID")" "$(busy_ticks)" "$(date +%s.%N)"
}

# loop_lag_ms rdv|peerjs: rendezvousd's rendezvous_loop_lag_seconds (the
# longest its loop was held over the last 10-20 s) in ms; -1 for PeerJS or
# when /metrics does not answer
loop_lag_ms() {
    [ "$1" = rdv ] || { echo -1; return; }
    curl -sf --max-time 5 "http://127.0.0.1:$OP_PORT/metrics" 2>/dev/null |
        awk '$1 == "rendezvous_loop_lag_seconds" {v = $2 * 1000} END {printf "%.0f\n", v == "" ? -1 : v}'
}

# run_storm rdv|peerjs REP: one run on a fresh server; appends its line
# ("RUN key=value ...") to $OUT/storm-WHO.txt
run_storm() {
    local who=$1 rep=$2 spid port per i tag="$1-$2" proto=rdv
    wait_quiet
    if [ "$who" = rdv ]; then
        port_free "$OP_PORT" || die "port $OP_PORT is in use (set OP_PORT)"
        start_rdv on --stun off --operator-listen "127.0.0.1:$OP_PORT"; spid=$RDV_PID; port=$RDV_PORT
    elif [ "$who" = rdv_uv ]; then
        port_free "$OP_PORT" || die "port $OP_PORT is in use (set OP_PORT)"
        start_rdv on --stun off --event-loop uv --operator-listen "127.0.0.1:$OP_PORT"
        spid=$RDV_PID; port=$RDV_PORT
    else
        proto=peerjs
        start_peerjs; spid=$PEER_PID; port=$PEER_PORT
    fi
    per=$(( (K_NODES + PROCS - 1) / PROCS ))
    rm -f "$OUT"/ready.* "$OUT/measuring"
    local hb=()
    [ "$proto" = peerjs ] && hb=(--heartbeat-ms "$HB_MS")
    GEN_PIDS=()
    local hold=$((CONNECT_TIMEOUT + QUIET_S + STORM_MAX + AFTER_S + 120))
    for i in $(seq 0 $((PROCS - 1))); do
        local n=$per
        [ $(( (i + 1) * per )) -gt "$K_NODES" ] && n=$(( K_NODES - i * per ))
        [ "$n" -gt 0 ] || continue
        "$GEN_BUILD/loadgen_idle" --proto "$proto" --port "$port" --name bench --conns "$n" \
            --inflight "$INFLIGHT" --offset $((i * 100000)) --family 7 --hold "$hold" \
            --timeout "$CONNECT_TIMEOUT" --ready-file "$OUT/ready.$i" "${hb[@]}" \
            >"$OUT/storm-$tag.idle.$i.out" 2>"$OUT/storm-$tag.idle.$i.err" &
        GEN_PIDS+=($!)
    done
    local t=0 nready alive
    while [ $t -lt $(( (CONNECT_TIMEOUT + 10) * 10 )) ]; do
        nready=$(ls "$OUT"/ready.* 2>/dev/null | wc -l)
        alive=0
        for i in "${GEN_PIDS[@]}"; do kill -0 "$i" 2>/dev/null && alive=$((alive + 1)); done
        [ "$nready" -ge "${#GEN_PIDS[@]}" ] || [ "$alive" -eq 0 ] && break
        sleep 0.1; t=$((t + 1))
    done
    local held=0 f l
    for f in "$OUT"/storm-$tag.idle.*.out; do
        l=$(grep '^RESULT' "$f"); [ -n "$l" ] && held=$((held + $(field ready "$l")))
    done
    # let the connect phase's tail settle (the presence batch's commit of
    # K rows, lws' timers) so the quiet window is quiet
    sleep "$SETTLE_S"
    # the paced signaling stream; budget: every window at the full rate, with room
    local msgs=$((SIG_RATE * (QUIET_S + STORM_MAX + AFTER_S + 15)))
    "$GEN_BUILD/loadgen_signal" --proto "$proto" --port "$port" --name bench \
        --pairs "$SIG_PAIRS" --window "$SIG_WINDOW" --rate "$SIG_RATE" --messages "$msgs" \
        --warmup "$SIG_RATE" --family 11 --ts-ahead-ms 29000 --phases 3 \
        --measure-file "$OUT/measuring" --timeout $((QUIET_S + STORM_MAX + AFTER_S + 60)) \
        --server-pid "$spid" --quiet "${hb[@]}" >"$OUT/storm-$tag.sig.out" 2>"$OUT/storm-$tag.sig.err" &
    SIG_PID=$!
    t=0
    while [ ! -e "$OUT/measuring" ] && kill -0 "$SIG_PID" 2>/dev/null && [ $t -lt 600 ]; do
        sleep 0.1; t=$((t + 1))
    done
    sleep "$QUIET_S"
    local lag_q lag_s
    lag_q=$(loop_lag_ms "$proto")
    # the storm
    local c0 c1
    c0=$(snap "$spid")
    kill -USR2 "$SIG_PID" 2>/dev/null
    for i in "${GEN_PIDS[@]}"; do kill -USR2 "$i" 2>/dev/null; done
    local until=$(($(date +%s) + STORM_MAX))
    while [ "$(date +%s)" -lt "$until" ]; do
        [ "$(cat "$OUT"/storm-$tag.idle.*.out 2>/dev/null | grep -c '^STORM')" -ge "${#GEN_PIDS[@]}" ] && break
        sleep 0.05
    done
    c1=$(snap "$spid")
    lag_s=$(loop_lag_ms "$proto")
    kill -USR2 "$SIG_PID" 2>/dev/null
    sleep "$AFTER_S"
    kill -USR2 "$SIG_PID" 2>/dev/null
    t=0
    while kill -0 "$SIG_PID" 2>/dev/null && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
    stop_pid "$SIG_PID"; SIG_PID=
    kill -0 "$spid" 2>/dev/null || log "bench: $tag: the server died; see $OUT"
    for i in "${GEN_PIDS[@]}"; do kill -USR1 "$i" 2>/dev/null; done
    for i in "${GEN_PIDS[@]}"; do
        local w=0
        while kill -0 "$i" 2>/dev/null && [ $w -lt 300 ]; do sleep 0.1; w=$((w + 1)); done
        stop_pid "$i"
    done
    GEN_PIDS=()
    if [ "$proto" = rdv ]; then stop_rdv; else stop_peerjs; fi
    # combine: storm handshakes over all generators
    local dropped=0 back=0 failed=0 s0= e0= hp99=0 st en pp
    for f in "$OUT"/storm-$tag.idle.*.out; do
        l=$(grep '^STORM' "$f")
        [ -n "$l" ] || { log "bench: $tag: no STORM line in $f"; continue; }
        dropped=$((dropped + $(field dropped "$l"))); back=$((back + $(field back "$l")))
        failed=$((failed + $(field failed "$l")))
        st=$(field start_real_ns "$l"); en=$(field end_real_ns "$l"); pp=$(field hs_p99_ms "$l")
        { [ -z "$s0" ] || [ "$st" -lt "$s0" ]; } && s0=$st
        { [ -z "$e0" ] || [ "$en" -gt "$e0" ]; } && e0=$en
        hp99=$(awk -v a="$hp99" -v b="$pp" 'BEGIN {print (b > a) ? b : a}')
    done
    local q s a res
    q=$(grep '^PHASE i=0' "$OUT/storm-$tag.sig.out"); s=$(grep '^PHASE i=1' "$OUT/storm-$tag.sig.out")
    a=$(grep '^PHASE i=2' "$OUT/storm-$tag.sig.out"); res=$(grep '^RESULT' "$OUT/storm-$tag.sig.out")
    [ -n "$res" ] || res="RESULT status=failed errors=0"
    local line
    line=$(awk -v c0="$c0" -v c1="$c1" -v k="$tck" -v back="$back" -v s0="${s0:-0}" -v e0="${e0:-0}" \
        -v q99="$(field p99_us "$q")" -v s99="$(field p99_us "$s")" 'BEGIN {
        split(c0, a, " "); split(c1, b, " "); d = (b[5] - a[5]) * k; if (d <= 0) d = 1
        srv = (b[1] - a[1]) / d; gen = (b[2] - a[2]) / d; sig = (b[3] - a[3]) / d
        oth = (b[4] - a[4]) / d - srv - gen - sig; if (oth < 0) oth = 0
        secs = (e0 - s0) / 1e9; hs = secs > 0 ? back / secs : 0
        srv_s = (b[1] - a[1]) / k; per = srv_s > 0 ? back / srv_s : 0
        printf "storm_s=%.3f hs_per_s=%.0f hs_per_srv_cpu_s=%.0f srv_cores=%.2f gen_cores=%.2f sig_cores=%.2f other_cores=%.2f ratio_p99=%.2f",
            secs, hs, per, srv, gen, sig, oth, (q99 > 0 ? s99 / q99 : 0) }')
    printf 'RUN who=%s rep=%s held=%s dropped=%s back=%s failed=%s hs_p99_ms=%s %s q_p50_us=%s q_p99_us=%s q_msgs_per_s=%s s_p50_us=%s s_p99_us=%s s_msgs_per_s=%s a_p99_us=%s sig_status=%s sig_errors=%s lag_q_ms=%s lag_s_ms=%s\n' \
        "$who" "$rep" "$held" "$dropped" "$back" "$failed" "$hp99" "$line" \
        "$(field p50_us "$q")" "$(field p99_us "$q")" "$(field msgs_per_s "$q")" \
        "$(field p50_us "$s")" "$(field p99_us "$s")" "$(field msgs_per_s "$s")" \
        "$(field p99_us "$a")" "$(field status "$res")" "$(field errors "$res")" "$lag_q" "$lag_s" \
        | tee -a "$OUT/storm-$who.txt" >&2
}

for who in $SERVERS; do
    case $who in rdv | rdv_uv | peerjs) : >"$OUT/storm-$who.txt" ;; *) die "unknown server $who in SERVERS" ;; esac
done
for rep in $(seq 1 "$REPS"); do
    order=$SERVERS
    [ $((rep % 2)) = 0 ] && order=$(printf '%s\n' $SERVERS | tac | tr '\n' ' ')
    for who in $order; do
        log "run $rep: $who"
        run_storm "$who" "$rep"
    done
done

stats() {
    sort -g | awk '{a[NR]=$1} END {
        if (!NR) { print "-"; exit }
        f = (a[NR] < 100) ? "%.2f" : "%.0f"
        printf(f " / " f " / " f "\n", a[1], a[int((NR+1)/2)], a[NR]) }'
}
col() { while read -r l; do field "$2" "$l"; done <"$1"; }
row() { # row LABEL FILE
    local f=$2
    [ -s "$f" ] || return 0
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s / %s | %s | %s | %s |\n' "$1" \
        "$(wc -l <"$f")" "$(col "$f" q_p99_us | stats)" "$(col "$f" s_p99_us | stats)" \
        "$(col "$f" ratio_p99 | stats)" "$(col "$f" q_p50_us | stats)" "$(col "$f" s_p50_us | stats)" \
        "$(col "$f" s_msgs_per_s | stats)" "$(col "$f" hs_per_s | stats)" \
        "$(col "$f" hs_per_srv_cpu_s | stats)" "$(col "$f" storm_s | stats)" \
        "$(col "$f" srv_cores | median)" "$(col "$f" gen_cores | median)" \
        "$(col "$f" sig_cores | median)" "$(col "$f" other_cores | median)" \
        "$(col "$f" lag_q_ms | stats)" "$(col "$f" lag_s_ms | stats)" \
        "$(awk -v k="$K_NODES" '{ if ($0 !~ /sig_status=ok/ || $0 !~ /sig_errors=0/) bad++;
            for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "back" && kv[2] + 0 < k) bad2++ } }
            END {printf "%d / %d", bad + 0, bad2 + 0}' "$f")"
}
# per round: ours / PeerJS storm handshakes/s (and per server CPU second)
round_ratio() { # round_ratio FIELD [rdv|rdv_uv]
    paste -d' ' <(col "$OUT/storm-peerjs.txt" "$1") <(col "$OUT/storm-${2:-rdv}.txt" "$1") |
        awk '$1 > 0 {printf "%.3f\n", $2 / $1}' | stats
}

{
echo "## Reconnect storm: $K_NODES idle nodes ($PROCS generators, $INFLIGHT in flight each) drop and reconnect at once; signaling $SIG_PAIRS pairs, window $SIG_WINDOW, paced $SIG_RATE msgs/s"
echo
machine_line
echo
echo "$REPS runs per server, interleaved, fresh server each; every cell min / median / max over the runs (cores: median)."
echo "quiet: ${QUIET_S} s after a 1 s warm-up; storm: from SIGUSR2 to the last node back (at most ${STORM_MAX} s); p99 / p50: one-way signaling latency, us."
echo "storm/quiet: p99 of the storm window / p99 of the quiet window, per run (goal <= 3)."
echo "hs/s: storm handshakes (rdv: authenticated, challenge + signed hello + welcome; PeerJS: open + OPEN) / (last back - SIGUSR2)."
echo "hs per srv CPU s: K / the server's CPU seconds in the storm window. cores (storm window): server / idle generators / signaling generator / everything else."
echo "loop lag quiet / storm: rendezvousd's rendezvous_loop_lag_seconds read at the end of each window, ms: the longest its event loop was held in the last 10-20 s (-1: PeerJS, not measured)."
echo "bad: runs whose signaling stream had errors or did not end ok / runs with fewer than K nodes back."
echo
echo "| server | runs | quiet p99 | storm p99 | storm/quiet p99 | quiet p50 | storm p50 | storm msgs/s | storm hs/s | hs per srv CPU s | storm s | cores srv / gen / sig / other | loop lag quiet ms | loop lag storm ms | bad |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
row "rendezvousd (defaults, verify on)" "$OUT/storm-rdv.txt"
row "rendezvousd --event-loop uv (verify on)" "$OUT/storm-rdv_uv.txt"
row "PeerJS (peer@1.0.2)" "$OUT/storm-peerjs.txt"
echo
for r in rdv rdv_uv; do
    [ -s "$OUT/storm-$r.txt" ] && [ -s "$OUT/storm-peerjs.txt" ] || continue
    echo "- $r: storm handshakes/s, ours / PeerJS per round (goal >= 2): $(round_ratio hs_per_s "$r"); handshakes per server CPU second, ours / PeerJS: $(round_ratio hs_per_srv_cpu_s "$r")"
done
} | tee "$OUT/table.md"
