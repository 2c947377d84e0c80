# shellcheck shell=bash
# lib.sh - shared by bench/signaling.sh, idle.sh, churn.sh, relay.sh, stun.sh
# (sourced, not run).
#
# Builds rendezvousd (Release, no sanitizers) into build-bench/ and the load
# generators into build-bench-gen/, installs the PeerJS server, starts and
# stops both servers by PID, reads RSS. Every wait is bounded.

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# SERVER_FROM=tree builds rendezvousd from the working tree (a clean
# checkout: what you have); SERVER_FROM=head builds it from `git archive HEAD`
# unpacked in build-bench-src/, so uncommitted edits in the tree do not matter.
SERVER_FROM=${SERVER_FROM:-tree}
if [ "$SERVER_FROM" = head ]; then
    SRV_BUILD=${SRV_BUILD:-$REPO_DIR/build-bench-head}
else
    SRV_BUILD=${SRV_BUILD:-$REPO_DIR/build-bench}
fi
GEN_BUILD=${GEN_BUILD:-$REPO_DIR/build-bench-gen}
RDV_PORT=${RDV_PORT:-18480}
PEER_PORT=${PEER_PORT:-19480}
OUT=${OUT:-$(mktemp -d /tmp/rdv-bench.XXXXXX)}
RDVD=$SRV_BUILD/rendezvous/rendezvousd
PEERJS=$BENCH_DIR/peers/peerjs/node_modules/peer/dist/bin/peerjs.js
RDV_FLAGS=${RDV_FLAGS:-}   # extra rendezvousd flags, e.g. "--event-loop poll"
RDV_PID=
PEER_PID=
mkdir -p "$OUT"

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

build_all() {
    # the repository's package list (idempotent; libwebsockets-dev brings
    # libuv1-dev, which the load generators use); BOOTSTRAP=0 skips it
    if [ "${BOOTSTRAP:-1}" = 1 ] && [ -x "$REPO_DIR/scripts/bootstrap" ]; then
        "$REPO_DIR/scripts/bootstrap" || die "scripts/bootstrap failed"
    fi
    command -v cmake >/dev/null || die "cmake not found (scripts/bootstrap installs it)"
    command -v node >/dev/null || die "node (>= 14) and npm are needed for the PeerJS server"
    command -v curl >/dev/null || die "curl not found"
    build_server_tree "$REPO_DIR/build-bench-src" rendezvousd
    build_gens
    "$BENCH_DIR/install_peerjs.sh" >"$OUT/npm.log" 2>&1 \
        || die "installing the PeerJS server failed; see $OUT/npm.log"
}

# build_gens: bench/ (the load generators, Release) into $GEN_BUILD.
build_gens() {
    log "building the load generators (Release) in $GEN_BUILD"
    cmake -S "$BENCH_DIR" -B "$GEN_BUILD" -DCMAKE_BUILD_TYPE=Release >"$OUT/cmake-gen.log" 2>&1 \
        || die "configuring bench/ failed; see $OUT/cmake-gen.log"
    cmake --build "$GEN_BUILD" -j2 >>"$OUT/cmake-gen.log" 2>&1 \
        || die "building bench/ failed; see $OUT/cmake-gen.log"
}

