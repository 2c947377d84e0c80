#!/usr/bin/env bash
# stun.sh - workload 5: STUN Binding responses per second, rendezvousd's
# built-in responder against coturn (`turnserver --stun-only`) with ONE
# relay thread, measured the way issue 15 asks: fixed-duration runs after a
# warm-up, REPS runs per configuration, interleaved (A B, B A, ...), each on
# a fresh server, server and generator pinned to different cores, every
# cell min / median / max over the runs, the ratio per round with its range,
# never a best run.
#
#   bench/stun.sh                                  # defaults below
#   REPS=1 SECONDS_RUN=3 LOADS=8x4 bench/stun.sh   # a quick check only
#
# The load: bench/loadgen_stun (one thread, plain UDP sockets; requests
# built and responses parsed by the project's codec, schema/stun.c), S
# connected sockets with W Binding requests outstanding on each, responses
# matched by transaction ID and refilled at once; LOADS lists SxW pairs
# (default "8x4 16x16 32x32"). Measured SECONDS_RUN (20) s after WARMUP_MS
# (2000) ms; a request sent in the measured interval and not answered within
# TIMEOUT_MS (200) is lost (a timeout; its slot is refilled).
#
# Rows (ROWS, default "rdv turn1"):
#   rdv    rendezvousd `--port 0 --stun-port $STUN_PORT --db ... --log-level
#          warn` (listens on 127.0.0.1, everything else default)
#   turn1  coturn (Debian turnserver) with a temporary config: listening-ip
#          127.0.0.1, listening-port $TURN_PORT, stun-only, no-tls, no-dtls,
#          no-cli, no-auth, relay-threads=1 (`turnserver --relay-threads`, -m:
#          one relay thread, as rendezvousd's one loop)
#   turn   the same with coturn's default thread count (one per CPU); add it
#          with ROWS="rdv turn1 turn"
# Server on core SERVER_CORE (0), generator on GEN_CORE (1) (taskset).
# Columns: responses/s in the measured interval; loss % and lost = requests
# of the interval never answered (timeouts); srv rx drops = datagrams the
# kernel dropped at the server's socket(s) during the run (/proc/net/udp);
# srv / gen / other cores = CPU of the server process (all threads), of the
# generator, and of everything else during the measured interval (read by
# loadgen_stun at its two ends); srv us/resp = server CPU per response;
# threads = the server's threads (/proc/PID/task) during the run; bad =
# malformed or wrong responses, late = answers after their timeout.
# Raw RESULT lines: $OUT/stun-*.txt; the table: $OUT/table.md. Everything
# started here is stopped by PID on exit; every wait is bounded; loopback.
set -u
OUT=${OUT:-$(mktemp -d /tmp/rdv-stun-bench.XXXXXX)}
SERVER_FROM=${SERVER_FROM:-head}
# shellcheck source=lib.sh
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

STUN_PORT=${STUN_PORT:-18590}
TURN_PORT=${TURN_PORT:-18592}
SECONDS_RUN=${SECONDS_RUN:-20}
WARMUP_MS=${WARMUP_MS:-2000}
LOADS=${LOADS:-"8x4 16x16 32x32"}
TIMEOUT_MS=${TIMEOUT_MS:-200}
REPS=${REPS:-5}
ROWS=${ROWS:-"rdv turn1"}
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
GEN=$GEN_BUILD/loadgen_stun
TURN_PID=

cleanup_stun() { stop_rdv; stop_pid "$TURN_PID"; TURN_PID=; }
trap cleanup_stun EXIT
trap 'exit 130' INT TERM

command -v turnserver >/dev/null || die "turnserver not found (apt-get install coturn)"
command -v ss >/dev/null || die "ss not found"
command -v taskset >/dev/null || die "taskset not found (util-linux)"

if [ "${BOOTSTRAP:-1}" = 1 ] && [ -x "$REPO_DIR/scripts/bootstrap" ]; then
    "$REPO_DIR/scripts/bootstrap" || die "scripts/bootstrap failed"
fi
build_server_tree "$REPO_DIR/build-bench-src" rendezvousd
build_gens
[ -x "$GEN" ] || die "no $GEN"
log "output in $OUT"
TSRV=(taskset -c "$SERVER_CORE")
TGEN=(taskset -c "$GEN_CORE")

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
    # shellcheck disable=SC2086 # RDV_FLAGS is a word list
    "${TSRV[@]}" "$RDVD" --port 0 --stun-port "$STUN_PORT" --db "$OUT/rdv.db" --name bench \
        --log-level warn $RDV_FLAGS >>"$OUT/rdv.log" 2>&1 &
    RDV_PID=$!
    for _ in $(seq 1 100); do
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
    "${TSRV[@]}" turnserver -c "$OUT/turn.conf" >>"$OUT/turn.out" 2>&1 &
    TURN_PID=$!
    for _ in $(seq 1 100); do
        udp_bound "$TURN_PORT" && { sleep 0.5; return 0; }
        kill -0 "$TURN_PID" 2>/dev/null || die "turnserver exited at start; see $OUT/turn.out"
        sleep 0.1
    done
    die "turnserver not listening after 10 s; see $OUT/turn.out"
}

