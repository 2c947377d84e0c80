#!/usr/bin/env bash
# cluster.sh - rendezvousd with --redis (issue 14): several instances on one
# Redis. One redis-server (Debian's, on a Unix socket in $OUT/redis,
# --save '' --appendonly no) and rendezvousd instances on 127.0.0.1, all
# started and stopped here by PID. Three parts, one table each:
#
# 1. Signaling, same-instance vs cross-instance, side by side: instances 1
#    and 2 on Redis, plus one instance WITHOUT --redis (the SQLite engine,
#    the baseline). loadgen_signal runs PAIRS pairs, window 1, paced at each
#    of RATES msgs/s for PACED_SECONDS (p50/p99 one-way latency), then
#    unpaced with window UNPACED_WINDOW for UNPACED_MESSAGES (msgs/s):
#      sqlite  both nodes of every pair on the SQLite instance;
#      same    both nodes on instance 1 (Redis engine, never used for them);
#      cross   A on instance 1, B on instance 2 (--port2): every message,
#              both ways, goes instance -> Redis pub/sub -> instance.
#    The modes alternate inside each of REPS rounds (drift hits all alike);
#    each cell is min / median / max over the rounds. The Redis hop is the
#    per-round difference cross p50 - same p50 (median, min..max). CPU per
#    routed message (server(s), redis-server) is CPU time over the run
#    (/proc/PID/stat) / messages delivered in it.
# 2. Idle fleet: a fresh Redis and INSTANCES instances; IDLE_NODES
#    authenticated nodes, one loadgen_idle process per instance (the open-
#    file limit is 20,000 per process: nodes per instance must stay well
#    under it, also after a failover). RSS per node (all instances' growth /
#    nodes) and Redis used_memory per node (before / with the fleet / after
#    the fleet left: what stays is each node's presence record, rdv:n:ID).
# 3. Failover on that fleet: (a) SIGKILL the last instance; a loadgen_lookup
#    probe on instance 1 looks up PROBE_IDS of its nodes every PROBE_MS and
#    reports when they went offline (goal: within the 5 s heartbeat TTL of
#    engine_redis.c). Then that instance is started again (empty).
#    (b) SIGKILL instance 1; its generator reconnects every lost node at once
#    to instances 2..N (--failover-ports, round robin); reports how long
#    until the last is back (welcome), and whether a probe on instance 2
#    kept seeing them online through the dead instance's sweep.
#
#   bench/cluster.sh                        # defaults below, ~5-6 min
#   REPS=1 IDLE_NODES=6000 bench/cluster.sh # quick
#   SERVER_FROM=head bench/cluster.sh       # server from git archive HEAD
#
# Knobs: REPS (3), PAIRS (100), RATES ("2000 5000"), PACED_SECONDS (4),
# UNPACED_MESSAGES (60000), UNPACED_WINDOW (10), VERIFY (off), INSTANCES (3),
# IDLE_NODES (30000), INFLIGHT (250), SETTLE (3), PROBE_IDS (256),
# PROBE_MS (20), FAILOVER_WAIT (40: the most 3b waits for the nodes), CLUSTER_PORT (18481: instances at
# CLUSTER_PORT..+INSTANCES-1; the SQLite baseline on RDV_PORT, 18480),
# PARTS ("1 2 3"; 3 needs 2), QUIET_CORES / QUIET_WAIT (3 s here), OUT,
# BOOTSTRAP=0, RDV_FLAGS, SERVER_FROM=head (bench/lib.sh).
set -u
QUIET_WAIT=${QUIET_WAIT:-3}
. "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
PAIRS=${PAIRS:-100}
RATES=${RATES:-"2000 5000"}
PACED_SECONDS=${PACED_SECONDS:-4}
UNPACED_MESSAGES=${UNPACED_MESSAGES:-60000}
UNPACED_WINDOW=${UNPACED_WINDOW:-10}
VERIFY=${VERIFY:-off}
INSTANCES=${INSTANCES:-6}
IDLE_NODES=${IDLE_NODES:-60000}
INFLIGHT=${INFLIGHT:-250}
SETTLE=${SETTLE:-3}
PROBE_IDS=${PROBE_IDS:-256}
PROBE_MS=${PROBE_MS:-20}
FAILOVER_WAIT=${FAILOVER_WAIT:-40}
CLUSTER_PORT=${CLUSTER_PORT:-18481}
PARTS=${PARTS:-"1 2 3"}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-120}

