#!/usr/bin/env bash
# stun.sh - workload 5 of issue 8: STUN Binding responses per second,
# rendezvousd's built-in responder against coturn (`turnserver --stun-only`),
# same load, back to back, on this machine.
#
#   bench/stun.sh                  # builds, runs, prints the table
#   SECONDS_RUN=10 LOADS="16x16 32x8" bench/stun.sh
#   APPEND=1 bench/stun.sh         # also appends the table to bench/RESULTS.md
#
# The load: bench/loadgen_stun (one thread, plain UDP sockets; requests
# built and responses parsed by the project's codec, schema/stun.c), S
# connected sockets with W Binding requests outstanding on each, responses
# matched by transaction ID and refilled at once; LOADS lists SxW pairs
# (default "8x4 16x16 32x32"). Measured SECONDS_RUN (5) s after 0.5 s of
# warm-up; loss = requests sent in the interval never answered within
# TIMEOUT_MS (200). Each row is the best of REPS (2) runs by responses/s.
#
# The servers:
#   rendezvousd  built from `git archive HEAD` (SERVER_FROM=head, the default
#                here; see lib.sh) in Release, run as
#                `rendezvousd --port 0 --stun-port $STUN_PORT --db $OUT/rdv.db
#                --log-level warn` (listens on 127.0.0.1, its default).
#   coturn       Debian's turnserver with a temporary config: listening-ip
#                127.0.0.1, listening-port $TURN_PORT, stun-only, no-tls,
#                no-dtls, no-cli, no-auth, log to $OUT/turn.log; run twice:
#                its relay threads at its default (one per CPU), and with
#                relay-threads=1 (one thread, as rendezvousd's one loop).
# Each row is the run with the median responses/s of REPS runs, with the
# min / median / max beside it (issue 15: never a best run).
# srv rx drops: datagrams the kernel dropped at the server's socket(s)
# (receive buffer full; /proc/net/udp). CPU columns: cores used during the run by the server (/proc/PID/stat) and
# by the generator (its getrusage / run length); srv us/resp = server CPU
# time per response (srv cores / responses/s), which the generator sharing
# the 2 cores does not inflate. Everything started here is
# stopped by PID on exit; every wait is bounded; loopback only.
set -u
OUT=${OUT:-$(mktemp -d /tmp/rdv-stun-bench.XXXXXX)}
SERVER_FROM=${SERVER_FROM:-head}
# shellcheck source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

STUN_PORT=${STUN_PORT:-18590}
TURN_PORT=${TURN_PORT:-18592}
SECONDS_RUN=${SECONDS_RUN:-5}
LOADS=${LOADS:-"8x4 16x16 32x32"}
TIMEOUT_MS=${TIMEOUT_MS:-200}
REPS=${REPS:-3}
GEN_DIR=${GEN_DIR:-$REPO_DIR/build-bench-stun}
GEN=$GEN_DIR/loadgen_stun
TURN_PID=

cleanup_stun() { stop_rdv; stop_pid "$TURN_PID"; TURN_PID=; }
trap cleanup_stun EXIT

command -v turnserver >/dev/null || die "turnserver not found (apt-get install coturn)"
command -v ss >/dev/null || die "ss not found"

# ---- build ---------------------------------------------------------------
build_server() {
    build_server_tree "$REPO_DIR/build-bench-src" rendezvousd
    local src=$SRC
    # the generator from the same sources as the server's codec
    log "building loadgen_stun in $GEN_DIR"
    mkdir -p "$GEN_DIR"
    cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -I "$src" \
        -o "$GEN" "$BENCH_DIR/loadgen_stun.c" "$src/schema/stun.c" >"$OUT/cc.log" 2>&1 \
        || die "building loadgen_stun failed; see $OUT/cc.log"
}
build_server

# ---- servers --------------------------------------------------------------
udp_bound() { ss -Hlnu "sport = :$1" 2>/dev/null | grep -q .; }
# Datagrams the kernel dropped on the server's UDP sockets bound to port $1
# (receive buffer full): the last column of /proc/net/udp, summed.
udp_drops() {
    awk -v p="$(printf ':%04X' "$1")" 'NR > 1 && substr($2, length($2) - 4) == p {d += $NF} END {print d + 0}' /proc/net/udp
}