# run_one ROW S W -> one RESULT line (loadgen_stun's, plus srv_rx_drops and
# threads), on a fresh server
run_one() {
    local row=$1 s=$2 w=$3 port pid line d0 d1 th
    wait_quiet
    case $row in
    rdv) start_rdv_stun; port=$STUN_PORT; pid=$RDV_PID ;;
    turn1) start_turn "relay-threads=1"; port=$TURN_PORT; pid=$TURN_PID ;;
    turn) start_turn; port=$TURN_PORT; pid=$TURN_PID ;;
    *) die "unknown row $row (rdv, turn1, turn)" ;;
    esac
    th=$(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    d0=$(udp_drops "$port")
    line=$(timeout $((SECONDS_RUN + WARMUP_MS / 1000 + 30)) "${TGEN[@]}" "$GEN" --port "$port" \
        --sockets "$s" --window "$w" --seconds "$SECONDS_RUN" --warmup-ms "$WARMUP_MS" \
        --timeout-ms "$TIMEOUT_MS" --server-pid "$pid" 2>>"$OUT/loadgen.log" | grep '^RESULT')
    d1=$(udp_drops "$port")
    if [ "$row" = rdv ]; then stop_rdv; else stop_pid "$TURN_PID"; TURN_PID=; fi
    if [ -z "$line" ]; then
        log "stun.sh: $row ${s}x$w: no result; see $OUT/loadgen.log"
        line="RESULT status=failed rps=0"
    else
        line="$line status=ok"
    fi
    printf '%s srv_rx_drops=%s threads=%s\n' "$line" "$((d1 - d0))" "$th"
}

TABLE=()
NOTES=()
label() {
    case $1 in
    rdv) echo "rendezvousd" ;;
    turn1) echo "coturn --stun-only, relay-threads=1" ;;
    turn) echo "coturn --stun-only, default threads" ;;
    esac
}
for l in $LOADS; do
    s=${l%x*} w=${l#*x}
    for r in $ROWS; do : >"$OUT/stun-$l-$r.txt"; done
    for rep in $(seq 1 "$REPS"); do
        order=$ROWS
        # shellcheck disable=SC2086 # a word list
        [ $((rep % 2)) = 0 ] && order=$(printf '%s\n' $ROWS | tac | tr '\n' ' ')
        for r in $order; do
            log "stun.sh: round $rep/$REPS: $r $l"
            run_one "$r" "$s" "$w" >>"$OUT/stun-$l-$r.txt"
        done
    done
    for r in $ROWS; do
        f="$OUT/stun-$l-$r.txt"
        TABLE+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
            "$(label "$r")" "$l" "$(wc -l <"$f")" "$(col "$f" rps | stats)" \
            "$(col "$f" loss_pct | stats3)" "$(col "$f" lost | statsi)" "$(col "$f" srv_rx_drops | statsi)" \
            "$(col "$f" p50_us | stats)" "$(col "$f" p99_us | stats)" "$(col "$f" p999_us | stats)" \
            "$(col "$f" win_server_cores | stats2)" "$(col "$f" srv_us_per_resp | stats2)" \
            "$(col "$f" win_gen_cores | stats2)" "$(col "$f" win_other_cores | stats2)" \
            "$(col "$f" threads | median)" \
            "$(col "$f" bad | awk '{s+=$1} END {print s+0}') / $(col "$f" late | awk '{s+=$1} END {print s+0}')" \
            "$(grep -vc 'status=ok' "$f")")")
    done
    for r in $ROWS; do
        [ "$r" = rdv ] && continue
        NOTES+=("- $l: rendezvousd / $(label "$r"), per round: responses/s $(ratio_range "$OUT/stun-$l-$r.txt" "$OUT/stun-$l-rdv.txt" rps); server CPU per response, coturn / ours: $(ratio_range "$OUT/stun-$l-rdv.txt" "$OUT/stun-$l-$r.txt" srv_us_per_resp)")
    done
done

{
    machine_line
    echo
    echo "coturn $(turnserver --version 2>/dev/null | head -1) --stun-only. $REPS runs per row, interleaved (A B, B A, ...), each on a fresh server; $SECONDS_RUN s measured after $WARMUP_MS ms; a request unanswered after $TIMEOUT_MS ms is lost; server on core $SERVER_CORE, generator on core $GEN_CORE (taskset). Each cell: min / median / max over the runs."
    echo
    echo "| server | sockets x window | runs | responses/s | loss % | lost | srv rx drops | p50 us | p99 us | p999 us | srv cores | srv us/resp | gen cores | other cores | threads | bad / late | bad runs |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${TABLE[@]}"
    echo
    printf '%s\n' "${NOTES[@]}"
} | tee "$OUT/table.md"
log "raw results: $OUT"