[ "$INSTANCES" -ge 3 ] || die "INSTANCES must be >= 3"
[ "$REPS" -ge 1 ] || die "REPS must be >= 1"
RDIR=$OUT/redis
SOCK=$RDIR/redis.sock
REDIS_PID=
declare -A INST_PID
GEN_PIDS=()
PROBE_PID=

stop_gens() { local p; for p in "${GEN_PIDS[@]}"; do stop_pid "$p"; done; GEN_PIDS=(); }
stop_cluster() {
    local i
    for i in "${!INST_PID[@]}"; do stop_pid "${INST_PID[$i]}"; done
    INST_PID=()
    stop_pid "$REDIS_PID"; REDIS_PID=
}
trap 'stop_pid "$PROBE_PID"; stop_gens; stop_cluster; cleanup' EXIT
trap 'exit 130' INT TERM

build_cluster() {
    if [ "${BOOTSTRAP:-1}" = 1 ] && [ -x "$REPO_DIR/scripts/bootstrap" ]; then
        "$REPO_DIR/scripts/bootstrap" || die "scripts/bootstrap failed"
    fi
    command -v cmake >/dev/null || die "cmake not found (scripts/bootstrap installs it)"
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null \
        || die "redis-server / redis-cli not found (apt install redis-server; scripts/bootstrap)"
    build_server_tree "$REPO_DIR/build-bench-src" rendezvousd
    log "building the load generators (Release) in $GEN_BUILD"
    cmake -S "$BENCH_DIR" -B "$GEN_BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake-gen.log" 2>&1 \
        || die "configuring bench/ failed; see $OUT/cmake-gen.log"
    cmake --build "$GEN_BUILD" -j2 --target loadgen_signal loadgen_idle loadgen_lookup \
        >>"$OUT/cmake-gen.log" 2>&1 || die "building bench/ failed; see $OUT/cmake-gen.log"
}

rcli() { timeout 10 redis-cli -s "$SOCK" "$@"; }
redis_mem() { rcli info memory | awk -F: '/^used_memory:/ {print $2 + 0}'; }