start_rdv_stun() {
    udp_bound "$STUN_PORT" && die "UDP port $STUN_PORT is in use (set STUN_PORT)"
    rm -f "$OUT"/rdv.db "$OUT"/rdv.db-*
    "$RDVD" --port 0 --stun-port "$STUN_PORT" --db "$OUT/rdv.db" --name bench \
        --log-level warn $RDV_FLAGS >>"$OUT/rdv.log" 2>&1 &
    RDV_PID=$!
    local i
    for i in $(seq 1 100); do
        udp_bound "$STUN_PORT" && return 0
        kill -0 "$RDV_PID" 2>/dev/null || die "rendezvousd exited at start; see $OUT/rdv.log"
        sleep 0.1
    done
    die "rendezvousd's STUN port not open after 10 s; see $OUT/rdv.log"
}

start_turn() { # [extra config line]
    udp_bound "$TURN_PORT" && die "UDP port $TURN_PORT is in use (set TURN_PORT)"
    cat >"$OUT/turn.conf" <<EOF
${1:-}
listening-ip=127.0.0.1
listening-port=$TURN_PORT
stun-only
no-tls
no-dtls
no-cli
no-auth
simple-log
log-file=$OUT/turn.log
pidfile=$OUT/turn.pid
userdb=$OUT/turndb
EOF
    turnserver -c "$OUT/turn.conf" >"$OUT/turn.out" 2>&1 &
    TURN_PID=$!
    local i
    for i in $(seq 1 100); do
        udp_bound "$TURN_PORT" && { sleep 0.5; return 0; }
        kill -0 "$TURN_PID" 2>/dev/null || die "turnserver exited at start; see $OUT/turn.out"
        sleep 0.1
    done
    die "turnserver not listening after 10 s; see $OUT/turn.out"
}

# run_load PORT PID S W -> a RESULT line with srv_cores= appended
run_load() {
    local port=$1 pid=$2 s=$3 w=$4 a b line tck d0 d1
    tck=$(getconf CLK_TCK)
    wait_quiet
    d0=$(udp_drops "$port")
    a=$(proc_ticks "$pid")
    line=$(timeout $((SECONDS_RUN + 30)) "$GEN" --port "$port" --sockets "$s" --window "$w" \
        --seconds "$SECONDS_RUN" --timeout-ms "$TIMEOUT_MS" 2>>"$OUT/loadgen.log" | grep '^RESULT')
    b=$(proc_ticks "$pid")
    d1=$(udp_drops "$port")
    [ -n "$line" ] || die "loadgen_stun gave no result; see $OUT/loadgen.log"
    # server ticks cover warm-up + run + drain; divide by that span
    printf '%s srv_rx_drops=%s srv_cores=%s\n' "$line" "$((d1 - d0))" "$(awk -v a="$a" -v b="$b" -v t="$tck" \
        -v s="$SECONDS_RUN" -v m="$TIMEOUT_MS" 'BEGIN {printf "%.2f", (b - a) / t / (s + 0.5 + m / 1000)}')"
}

# best PORT PID S W -> the RESULT line of the run with the median
# responses/s of REPS runs, with rps_range=MIN/MEDIAN/MAX appended
best() {
    local r line lines=() rpss=() med
    for r in $(seq 1 "$REPS"); do
        line=$(run_load "$@")
        [ -n "$line" ] || die "a run failed; see $OUT/loadgen.log"
        echo "$1 $3x$4 rep$r $line" >>"$OUT/results.txt"
        lines+=("$line")
        rpss+=("$(field rps "$line")")
    done
    med=$(printf '%s\n' "${rpss[@]}" | median)
    for r in "${!rpss[@]}"; do
        if [ "${rpss[$r]}" = "$med" ]; then
            printf '%s rps_range=%s/%s/%s\n' "${lines[$r]}" \
                "$(printf '%s\n' "${rpss[@]}" | sort -g | head -1)" "$med" \
                "$(printf '%s\n' "${rpss[@]}" | sort -g | tail -1)"
            return
        fi
    done
}

