#!/usr/bin/env bash
# idle.sh - workload 2: K idle nodes (10k and 19.5k by default) connect and
# authenticate (PeerJS: connect and get OPEN), stay connected, then all
# disconnect. rendezvousd (default flags but rate/per-IP caps lifted), then
# the PeerJS server. Reports handshakes/s, the server's RSS before, with K
# connected and after all disconnect, and RSS per connection.
#
# The load is spread over PROCS load generator processes (each under its own
# 20,000 open-file limit). SRC_IPS=1 binds generator i to 127.0.0.(i+2) as
# source address; off by default: lws binds with port 0 before connect(),
# and such a bind cannot reuse TIME_WAIT ports, so after a few runs each
# bind takes milliseconds (2.8 ms measured with 32k TIME_WAIT sockets) and
# throttles the generator. Without it, 127.0.0.1 has 28k ephemeral ports and
# Linux reuses loopback TIME_WAIT ports (tcp_tw_reuse=2).
#
# SERVERS ("rdv peerjs") says which servers run for each K of CONNS_LIST;
# a K listed several times is several runs (issue 15: goal 5's figure over
# runs, e.g. CONNS_LIST="19500 19500 19500 19500 19500" SERVERS=rdv).
#
#   bench/idle.sh
#   CONNS_LIST="2000" PROCS=2 bench/idle.sh
set -u
. "$(dirname "$0")/lib.sh"
GEN_PIDS=()
stop_gens() { local p; for p in "${GEN_PIDS[@]}"; do stop_pid "$p"; done; GEN_PIDS=(); }
trap 'stop_gens; cleanup' EXIT
trap 'exit 130' INT TERM

CONNS_LIST=${CONNS_LIST:-"10000 19500"}
SERVERS=${SERVERS:-"rdv peerjs"}
PROCS=${PROCS:-4}
INFLIGHT=${INFLIGHT:-250}      # handshakes in progress per process
SETTLE=${SETTLE:-3}            # seconds between the last handshake and the RSS reading
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-120}
SRC_IPS=${SRC_IPS:-0}

build_all
log "output in $OUT"
ROWS=()