# build_server_tree SRCDIR TARGET...: builds TARGETs of the main project
# (Release, no sanitizers, no tests) into $SRV_BUILD from the working tree,
# or with SERVER_FROM=head from `git archive HEAD` unpacked in SRCDIR
# (git-ignored /build-*/; reused while HEAD is the same). Sets SRC (the
# tree built), BUILT_COMMIT, and BUILT_DIRTY: uncommitted changes under
# $DIRTY_PATHS (default: the server's folders).
build_server_tree() {
    local dir=$1; shift
    SRC=$REPO_DIR
    BUILT_COMMIT=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null)
    # shellcheck disable=SC2086 # a list of paths
    BUILT_DIRTY=$(git -C "$REPO_DIR" status --porcelain -- ${DIRTY_PATHS:-rendezvous schema db} \
        2>/dev/null | wc -l)
    if [ "$SERVER_FROM" = head ]; then
        SRC=$dir
        if [ "$(cat "$SRC/.bench-commit" 2>/dev/null)" != "$BUILT_COMMIT" ]; then
            rm -rf "$SRC" && mkdir -p "$SRC"
            git -C "$REPO_DIR" archive HEAD | tar -x -C "$SRC" || die "git archive HEAD failed"
            echo "$BUILT_COMMIT" >"$SRC/.bench-commit"
        fi
    fi
    log "building $* (Release, from $SERVER_FROM) in $SRV_BUILD"
    cmake -S "$SRC" -B "$SRV_BUILD" -DCMAKE_BUILD_TYPE=Release -DRDV_SANITIZE=OFF \
        -DRDV_BUILD_TESTS=OFF >"$OUT/cmake-server.log" 2>&1 \
        || die "configuring the server failed; see $OUT/cmake-server.log"
    cmake --build "$SRV_BUILD" -j2 --target "$@" >>"$OUT/cmake-server.log" 2>&1 \
        || die "building $* failed; see $OUT/cmake-server.log"
}

port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# start_rdv on|off|defaults [extra flags...]: a fresh database each time.
# on|off: verification so, and the per-node message rate and per-address
# caps lifted (all load comes from 127.0.0.1); defaults: none of that.
start_rdv() {
    local verify=$1 lifts=(); shift
    [ "$verify" = defaults ] || lifts=(--verify-signatures "$verify" --rate 1000000 --burst 1000000 \
        --max-connections-per-ip 0 --max-handshakes-per-ip 0)
    port_free "$RDV_PORT" || die "port $RDV_PORT is in use (set RDV_PORT)"
    rm -f "$OUT"/rdv.db "$OUT"/rdv.db-*
    # RDVD_PREFIX: a command to run it under (e.g. "taskset -c 0")
    # shellcheck disable=SC2086 # RDVD_PREFIX and RDV_FLAGS are word lists
    ${RDVD_PREFIX:-} "$RDVD" --port "$RDV_PORT" --db "$OUT/rdv.db" --name bench --operator-listen off \
        "${lifts[@]}" --log-level warn $RDV_FLAGS "$@" >>"$OUT/rdv.log" 2>&1 &
    RDV_PID=$!
    local i
    for i in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$RDV_PORT/healthz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$RDV_PID" 2>/dev/null || die "rendezvousd exited at start; see $OUT/rdv.log"
        sleep 0.1
    done
    die "rendezvousd not ready after 10 s; see $OUT/rdv.log"
}