start_redis() {
    rm -rf "$RDIR"; mkdir -p "$RDIR"
    redis-server --port 0 --unixsocket "$SOCK" --unixsocketperm 700 --dir "$RDIR" \
        --save '' --appendonly no --loglevel warning >>"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    local i
    for i in $(seq 1 100); do
        [ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited at start; see $OUT/redis.log"
        sleep 0.1
    done
    die "redis-server not ready after 10 s"
}

# start_inst NAME PORT [flags...]: an instance on Redis (NAME 1..N) or, with
# NAME sqlite, alone on a fresh SQLite file.
start_inst() {
    local name=$1 port=$2 i; shift 2
    port_free "$port" || die "port $port is in use (set CLUSTER_PORT / RDV_PORT)"
    local engine=(--redis "unix://$SOCK")
    if [ "$name" = sqlite ]; then
        rm -f "$OUT"/rdv.db "$OUT"/rdv.db-*
        engine=(--db "$OUT/rdv.db")
    fi
    # shellcheck disable=SC2086 # RDV_FLAGS is a list of flags
    "$RDVD" --port "$port" --name bench "${engine[@]}" --verify-signatures "$VERIFY" \
        --operator-listen "127.0.0.1:$((port + 1000))" \
        --rate 1000000 --burst 1000000 --max-connections-per-ip 0 --max-handshakes-per-ip 0 \
        --presence-rate 0 --stun off --log-level warn $RDV_FLAGS "$@" >>"$OUT/rdv-$name.log" 2>&1 &
    INST_PID[$name]=$!
    for i in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            # the ready line (event loop) for server_line in lib.sh
            grep -h 'listening on' "$OUT/rdv-$name.log" | tail -1 >>"$OUT/rdv.log"
            return 0
        fi
        kill -0 "${INST_PID[$name]}" 2>/dev/null || die "rendezvousd $name exited at start; see $OUT/rdv-$name.log"
        sleep 0.1
    done
    die "rendezvousd $name not ready after 10 s; see $OUT/rdv-$name.log"
}
inst_port() { echo $((CLUSTER_PORT + $1 - 1)); }
# instances alive as instance $1 sees them (/status cluster.instances, on
# its operator's listener: its port + 1000)
cluster_instances() {
    curl -sf "http://127.0.0.1:$(($(inst_port "$1") + 1000))/status" 2>/dev/null \
        | grep -o '"instances":[0-9]*' | head -1 | cut -d: -f2
}

# stats over the numbers on stdin: "min med max"
mmm() { sort -g | awk '{a[NR]=$1} END {if (!NR) {print "n/a n/a n/a"; exit}
    printf "%s %s %s\n", a[1], a[int((NR+1)/2)], a[NR]}'; }
fmt3() { set -- $1; printf '%s / %s / %s' "${1:-n/a}" "${2:-n/a}" "${3:-n/a}"; }

build_cluster
log "output in $OUT"
: >"$OUT/results.txt"
LOAD_START=$(awk '{print $1}' /proc/loadavg)
TABLE1=() TABLE2=() TABLE3=() NOTES=()

# ---- 1. signaling -----------------------------------------------------------
run_sig() { # MODE LOAD REP
    local mode=$1 load=$2 rep=$3 port p2=() pids=() fam line
    case $mode in
        sqlite) port=$RDV_PORT; fam=21; pids=(--server-pid "${INST_PID[sqlite]}") ;;
        same) port=$(inst_port 1); fam=22
              pids=(--server-pid "${INST_PID[1]}" --server2-pid "${INST_PID[2]}" --redis-pid "$REDIS_PID") ;;
        cross) port=$(inst_port 1); fam=23; p2=(--port2 "$(inst_port 2)")
               pids=(--server-pid "${INST_PID[1]}" --server2-pid "${INST_PID[2]}" --redis-pid "$REDIS_PID") ;;
    esac
    local shape
    if [ "$load" = max ]; then
        shape=(--window "$UNPACED_WINDOW" --messages "$UNPACED_MESSAGES")
    else
        shape=(--window 1 --rate "$load" --messages $((load * PACED_SECONDS)) --warmup $((load / 2)))
    fi
    wait_quiet
    line=$(timeout $((RUN_TIMEOUT + 30)) "$GEN_BUILD/loadgen_signal" --proto rdv --port "$port" \
        "${p2[@]}" --name bench --pairs "$PAIRS" --family "$fam" "${shape[@]}" \
        --timeout "$RUN_TIMEOUT" "${pids[@]}" --quiet 2>>"$OUT/loadgen.log" | grep '^RESULT')
    [ -n "$line" ] || line="RESULT status=failed msgs_per_s=0"
    [ "$(field status "$line")" = ok ] || log "bench: $mode $load rep $rep: $line"
    echo "sig $mode $load rep=$rep $line" >>"$OUT/results.txt"
}

# per-run derived figures from a RESULT line
srv_us() { awk -v a="$(field server_cores "$1")" -v b="$(field server2_cores "$1")" \
    -v t="$(field run_s "$1")" -v n="$(field received "$1")" \
    'BEGIN {if (b < 0) b = 0; if (n > 0 && a >= 0) printf "%.1f\n", 1e6 * (a + b) * t / n; else print "n/a"}'; }
redis_us() { awk -v a="$(field redis_cores "$1")" -v t="$(field run_s "$1")" -v n="$(field received "$1")" \
    'BEGIN {if (n > 0 && a >= 0) printf "%.1f\n", 1e6 * a * t / n; else print "-"}'; }

# p50 of RESULT line $1 minus p50 of $2 (nothing when either run failed)
p50diff() { awk -v a="$(field p50_us "$1")" -v b="$(field p50_us "$2")" \
    'BEGIN {if (a != "" && b != "") print a - b}'; }