# run_idle LABEL PROTO PORT SERVER_PID K
run_idle() {
    local label=$1 proto=$2 port=$3 spid=$4 k=$5 i per rss0 rss1 rss2 held_srv
    per=$(( (k + PROCS - 1) / PROCS ))
    sleep 1
    wait_quiet
    rss0=$(rss_kb "$spid")
    rm -f "$OUT"/ready.*
    local tck b0 b1 s0 s1 g1=0 t0 t1 p
    tck=$(getconf CLK_TCK)
    b0=$(busy_ticks); s0=$(proc_ticks "$spid"); t0=$(date +%s.%N)
    GEN_PIDS=()
    for i in $(seq 0 $((PROCS - 1))); do
        local n=$per
        [ $(( (i + 1) * per )) -gt "$k" ] && n=$(( k - i * per ))
        [ "$n" -gt 0 ] || continue
        local src=()
        [ "$SRC_IPS" = 1 ] && src=(--src-ips "127.0.0.$((i + 2))")
        "$GEN_BUILD/loadgen_idle" --proto "$proto" --port "$port" --name bench --conns "$n" \
            --inflight "$INFLIGHT" --offset $((i * 100000)) --family 7 \
            "${src[@]}" --hold $((CONNECT_TIMEOUT + 60)) \
            --timeout "$CONNECT_TIMEOUT" --ready-file "$OUT/ready.$i" \
            >"$OUT/idle-$proto-$k.$i.out" 2>"$OUT/idle-$proto-$k.$i.err" &
        GEN_PIDS+=($!)
    done
    # wait (bounded) until every generator reported or exited
    local t=0 nready alive
    while [ $t -lt $(( (CONNECT_TIMEOUT + 10) * 10 )) ]; do
        nready=$(ls "$OUT"/ready.* 2>/dev/null | wc -l)
        alive=0
        for i in "${GEN_PIDS[@]}"; do kill -0 "$i" 2>/dev/null && alive=$((alive + 1)); done
        [ "$nready" -ge "${#GEN_PIDS[@]}" ] && break
        [ "$alive" -eq 0 ] && break
        sleep 0.1; t=$((t + 1))
    done
    # CPU during the connect phase: server, generators, everything else
    b1=$(busy_ticks); s1=$(proc_ticks "$spid"); t1=$(date +%s.%N)
    for p in "${GEN_PIDS[@]}"; do g1=$((g1 + $(proc_ticks "$p"))); done
    local cpu
    cpu=$(awk -v b0="$b0" -v b1="$b1" -v s0="$s0" -v s1="$s1" -v g="$g1" -v t0="$t0" \
        -v t1="$t1" -v k="$tck" 'BEGIN { d = (t1 - t0) * k; if (d <= 0) d = 1;
        srv = (s1 - s0) / d; gen = g / d; oth = (b1 - b0) / d - srv - gen; if (oth < 0) oth = 0;
        printf "%.2f %.2f %.2f", srv, gen, oth }')
    sleep "$SETTLE"
    rss1=$(rss_kb "$spid")
    held_srv=$(conns_on "$port")
    kill -0 "$spid" 2>/dev/null || log "bench: $label: the server died while connecting; see $OUT"
    # disconnect all: each generator exits on SIGUSR1, closing its sockets
    for i in "${GEN_PIDS[@]}"; do kill -USR1 "$i" 2>/dev/null; done
    for i in "${GEN_PIDS[@]}"; do
        local w=0
        while kill -0 "$i" 2>/dev/null && [ $w -lt 300 ]; do sleep 0.1; w=$((w + 1)); done
        stop_pid "$i"
    done
    GEN_PIDS=()
    t=0
    while [ "$(conns_on "$port")" -gt 0 ] && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
    sleep "$SETTLE"
    rss2=$(rss_kb "$spid")
    # combine the generators' RESULT lines
    local res ready=0 failed=0 lost=0 s0= e0= p99=0 line f
    for f in "$OUT"/idle-$proto-$k.*.out; do
        line=$(grep '^RESULT' "$f")
        [ -n "$line" ] || { log "bench: $label: no result in $f"; continue; }
        ready=$((ready + $(field ready "$line")))
        failed=$((failed + $(field failed "$line")))
        local st en pp
        st=$(field start_real_ns "$line"); en=$(field end_real_ns "$line"); pp=$(field hs_p99_ms "$line")
        { [ -z "$s0" ] || [ "$st" -lt "$s0" ]; } && s0=$st
        { [ -z "$e0" ] || [ "$en" -gt "$e0" ]; } && e0=$en
        p99=$(awk -v a="$p99" -v b="$pp" 'BEGIN {print (b > a) ? b : a}')
        line=$(grep '^HOLD' "$f")
        [ -n "$line" ] && lost=$((lost + $(field lost "$line")))
        echo "$label K=$k $(grep -h '^RESULT\|^HOLD' "$f" | tr '\n' ' ')" >>"$OUT/results.txt"
    done
    local hs per_conn back secs
    secs=$(awk -v a="$s0" -v b="$e0" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
    hs=$(awk -v n="$ready" -v s="$secs" 'BEGIN {if (s > 0) printf "%.0f", n / s; else print 0}')
    per_conn=$(awk -v a="$rss0" -v b="$rss1" -v n="$ready" 'BEGIN {if (n > 0) printf "%.2f", (b - a) / n; else print "n/a"}')
    back=$(awk -v a="$rss0" -v b="$rss1" -v c="$rss2" 'BEGIN {if (b > a) printf "%.0f%%", 100 * (b - c) / (b - a); else print "n/a"}')
    ROWS+=("$(printf '| %-20s | %6s | %6s | %6s | %5s | %8s | %7s | %4s / %4s / %4s | %9s | %9s | %9s | %8s | %7s |' \
        "$label" "$k" "$ready" "$held_srv" "$failed" "$hs" "$p99" $cpu \
        "$(awk -v v="$rss0" 'BEGIN {printf "%.1f", v / 1024}')" \
        "$(awk -v v="$rss1" 'BEGIN {printf "%.1f", v / 1024}')" \
        "$(awk -v v="$rss2" 'BEGIN {printf "%.1f", v / 1024}')" "$per_conn" "$back")")
    [ "$lost" -gt 0 ] && log "bench: $label K=$k: $lost connections closed by the server while held"
}

for k in $CONNS_LIST; do
    for who in $SERVERS; do
        case $who in
        rdv)
            log "rendezvousd, $k idle nodes"
            start_rdv on
            run_idle "rendezvousd" rdv "$RDV_PORT" "$RDV_PID" "$k"
            stop_rdv ;;
        peerjs)
            log "PeerJS server, $k idle nodes"
            start_peerjs
            run_idle "PeerJS (peer@1.0.2)" peerjs "$PEER_PORT" "$PEER_PID" "$k"
            stop_peerjs ;;
        *) die "SERVERS: unknown server '$who' (rdv, peerjs)" ;;
        esac
    done
done

{
echo "## Idle nodes: $PROCS generator processes, $INFLIGHT handshakes in flight each"
echo
machine_line
echo
echo "Handshakes/s: authenticated (challenge, signed hello, welcome) for rendezvousd; WebSocket"
echo "open + OPEN for PeerJS (no authentication); from the first connect to the last ready."
echo "RSS in MiB (VmRSS): before connecting, with all K connected ($SETTLE s after the last),"
echo "and $SETTLE s after all disconnected; KiB/conn = (with - before) / ready; returned = share"
echo "of the growth given back after the disconnect."
echo
echo "cores: CPU used while connecting by the server / the generators / everything else."
echo
echo "| server               |      K |  ready | server | fail | hs/s     | hs p99 ms | cores srv / gen / other | RSS before | RSS with K | RSS after | KiB/conn | returned |"
echo "|----------------------|--------|--------|--------|------|----------|-----------|-------------------------|------------|------------|-----------|----------|----------|"
printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/table.md"