declare -A RES
start_rdv_stun
for l in $LOADS; do
    log "rendezvousd: $l (sockets x window)"
    RES[rdv,$l]=$(best "$STUN_PORT" "$RDV_PID" "${l%x*}" "${l#*x}")
done
stop_rdv
start_turn
for l in $LOADS; do
    log "coturn: $l (sockets x window)"
    RES[turn,$l]=$(best "$TURN_PORT" "$TURN_PID" "${l%x*}" "${l#*x}")
done
TURN_VERSION=$(turnserver --version 2>/dev/null | head -1)
stop_pid "$TURN_PID"; TURN_PID=
start_turn "relay-threads=1"
for l in $LOADS; do
    log "coturn, one relay thread: $l (sockets x window)"
    RES[turn1,$l]=$(best "$TURN_PORT" "$TURN_PID" "${l%x*}" "${l#*x}")
done
stop_pid "$TURN_PID"; TURN_PID=

row() { # name line
    local line=$2 gen us
    gen=$(awk -v c="$(field gen_cpu_s "$line")" -v s="$SECONDS_RUN" -v m="$TIMEOUT_MS" \
        'BEGIN {printf "%.2f", c / (s + 0.5 + m / 1000)}')
    us=$(awk -v c="$(field srv_cores "$line")" -v r="$(field rps "$line")" \
        'BEGIN {if (r > 0) printf "%.2f", c * 1e6 / r; else print "n/a"}')
    printf '| %-24s | %7s | %9s | %7s | %8s | %6s | %6s | %7s | %4s | %5s | %4s | %s | %s |\n' "$1" \
        "$(field sockets "$line")x$(field window "$line")" "$(field rps "$line")" \
        "$(field loss_pct "$line")" "$(field srv_rx_drops "$line")" "$(field p50_us "$line")" "$(field p99_us "$line")" \
        "$(field p999_us "$line")" "$(field srv_cores "$line")" "$us" "$gen" "$(field bad "$line")" \
        "$(field rps_range "$line" | sed 's|/| / |g')"
}
{
    machine_line
    echo
    echo "coturn: turnserver ${TURN_VERSION:-?} --stun-only; ${SECONDS_RUN} s per run after 0.5 s warm-up; each row the run with the median responses/s of $REPS (min / median / max in the last column); loss timeout ${TIMEOUT_MS} ms"
    echo
    echo "| server                   | sockets x window | responses/s | loss % | srv rx drops | p50 us | p99 us | p999 us | srv cores | srv us/resp | gen cores | bad | responses/s min / median / max |"
    echo "|--------------------------|---------|-----------|---------|----------|--------|--------|---------|------|-------|------|-----|-----|"
    for l in $LOADS; do
        row "rendezvousd" "${RES[rdv,$l]}"
        row "coturn --stun-only" "${RES[turn,$l]}"
        row "coturn, relay-threads=1" "${RES[turn1,$l]}"
    done
    echo
    for l in $LOADS; do
        a=$(field rps "${RES[rdv,$l]}"); b=$(field rps "${RES[turn,$l]}"); c=$(field rps "${RES[turn1,$l]}")
        echo "- $l: rendezvousd / coturn = $(awk -v a="$a" -v b="$b" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')x responses/s (medians); / coturn with one relay thread = $(awk -v a="$a" -v b="$c" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')x"
    done
} >"$OUT/table.md"
cat "$OUT/table.md"
log "raw results: $OUT"
if [ "${APPEND:-0}" = 1 ]; then
    {
        echo
        echo "## STUN"
        echo
        echo "Command: \`bench/stun.sh\` (LOADS=\"$LOADS\", SECONDS_RUN=$SECONDS_RUN, REPS=$REPS)"
        echo
        cat "$OUT/table.md"
    } >>"$BENCH_DIR/RESULTS.md"
    log "appended to bench/RESULTS.md"
fi