part1() {
    log "part 1: signaling (sqlite baseline, same-instance, cross-instance), $REPS rounds"
    start_redis
    start_inst 1 "$(inst_port 1)"
    start_inst 2 "$(inst_port 2)"
    start_inst sqlite "$RDV_PORT"
    local rep mode load
    for rep in $(seq 1 "$REPS"); do
        for load in $RATES max; do
            for mode in sqlite same cross; do
                run_sig "$mode" "$load" "$rep"
            done
        done
    done
    for mode in sqlite same cross; do
        for load in $RATES max; do
            local lines
            lines=$(awk -v m="$mode" -v l="$load" '$1 == "sig" && $2 == m && $3 == l' "$OUT/results.txt")
            col() { local f=$1; while read -r l; do field "$f" "$l"; done <<<"$lines" | mmm; }
            derived() { local fn=$1; while read -r l; do $fn "$l"; done <<<"$lines" | mmm; }
            local errs gen oth label
            errs=$(while read -r l; do field errors "$l"; done <<<"$lines" | awk '{s += $1} END {print s + 0}')
            gen=$(col loadgen_cores | awk '{print $2}')
            oth=$(col other_cores | awk '{print $3}')
            label=$load; [ "$load" = max ] && label="unpaced, window $UNPACED_WINDOW"
            [ "$load" != max ] && label="$load/s, window 1"
            local md
            case $mode in sqlite) md="SQLite, one instance" ;; same) md="Redis, same instance" ;;
                cross) md="Redis, cross instance" ;; esac
            TABLE1+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' "$md" "$label" \
                "$(fmt3 "$(col p50_us)")" "$(fmt3 "$(col p99_us)")" "$(fmt3 "$(col msgs_per_s)")" \
                "$(derived srv_us | awk '{print $2}')" "$(derived redis_us | awk '{print $2}')" \
                "$gen" "$oth" "$errs")")
        done
    done
    # the Redis hop: per round, cross p50 - same p50 (and vs the SQLite baseline)
    for load in $RATES max; do
        local d1 d2 r s c q
        d1=$(for r in $(seq 1 "$REPS"); do
            s=$(awk -v l="$load" -v r="rep=$r" '$1 == "sig" && $2 == "same" && $3 == l && $4 == r' "$OUT/results.txt")
            c=$(awk -v l="$load" -v r="rep=$r" '$1 == "sig" && $2 == "cross" && $3 == l && $4 == r' "$OUT/results.txt")
            p50diff "$c" "$s"
        done | mmm)
        d2=$(for r in $(seq 1 "$REPS"); do
            q=$(awk -v l="$load" -v r="rep=$r" '$1 == "sig" && $2 == "sqlite" && $3 == l && $4 == r' "$OUT/results.txt")
            s=$(awk -v l="$load" -v r="rep=$r" '$1 == "sig" && $2 == "same" && $3 == l && $4 == r' "$OUT/results.txt")
            p50diff "$s" "$q"
        done | mmm)
        if [ "$load" = max ]; then
            # closed loop: latency is queueing here, compare the rates
            d1=$(for r in $(seq 1 "$REPS"); do
                s=$(awk -v r="rep=$r" '$1 == "sig" && $2 == "same" && $3 == "max" && $4 == r' "$OUT/results.txt")
                c=$(awk -v r="rep=$r" '$1 == "sig" && $2 == "cross" && $3 == "max" && $4 == r' "$OUT/results.txt")
                q=$(awk -v r="rep=$r" '$1 == "sig" && $2 == "sqlite" && $3 == "max" && $4 == r' "$OUT/results.txt")
                awk -v a="$(field msgs_per_s "$c")" -v b="$(field msgs_per_s "$s")" -v q="$(field msgs_per_s "$q")" \
                    'BEGIN {if (b > 0 && q > 0) printf "%.2f %.2f\n", a / b, b / q}'
            done)
            NOTES+=("- unpaced (closed loop, window $UNPACED_WINDOW: latency is queueing, compare rates): cross / same msgs/s per round min / median / max = $(fmt3 "$(awk '{print $1}' <<<"$d1" | mmm)"); same (Redis) / SQLite = $(fmt3 "$(awk '{print $2}' <<<"$d1" | mmm)")")
            continue
        fi
        NOTES+=("- $load msgs/s: the Redis hop (cross p50 - same p50, per round) min / median / max = $(fmt3 "$d1") us (goal <= 200 us at p50); --redis on same-instance traffic (same p50 - SQLite p50) = $(fmt3 "$d2") us")
    done
    stop_cluster
}