start_peerjs() {
    port_free "$PEER_PORT" || die "port $PEER_PORT is in use (set PEER_PORT)"
    # PeerJS logs a line per connection on stdout; drop it (a file write per
    # connect would slow it down), keep stderr.
    # PEER_PREFIX: a command to run it under (e.g. "taskset -c 0")
    ( ulimit -n "$(ulimit -Hn)"; exec ${PEER_PREFIX:-} node "$PEERJS" --port "$PEER_PORT" --host 127.0.0.1 \
        --concurrent_limit 200000 ) >/dev/null 2>>"$OUT/peerjs.log" &
    PEER_PID=$!
    local i
    for i in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$PEER_PORT/" >/dev/null 2>&1; then return 0; fi
        kill -0 "$PEER_PID" 2>/dev/null || die "the PeerJS server exited at start; see $OUT/peerjs.log"
        sleep 0.1
    done
    die "the PeerJS server not ready after 10 s"
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    log "bench: pid $pid did not stop in 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

stop_rdv() {
    if [ -n "$RDV_PID" ] && ! kill -0 "$RDV_PID" 2>/dev/null; then
        wait "$RDV_PID" 2>/dev/null; local rc=$?
        log "bench: rendezvousd (pid $RDV_PID) had already exited, status $rc; see $OUT/rdv.log"
    fi
    stop_pid "$RDV_PID"; RDV_PID=
}
stop_peerjs() { stop_pid "$PEER_PID"; PEER_PID=; }

cleanup() { stop_rdv; stop_peerjs; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Established TCP connections to local port $1 (server side).
conns_on() { ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l; }

# field NAME LINE: the value of NAME=... in a RESULT line.
field() { printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2; exit}'; }

# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }

# The server under test: commit, whether its sources differ from it, the
# event loop it reported at start, and any extra flags.
server_line() {
    local dirty=${BUILT_DIRTY:-0} loop
    [ "$SERVER_FROM" = head ] && dirty=0
    loop=$(grep -o '[a-z]* loop)' "$OUT/rdv.log" 2>/dev/null | tail -1 | tr -d ')')
    printf 'rendezvousd at commit %s%s%s, %s%s\n' "${BUILT_COMMIT:-?}" \
        "$([ "$SERVER_FROM" = head ] && echo " (built from git archive HEAD)")" \
        "$([ "$dirty" -gt 0 ] && echo " plus $dirty uncommitted files in rendezvous/ schema/ db/")" \
        "${loop:-unknown loop}" "${RDV_FLAGS:+, flags $RDV_FLAGS}"
}

machine_line() {
    server_line
    echo
    printf 'date %s; commit %s; %s cores (%s); %s MiB RAM; %s; open files hard limit %s\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${BUILT_COMMIT:-?}" \
        "$(nproc)" "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)" \
        "$(awk '/^MemTotal/ {printf "%d", $2/1024}' /proc/meminfo)" \
        "$(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-linux}")" "$(ulimit -Hn)"
}

# Other engineers' builds and tests may share this machine. wait_quiet
# samples the machine's busy CPU over 1 s (our servers are idle then) and
# waits, at most QUIET_WAIT seconds, until it is below QUIET_CORES; then
# the run goes ahead anyway (the result lines carry other_cores).
QUIET_CORES=${QUIET_CORES:-0.15}
QUIET_WAIT=${QUIET_WAIT:-60}
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
wait_quiet() {
    local t=0 b0 b1 cores=0 tck
    tck=$(getconf CLK_TCK)
    while [ "$t" -lt "$QUIET_WAIT" ]; do
        b0=$(busy_ticks); sleep 1; b1=$(busy_ticks)
        cores=$(awk -v a="$b0" -v b="$b1" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t}')
        if awk -v c="$cores" -v q="$QUIET_CORES" 'BEGIN {exit !(c < q)}'; then return 0; fi
        t=$((t + 1))
    done
    log "bench: machine still busy ($cores cores of other work) after ${QUIET_WAIT}s; running anyway"
}

# ---- tables of the issue 15 method (signaling.sh, relay.sh, stun.sh) ----
# stats: "min / median / max" of the numbers on stdin (1 decimal when < 100)
stats() {
    sort -g | awk '{a[NR]=$1} END {
        if (!NR) { print "-"; exit }
        f = (a[NR] < 100) ? "%.1f" : "%.0f"
        printf(f " / " f " / " f "\n", a[1], a[int((NR+1)/2)], a[NR]) }'
}
col() { # col FILE FIELD: that field of every RESULT line in FILE
    while read -r l; do field "$2" "$l"; done <"$1"
}
# stats2: "min / median / max" with 2 decimals (ratios)
stats2() {
    sort -g | awk '{a[NR]=$1} END {
        if (!NR) { print "-"; exit }
        printf("%.2f / %.2f / %.2f\n", a[1], a[int((NR+1)/2)], a[NR]) }'
}
# statsi: "min / median / max" as integers (counts)
statsi() {
    sort -g | awk '{a[NR]=$1} END {
        if (!NR) { print "-"; exit }
        printf("%.0f / %.0f / %.0f\n", a[1], a[int((NR+1)/2)], a[NR]) }'
}
# stats3: "min / median / max" with 3 decimals (loss %)
stats3() {
    sort -g | awk '{a[NR]=$1} END {
        if (!NR) { print "-"; exit }
        printf("%.3f / %.3f / %.3f\n", a[1], a[int((NR+1)/2)], a[NR]) }'
}

# ratio_range FILE_A FILE_B FIELD: per-round B/A, "min / median / max"
ratio_range() {
    paste -d' ' <(col "$1" "$3") <(col "$2" "$3") |
        awk '$1 > 0 {printf "%.3f\n", $2 / $1}' | stats2
}