# ---- 2. idle fleet, 3. failover ---------------------------------------------
# gen_start I N [failover ports]: generator I (1-based) holds N nodes on instance I
gen_start() {
    local i=$1 n=$2 fo=()
    [ -n "${3:-}" ] && fo=(--failover-ports "$3")
    "$GEN_BUILD/loadgen_idle" --proto rdv --port "$(inst_port "$i")" --name bench --conns "$n" \
        --inflight "$INFLIGHT" --offset $(( (i - 1) * 100000 )) --family 7 "${fo[@]}" \
        --hold $((CONNECT_TIMEOUT + 240)) --timeout "$CONNECT_TIMEOUT" --ready-file "$OUT/ready.$i" \
        >"$OUT/idle.$i.out" 2>"$OUT/idle.$i.err" &
    GEN_PIDS[$i]=$!
}
# probe_start ON_INSTANCE IDS_OF_GENERATOR NODES DURATION TAG
probe_start() {
    local stride=$(( $3 / PROBE_IDS )); [ "$stride" -ge 1 ] || stride=1
    local cnt=$PROBE_IDS; [ "$cnt" -le "$3" ] || cnt=$3
    rm -f "$OUT/probe.ready"
    "$GEN_BUILD/loadgen_lookup" --port "$(inst_port "$1")" --family 98 --self "$1" \
        --ids-family 7 --ids-offset $(( ($2 - 1) * 100000 )) --ids-stride "$stride" \
        --count "$cnt" --interval-ms "$PROBE_MS" --duration "$4" --ready-file "$OUT/probe.ready" \
        >"$OUT/probe-$5.out" 2>"$OUT/probe-$5.err" &
    PROBE_PID=$!
    local t
    for t in $(seq 1 100); do [ -f "$OUT/probe.ready" ] && return 0; sleep 0.1; done
    log "bench: the probe on instance $1 did not answer in 10 s; see $OUT/probe-$5.err"
}
ms_since() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.0f", (b - a) / 1e6; else print "n/a"}'; }

part23() {
    log "part 2: idle fleet, $IDLE_NODES nodes over $INSTANCES instances"
    start_redis
    local i per n
    for i in $(seq 1 "$INSTANCES"); do start_inst "$i" "$(inst_port "$i")"; done
    per=$(( (IDLE_NODES + INSTANCES - 1) / INSTANCES ))
    sleep 2
    wait_quiet
    local mem0 rss0=() tck b0 t0
    mem0=$(redis_mem)
    for i in $(seq 1 "$INSTANCES"); do rss0[$i]=$(rss_kb "${INST_PID[$i]}"); done
    rm -f "$OUT"/ready.*
    tck=$(getconf CLK_TCK); b0=$(busy_ticks); t0=$(date +%s.%N)
    local s0=() r0; for i in $(seq 1 "$INSTANCES"); do s0[$i]=$(proc_ticks "${INST_PID[$i]}"); done
    r0=$(proc_ticks "$REDIS_PID")
    GEN_PIDS=()
    local others=()
    for i in $(seq 1 "$INSTANCES"); do
        n=$per; [ $((i * per)) -gt "$IDLE_NODES" ] && n=$((IDLE_NODES - (i - 1) * per))
        if [ "$i" = 1 ]; then
            # instance 1's nodes fail over to instances 2 .. N in part 3b
            local j fo=""; for j in $(seq 2 "$INSTANCES"); do fo="$fo${fo:+,}$(inst_port "$j")"; done
            gen_start "$i" "$n" "$fo"
        else
            gen_start "$i" "$n"
        fi
    done
    local t=0 nready alive p
    while [ $t -lt $(( (CONNECT_TIMEOUT + 10) * 10 )) ]; do
        nready=$(ls "$OUT"/ready.* 2>/dev/null | wc -l); alive=0
        for p in "${GEN_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
        [ "$nready" -ge "$INSTANCES" ] || [ "$alive" -eq 0 ] && break
        sleep 0.1; t=$((t + 1))
    done
    local b1 t1 srv_t=0 g_t=0 r1
    b1=$(busy_ticks); t1=$(date +%s.%N); r1=$(proc_ticks "$REDIS_PID")
    for i in $(seq 1 "$INSTANCES"); do srv_t=$((srv_t + $(proc_ticks "${INST_PID[$i]}") - s0[i])); done
    for p in "${GEN_PIDS[@]}"; do g_t=$((g_t + $(proc_ticks "$p"))); done
    local cpu
    cpu=$(awk -v b0="$b0" -v b1="$b1" -v s="$srv_t" -v r="$((r1 - r0))" -v g="$g_t" -v t0="$t0" \
        -v t1="$t1" -v k="$tck" 'BEGIN { d = (t1 - t0) * k; if (d <= 0) d = 1;
        o = (b1 - b0 - s - r - g) / d; if (o < 0) o = 0;
        printf "%.2f / %.2f / %.2f / %.2f", s / d, r / d, g / d, o }')
    sleep "$SETTLE"
    local mem1 rss1=() drss=0 ready=0 failed=0 st en s_min= e_max= line held=0
    mem1=$(redis_mem)
    for i in $(seq 1 "$INSTANCES"); do
        rss1[$i]=$(rss_kb "${INST_PID[$i]}"); drss=$((drss + rss1[i] - rss0[i]))
        held=$((held + $(conns_on "$(inst_port "$i")")))
    done
    for i in $(seq 1 "$INSTANCES"); do
        line=$(grep '^RESULT' "$OUT/idle.$i.out")
        [ -n "$line" ] || { log "bench: no result from generator $i; see $OUT/idle.$i.err"; continue; }
        echo "idle gen=$i $line" >>"$OUT/results.txt"
        ready=$((ready + $(field ready "$line"))); failed=$((failed + $(field failed "$line")))
        st=$(field start_real_ns "$line"); en=$(field end_real_ns "$line")
        { [ -z "$s_min" ] || [ "$st" -lt "$s_min" ]; } && s_min=$st
        { [ -z "$e_max" ] || [ "$en" -gt "$e_max" ]; } && e_max=$en
    done
    local secs hs keys
    secs=$(awk -v a="$s_min" -v b="$e_max" 'BEGIN {printf "%.1f", (b - a) / 1e9}')
    hs=$(awk -v n="$ready" -v s="$secs" 'BEGIN {if (s > 0) printf "%.0f", n / s; else print 0}')
    keys=$(rcli dbsize)
    # where the bytes are: one node's presence hash, and the per-instance
    # sets of node IDs (MEMORY USAGE, all elements counted)
    local nkey hash_b set_b=0 set_n=0 k
    nkey=$(rcli --scan --pattern 'rdv:n:*' | head -1)
    hash_b=$(rcli memory usage "$nkey")
    for k in $(rcli --scan --pattern 'rdv:inst:*:nodes'); do
        set_b=$((set_b + $(rcli memory usage "$k" samples 0))); set_n=$((set_n + $(rcli scard "$k")))
    done
    local rss_list="" 
    for i in $(seq 1 "$INSTANCES"); do rss_list="$rss_list${rss_list:+ / }$(awk -v a="${rss1[$i]}" 'BEGIN {printf "%.1f", a / 1024}')"; done
    TABLE2+=("| nodes asked / authenticated / held (server side) / failed | $IDLE_NODES / $ready / $held / $failed |")
    TABLE2+=("| instances / generator processes | $INSTANCES / $INSTANCES ($per nodes each) |")
    TABLE2+=("| connect time, handshakes/s (all generators) | $secs s, $hs/s |")
    TABLE2+=("| cores while connecting: servers / redis / generators / other | $cpu |")
    TABLE2+=("| server RSS with the fleet, MiB per instance | $rss_list |")
    TABLE2+=("| server RSS per node (growth of all instances / nodes) | $(awk -v d="$drss" -v n="$ready" 'BEGIN {if (n) printf "%.2f KiB", d / n; else print "n/a"}') |")
    TABLE2+=("| Redis used_memory before / with the fleet | $(awk -v a="$mem0" -v b="$mem1" 'BEGIN {printf "%.2f / %.2f MiB", a / 1048576, b / 1048576}') ($keys keys) |")
    TABLE2+=("| Redis MEMORY USAGE: one node's rdv:n:ID hash / the instances' node-ID sets per member | ${hash_b:-?} B / $(awk -v a="$set_b" -v n="$set_n" 'BEGIN {if (n) printf "%.0f", a / n; else print "n/a"}') B |")
    TABLE2+=("| **Redis memory per node** (goal <= 250 B) | **$(awk -v a="$mem0" -v b="$mem1" -v n="$ready" 'BEGIN {if (n) printf "%.0f B", (b - a) / n; else print "n/a"}')** |")
    echo "idle mem0=$mem0 mem1=$mem1 keys=$keys drss_kb=$drss ready=$ready held=$held secs=$secs cpu=$cpu" >>"$OUT/results.txt"

    [[ " $PARTS " == *" 3 "* ]] || { finish_fleet "$mem0" "$ready"; return; }

    # ---- 3a: SIGKILL the last instance; how long until lookups say offline
    local last=$INSTANCES kill_ns off_ns first_drop np
    np=$(grep '^RESULT' "$OUT/idle.$last.out" | tr ' ' '\n' | awk -F= '$1 == "ready" {print $2}')
    log "part 3a: SIGKILL instance $last (${np:-?} nodes), lookups from instance 1"
    probe_start 1 "$last" "$per" $((FAILOVER_WAIT + 5)) a
    local inst_before; inst_before=$(cluster_instances 1)
    kill_ns=$(date +%s%N)
    kill -KILL "${INST_PID[$last]}"; wait "${INST_PID[$last]}" 2>/dev/null; unset "INST_PID[$last]"
    local w=0; while kill -0 "$PROBE_PID" 2>/dev/null && [ $w -lt $(( (FAILOVER_WAIT + 10) * 10 )) ]; do
        grep -q ' online=0 ' "$OUT/probe-a.out" 2>/dev/null && break; sleep 0.1; w=$((w + 1)); done
    sleep 1.2   # /status counts instances at its heartbeat (1 s)
    local inst_after; inst_after=$(cluster_instances 1)
    stop_pid "$PROBE_PID"; PROBE_PID=
    off_ns=$(awk -v k="$kill_ns" '$1 == "P" {split($2, a, "="); split($3, b, "="); if (a[2] > k && b[2] == 0) {print a[2]; exit}}' "$OUT/probe-a.out")
    first_drop=$(awk -v k="$kill_ns" '$1 == "P" {split($2, a, "="); split($3, b, "="); split($4, c, "="); if (a[2] > k && b[2] < c[2]) {print a[2]; exit}}' "$OUT/probe-a.out")
    echo "failover-a kill_ns=$kill_ns off_ns=${off_ns:-0} first_drop_ns=${first_drop:-0} instances=$inst_before->$inst_after" >>"$OUT/results.txt"
    TABLE3+=("| (a) SIGKILL instance $last holding ${np:-?} nodes: lookups from instance 1 ($PROBE_IDS of them, every $PROBE_MS ms) see the first offline / all offline after | $(ms_since "$kill_ns" "${first_drop:-0}") ms / **$(ms_since "$kill_ns" "${off_ns:-0}") ms** (instances in /status: $inst_before -> $inst_after) |")
    stop_pid "${GEN_PIDS[$last]}"; unset "GEN_PIDS[$last]"
    start_inst "$last" "$(inst_port "$last")"

    # ---- 3b: SIGKILL instance 1; its nodes reconnect to instances 2..N-1
    np=$(grep '^RESULT' "$OUT/idle.1.out" | tr ' ' '\n' | awk -F= '$1 == "ready" {print $2}')
    log "part 3b: SIGKILL instance 1 (${np:-?} nodes); they reconnect to the others"
    sleep 1.5
    probe_start 2 1 "$per" $((FAILOVER_WAIT + 5)) b
    kill_ns=$(date +%s%N)
    kill -KILL "${INST_PID[1]}"; wait "${INST_PID[1]}" 2>/dev/null; unset "INST_PID[1]"
    # until the generator says every node of instance 1 is back (BACK line),
    # at most FAILOVER_WAIT s, and at least 8 s (past the TTL and the sweep)
    local t_end t_min
    t_end=$(( $(date +%s) + FAILOVER_WAIT )); t_min=$(( $(date +%s) + 8 ))
    while [ "$(date +%s)" -lt "$t_end" ]; do
        sleep 0.2
        grep -q "^BACK back=${np:-x} " "$OUT/idle.1.out" 2>/dev/null && [ "$(date +%s)" -ge "$t_min" ] && break
    done
    sleep 1
    stop_pid "$PROBE_PID"; PROBE_PID=
    kill -USR1 "${GEN_PIDS[1]}" 2>/dev/null
    w=0; while kill -0 "${GEN_PIDS[1]}" 2>/dev/null && [ $w -lt 300 ]; do sleep 0.1; w=$((w + 1)); done
    stop_pid "${GEN_PIDS[1]}"; unset "GEN_PIDS[1]"
    local hold back lastb minon endon
    hold=$(grep '^HOLD' "$OUT/idle.1.out")
    echo "failover-b kill_ns=$kill_ns $hold" >>"$OUT/results.txt"
    back=$(field back "$hold"); lastb=$(field back_last_real_ns "$hold")
    minon=$(awk -v k="$kill_ns" '$1 == "P" {split($2, a, "="); split($3, b, "="); if (a[2] > k && (m == "" || b[2] < m)) m = b[2]} END {print (m == "") ? "unchanged" : m}' "$OUT/probe-b.out")
    endon=$(awk '$1 == "P" {split($3, b, "="); v = b[2]} END {print v}' "$OUT/probe-b.out")
    local rounds allon
    rounds=$(field rounds "$(grep '^RESULT' "$OUT/probe-b.out")")
    # the first round after the lowest point with every probed node online
    allon=$(awk -v k="$kill_ns" '$1 == "P" {split($2, a, "="); split($3, b, "="); split($4, c, "=");
        if (a[2] > k && b[2] < c[2]) low = 1; else if (low && a[2] > k && b[2] == c[2]) {print a[2]; exit}}' "$OUT/probe-b.out")
    TABLE3+=("| (b) SIGKILL instance 1 holding ${np:-?} nodes, which reconnect at once to instances 2..$INSTANCES: back (welcome) / last one back after / reconnect retries | ${back:-?} / **$(ms_since "$kill_ns" "${lastb:-0}") ms** / $(field back_retries "$hold") |")
    TABLE3+=("| (b) lookups from instance 2 of $PROBE_IDS of them until all were back (>= 8 s, past the dead instance's TTL and sweep): lowest online count / at the end / all online again after / lookup rounds answered (one in flight at a time) | $minon / $endon of $PROBE_IDS / $(ms_since "$kill_ns" "${allon:-0}") ms / ${rounds:-?} |")
    finish_fleet "$mem0" "$ready"
}

# all generators leave; Redis memory that stays (presence records)
finish_fleet() {
    local mem0=$1 ready=$2 p t=0 i
    for p in "${GEN_PIDS[@]}"; do kill -USR1 "$p" 2>/dev/null; done
    for p in "${GEN_PIDS[@]}"; do
        while kill -0 "$p" 2>/dev/null && [ $t -lt 300 ]; do sleep 0.1; t=$((t + 1)); done
    done
    stop_gens
    local t_end=$(( $(date +%s) + 30 ))
    while [ "$(date +%s)" -lt "$t_end" ]; do
        local c=0
        for i in "${!INST_PID[@]}"; do c=$((c + $(conns_on "$(inst_port "$i")"))); done
        [ "$c" -eq 0 ] && break; sleep 0.5
    done
    sleep "$SETTLE"
    local mem2; mem2=$(redis_mem)
    TABLE2+=("| Redis used_memory after every node left (presence records stay, as in SQLite) | $(awk -v a="$mem0" -v b="$mem2" -v n="$ready" 'BEGIN {printf "%.2f MiB, %.0f B per node", b / 1048576, n ? (b - a) / n : 0}') |")
    echo "idle-after mem2=$mem2" >>"$OUT/results.txt"
    stop_cluster
}

T_START=$(date +%s)
[[ " $PARTS " == *" 1 "* ]] && part1
[[ " $PARTS " == *" 2 "* ]] && part23
LOAD_END=$(awk '{print $1}' /proc/loadavg)

{
echo "## Cluster (Redis): $(redis-server --version | awk '{print $3}' | tr -d 'v=') on a Unix socket, --save '' --appendonly no"
echo
machine_line
echo
echo "Took $(( $(date +%s) - T_START )) s; load average $LOAD_START at the start, $LOAD_END at the end."
echo "--verify-signatures $VERIFY; per-node rate limits and per-address caps lifted; --stun off."
if [[ " $PARTS " == *" 1 "* ]]; then
echo
echo "### Signaling: $PAIRS pairs, $REPS rounds; min / median / max over the rounds"
echo
echo "Paced: window 1, $PACED_SECONDS s per run (+0.5 s warm-up). Unpaced: window $UNPACED_WINDOW,"
echo "$UNPACED_MESSAGES messages. Latency one-way (send to receive on one clock). srv / redis us per msg:"
echo "CPU time of the instance(s) / of redis-server over the run divided by the messages delivered"
echo "(median). gen: generator cores (median); other: cores of everything else (max)."
echo
echo "| engine, placement | load | p50 us | p99 us | msgs/s | srv us/msg | redis us/msg | gen | other | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${TABLE1[@]}"
echo
printf '%s\n' "${NOTES[@]}"
fi
if [[ " $PARTS " == *" 2 "* ]]; then
echo
echo "### Idle fleet and failover"
echo
echo "| | |"
echo "|---|---|"
printf '%s\n' "${TABLE2[@]}" "${TABLE3[@]}"
fi
} | tee "$OUT/table.md"
