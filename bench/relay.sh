#!/usr/bin/env bash
# relay.sh - workload 4: the relay of last resort against raw loopback TCP
# and coturn's TURN relay, measured the way issue 15 asks: fixed-duration
# runs after a warm-up, REPS runs per configuration, interleaved (A B C,
# C B A, ...), each on a fresh server, every cell min / median / max over
# the runs, ratios per round with their range, never a best run.
#
#   bench/relay.sh                          # both parts, defaults below
#   PARTS=bulk REPS=5 bench/relay.sh        # one part
#   REPS=1 SECONDS_RUN=3 WARMUP_S=1 bench/relay.sh   # a quick check only
#
# Part `bulk` (goal 6: one session >= 50 % of raw TCP at defaults): one-way,
# flow-controlled: each sender keeps at most WINDOW_BYTES (256 KiB) of
# PAYLOAD-byte (16 KiB) messages in flight; SESSIONS_LIST ("1 50") sessions.
#   A  rendezvousd at its defaults (only --stun off and --operator-listen
#      off, so it binds nothing but its port; loadgen_relay --mode ws:
#      authenticated nodes, consented relay sessions, binary relay frames on
#      the main connection)
#   B  the same with the relay channel (loadgen_relay --channel: a second
#      WebSocket per node for relay data, PROTOCOL.md 9.5); only when
#      `loadgen_relay --help` lists --channel (CHANNEL=auto|0|1)
#   C  raw TCP: loadgen_relay --mode tcp through `--mode forwarder` (a
#      blocking read/write splice per direction, a thread each), the ceiling
# coturn is not in this part: turnutils_uclient cannot send one way (its
# client-to-client sessions are always two-way) nor keep a window.
#
# Part `turn` (vs coturn on the same shape): TURN_SESSIONS ("1 25") sessions,
# both directions, TURN_PAYLOAD (1200) byte messages, every sender paced the
# way turnutils_uclient paces: a 1 ms tick, one message due every Z ms, at
# most 50 per tick (TURN_INTERVALS "1 0": Z = 1 is 1,000 msgs/s per sender,
# Z = 0 is 50 per tick, uclient's ceiling). Rows: A, B, C as above (two-way,
# the same pacing) and
#   D  coturn (Debian turnserver, relay-threads=TURN_RELAY_THREADS (1), lt-cred
#      user bench) with TURN over TCP (turnutils_uclient -t)
#   E  the same over UDP
# loaded by bench/turn_uclient.py (2 x sessions uclient clients, -y -c, -l, -z;
# see its header). What uclient can and cannot saturate: it is one thread
# sending at most 50 messages per client per 1 ms timer tick, one send() per
# message; on TCP it spins on EAGAIN inside send() (so a full socket shows as
# generator CPU, not as a lower offered rate), and a TURN client-to-client
# message crosses the server twice (client -> allocation A -> UDP ->
# allocation B -> client), where ours crosses once (A -> server -> B).
# `gen cores` near 1 means the generator, not the server, set the rate; the
# paced configuration (Z = 1) is the one where neither generator is the
# limit, and its srv us/msg is the per-message figure to compare.
#
# Every run: server (or forwarder, or turnserver) pinned to core SERVER_CORE
# (0), generator to GEN_CORE (1) with taskset; WARMUP_S (5) s of traffic after
# the last sender started, then SECONDS_RUN (20) s measured; every figure is
# from counters read at the two ends of that window, for every row the same
# way (loadgen_relay --warmup for A-C, turn_uclient.py for D-E):
#   msgs/s, MB/s   payload messages / bytes received in the window per second
#   loss % (win)   1 - received / sent in the window (messages in flight at
#                  the window's ends count: a few ms of traffic)
#   lost (run)     messages sent in the whole run and never received after a
#                  drain (loadgen_relay: DRAIN_S; uclient: its own 10 s wait
#                  and "Total lost packets"; -1: not known, uclient stopped)
#   srv cores, gen cores, other cores: CPU of the server process (all
#                  threads), of the generator, and of everything else on the
#                  machine during the window (/proc)
#   srv us/msg, srv us/MB: server CPU per received message / per MB
#   p50 / p99 us   one-way delay of messages received in the window
#                  (loadgen_relay only; uclient's clock has 1 ms resolution)
# Raw RESULT lines: $OUT/relay-*.txt; the tables: $OUT/table.md.
# Ports: RDV_PORT (18580), FWD_PORT (18581), TURN_PORT (18582). Every wait is
# bounded; everything started here is stopped by PID on exit.
set -u
RDV_PORT=${RDV_PORT:-18580}
. "$(dirname "$0")/lib.sh"

PARTS=${PARTS:-"bulk turn"}
REPS=${REPS:-5}
SECONDS_RUN=${SECONDS_RUN:-20}
WARMUP_S=${WARMUP_S:-5}
DRAIN_S=${DRAIN_S:-2}
SESSIONS_LIST=${SESSIONS_LIST:-"1 50"}
PAYLOAD=${PAYLOAD:-16384}
WINDOW_BYTES=${WINDOW_BYTES:-262144}
TURN_SESSIONS=${TURN_SESSIONS:-"1 25"}
TURN_PAYLOAD=${TURN_PAYLOAD:-1200}
TURN_INTERVALS=${TURN_INTERVALS:-"1 0"}
TURN_TRANSPORTS=${TURN_TRANSPORTS:-"tcp udp"}
TURN_RELAY_THREADS=${TURN_RELAY_THREADS:-1}
SERVER_CORE=${SERVER_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
FWD_PORT=${FWD_PORT:-18581}
TURN_PORT=${TURN_PORT:-18582}
CHANNEL=${CHANNEL:-auto}
CHANNEL_GEN_FLAGS=${CHANNEL_GEN_FLAGS:---channel}
RUN_TIMEOUT=$((WARMUP_S + SECONDS_RUN + DRAIN_S + 120))
FWD_PID=
TURN_PID=

cleanup_relay() { cleanup; stop_pid "$FWD_PID"; FWD_PID=; stop_pid "$TURN_PID"; TURN_PID=; }
trap cleanup_relay EXIT
trap 'exit 130' INT TERM

command -v taskset >/dev/null || die "taskset not found (util-linux)"
command -v python3 >/dev/null || die "python3 not found"
if [[ " $PARTS " == *" turn "* ]]; then
    command -v turnserver >/dev/null || die "turnserver not found (apt-get install coturn)"
    command -v turnutils_uclient >/dev/null || die "turnutils_uclient not found (coturn)"
    command -v stdbuf >/dev/null || die "stdbuf not found (coreutils)"
fi

if [ "${BOOTSTRAP:-1}" = 1 ] && [ -x "$REPO_DIR/scripts/bootstrap" ]; then
    "$REPO_DIR/scripts/bootstrap" || die "scripts/bootstrap failed"
fi
build_server_tree "$REPO_DIR/build-bench-src" rendezvousd
build_gens
GEN=$GEN_BUILD/loadgen_relay
[ -x "$GEN" ] || die "no $GEN"
log "output in $OUT"
HAVE_CHANNEL=0
case $CHANNEL in
1) HAVE_CHANNEL=1 ;;
auto) "$GEN" --help 2>&1 | grep -q -- '--channel' && HAVE_CHANNEL=1 ;;
esac
[ "$HAVE_CHANNEL" = 1 ] || log "relay.sh: no relay-channel rows (loadgen_relay has no --channel, or CHANNEL=0)"

TSRV=(taskset -c "$SERVER_CORE")
TGEN=(taskset -c "$GEN_CORE")

start_fwd() {
    port_free "$FWD_PORT" || die "port $FWD_PORT is in use (set FWD_PORT)"
    "${TSRV[@]}" "$GEN" --mode forwarder --port "$FWD_PORT" 2>>"$OUT/forwarder.log" &
    FWD_PID=$!

    for _ in $(seq 1 50); do
        port_free "$FWD_PORT" || return 0
        kill -0 "$FWD_PID" 2>/dev/null || die "the forwarder exited; see $OUT/forwarder.log"
        sleep 0.1
    done
    die "the forwarder is not listening after 5 s"
}

udp_bound() { ss -Hlnu "sport = :$1" 2>/dev/null | grep -q .; }

start_turn() {
    udp_bound "$TURN_PORT" && die "UDP port $TURN_PORT is in use (set TURN_PORT)"
    port_free "$TURN_PORT" || die "TCP port $TURN_PORT is in use (set TURN_PORT)"
    cat >"$OUT/turn.conf" <<EOF
listening-ip=127.0.0.1
listening-port=$TURN_PORT
relay-ip=127.0.0.1
min-port=50000
max-port=59999
relay-threads=$TURN_RELAY_THREADS
allow-loopback-peers
no-tls
no-dtls
no-cli
lt-cred-mech
user=bench:bench
realm=bench
fingerprint
no-multicast-peers
simple-log
log-file=$OUT/turn.log
pidfile=$OUT/turn.pid
userdb=$OUT/turndb
EOF
    "${TSRV[@]}" turnserver -c "$OUT/turn.conf" >>"$OUT/turn.out" 2>&1 &
    TURN_PID=$!

    for _ in $(seq 1 100); do
        if udp_bound "$TURN_PORT" && ! port_free "$TURN_PORT"; then sleep 0.3; return 0; fi
        kill -0 "$TURN_PID" 2>/dev/null || die "turnserver exited at start; see $OUT/turn.out"
        sleep 0.1
    done
    die "turnserver not listening after 10 s; see $OUT/turn.out"
}

# run_gen PID GEN-ARGS...: one loadgen_relay windowed run, pinned; prints
# its RESULT line (status=failed when it gave none).
run_gen() {
    local spid=$1 line; shift
    line=$(timeout "$RUN_TIMEOUT" "${TGEN[@]}" "$GEN" --warmup "$WARMUP_S" --seconds "$SECONDS_RUN" \
        --drain "$DRAIN_S" --server-pid "$spid" "$@" 2>>"$OUT/loadgen.log" | grep '^RESULT')
    [ -n "$line" ] || line="RESULT status=failed msgs_per_s=0"
    printf '%s\n' "$line"
}

# run_cfg ROW SHAPE-ARGS...: one run of row rdv|chan|tcp|turn-tcp|turn-udp on
# a fresh server; prints its RESULT line. SHAPE-ARGS: loadgen_relay's
# --sessions, --payload, [--window | --directions 2 --interval-ms Z].
run_cfg() {
    local row=$1 line; shift
    wait_quiet
    case $row in
    rdv | chan)
        RDVD_PREFIX="${TSRV[*]}" start_rdv defaults --stun off
        if [ "$row" = rdv ]; then
            line=$(run_gen "$RDV_PID" --mode ws --port "$RDV_PORT" "$@")
        else
            # shellcheck disable=SC2086 # a flag list
            line=$(run_gen "$RDV_PID" --mode ws --port "$RDV_PORT" $CHANNEL_GEN_FLAGS "$@")
        fi
        stop_rdv
        ;;
    tcp)
        start_fwd
        line=$(run_gen "$FWD_PID" --mode tcp --port "$FWD_PORT" "$@")
        stop_pid "$FWD_PID"; FWD_PID=
        ;;
    turn-tcp | turn-udp)
        start_turn
        local s p z tflag=()
        s=$(argval --sessions "$@"); p=$(argval --payload "$@"); z=$(argval --interval-ms "$@")
        [ "$row" = turn-tcp ] && tflag=(--tcp)
        line=$(timeout "$((RUN_TIMEOUT + 60))" python3 "$BENCH_DIR/turn_uclient.py" \
            --port "$TURN_PORT" --sessions "$s" --payload "$p" --interval-ms "$z" \
            --warmup "$WARMUP_S" --seconds "$SECONDS_RUN" --server-pid "$TURN_PID" \
            --core "$GEN_CORE" "${tflag[@]}" --out "$OUT/uclient-$row-s$s-z$z.log" \
            2>>"$OUT/loadgen.log" | grep '^RESULT')
        [ -n "$line" ] || line="RESULT status=failed msgs_per_s=0"
        stop_pid "$TURN_PID"; TURN_PID=
        ;;
    esac
    [ "$(field status "$line")" = ok ] || log "relay.sh: $row $*: $line"
    printf '%s\n' "$line"
}
argval() { # argval NAME ARGS...: the value after NAME
    local k=$1; shift
    while [ $# -gt 1 ]; do [ "$1" = "$k" ] && { echo "$2"; return; }; shift; done
}

# rounds FILE-PREFIX "ROWS" SHAPE-ARGS...: REPS rounds over ROWS, the order
# reversed every other round; run k of row R goes to FILE-PREFIX-R.txt.
rounds() {
    local pre=$1 rows=$2 rep order r; shift 2
    for r in $rows; do : >"$pre-$r.txt"; done
    for rep in $(seq 1 "$REPS"); do
        order=$rows
        # shellcheck disable=SC2086 # a word list
        [ $((rep % 2)) = 0 ] && order=$(printf '%s\n' $rows | tac | tr '\n' ' ')
        for r in $order; do
            log "relay.sh: round $rep/$REPS: $r $*"
            run_cfg "$r" "$@" >>"$pre-$r.txt"
        done
    done
}

label() {
    case $1 in
    rdv) echo "rendezvousd (defaults)" ;;
    chan) echo "rendezvousd (defaults), relay channel" ;;
    tcp) echo "raw TCP forwarder" ;;
    turn-tcp) echo "coturn, TURN/TCP (uclient -t), relay-threads=$TURN_RELAY_THREADS" ;;
    turn-udp) echo "coturn, TURN/UDP, relay-threads=$TURN_RELAY_THREADS" ;;
    esac
}
bad_runs() { grep -vc 'status=ok' "$1"; }
runlost() { # "min / median / max" of run_lost, "-" when unknown in any run
    if col "$1" run_lost | grep -q '^-1$'; then echo "-"; else col "$1" run_lost | statsi; fi
}

BULK_TABLES=()
TURN_TABLES=()
NOTES=()
BULK_HEADER='| configuration | sessions | runs | MB/s | msgs/s | loss % (win) | lost (run) | p50 us | p99 us | srv cores | srv us/MB | gen cores | other cores | bad runs |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
TURN_HEADER='| configuration | sessions x interval | runs | msgs/s | MB/s | loss % (win) | lost (run) | srv cores | srv us/msg | gen cores | gen us/msg | other cores | p50 / p99 us (median) | bad runs |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'

for part in $PARTS; do
case $part in
bulk)
    rows="rdv"; [ "$HAVE_CHANNEL" = 1 ] && rows="$rows chan"; rows="$rows tcp"
    for s in $SESSIONS_LIST; do
        pre="$OUT/relay-bulk-s$s"
        rounds "$pre" "$rows" --sessions "$s" --payload "$PAYLOAD" --window "$WINDOW_BYTES"
        for r in $rows; do
            f="$pre-$r.txt"
            BULK_TABLES+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
                "$(label "$r")" "$s" "$(wc -l <"$f")" "$(col "$f" mbps | stats)" \
                "$(col "$f" msgs_per_s | stats)" "$(col "$f" loss_pct | stats3)" "$(runlost "$f")" \
                "$(col "$f" p50_us | stats)" "$(col "$f" p99_us | stats)" \
                "$(col "$f" win_server_cores | stats2)" "$(col "$f" srv_us_per_mb | stats)" \
                "$(col "$f" win_gen_cores | stats2)" "$(col "$f" win_other_cores | stats2)" \
                "$(bad_runs "$f")")")
        done
        for r in rdv chan; do
            [ -s "$pre-$r.txt" ] || continue
            NOTES+=("- bulk, $s session(s): $(label "$r") / raw TCP MB/s per round (goal 6, one session: >= 0.5): $(ratio_range "$pre-tcp.txt" "$pre-$r.txt" mbps)")
        done
    done
    ;;
turn)
    rows="rdv"; [ "$HAVE_CHANNEL" = 1 ] && rows="$rows chan"
    rows="$rows tcp"
    for t in $TURN_TRANSPORTS; do rows="$rows turn-$t"; done
    for s in $TURN_SESSIONS; do
        for z in $TURN_INTERVALS; do
            pre="$OUT/relay-turn-s$s-z$z"
            rounds "$pre" "$rows" --sessions "$s" --payload "$TURN_PAYLOAD" --directions 2 --interval-ms "$z"
            for r in $rows; do
                f="$pre-$r.txt"
                TURN_TABLES+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' \
                    "$(label "$r")" "${s}x$z ms" "$(wc -l <"$f")" "$(col "$f" msgs_per_s | stats)" \
                    "$(col "$f" mbps | stats)" "$(col "$f" loss_pct | stats3)" "$(runlost "$f")" \
                    "$(col "$f" win_server_cores | stats2)" "$(col "$f" srv_us_per_msg | stats)" \
                    "$(col "$f" win_gen_cores | stats2)" "$(col "$f" gen_us_per_msg | stats)" \
                    "$(col "$f" win_other_cores | stats2)" \
                    "$(case $r in turn-*) echo "-" ;; *) echo "$(col "$f" p50_us | median) / $(col "$f" p99_us | median)" ;; esac)" \
                    "$(bad_runs "$f")")")
            done
            for t in $TURN_TRANSPORTS; do
                for r in rdv chan; do
                    [ -s "$pre-$r.txt" ] || continue
                    NOTES+=("- turn shape ${s}x$z ms: $(label "$r") vs coturn TURN/${t^^}, per round: msgs/s ours / coturn $(ratio_range "$pre-turn-$t.txt" "$pre-$r.txt" msgs_per_s); server CPU per message coturn / ours $(ratio_range "$pre-$r.txt" "$pre-turn-$t.txt" srv_us_per_msg)")
                done
            done
        done
    done
    ;;
*) die "unknown part $part (bulk, turn)" ;;
esac
done

{
    machine_line
    echo
    echo "$REPS runs per row, interleaved (A B C, C B A, ...), each on a fresh server; $SECONDS_RUN s measured after $WARMUP_S s of traffic; server on core $SERVER_CORE, generator on core $GEN_CORE (taskset). Each cell: min / median / max over the runs."
    echo "coturn: $(turnserver --version 2>/dev/null | head -1) relay-threads=$TURN_RELAY_THREADS; loaded by turnutils_uclient (bench/turn_uclient.py)."
    if [ ${#BULK_TABLES[@]} -gt 0 ]; then
        echo
        echo "Bulk, one-way, $PAYLOAD-byte messages, at most $WINDOW_BYTES bytes in flight per session:"
        echo
        echo "$BULK_HEADER"
        printf '%s\n' "${BULK_TABLES[@]}"
    fi
    if [ ${#TURN_TABLES[@]} -gt 0 ]; then
        echo
        echo "TURN shape, two-way, $TURN_PAYLOAD-byte messages, every sender paced like turnutils_uclient (1 ms tick, one message per interval, at most 50 per tick; interval 0 = 50 per tick):"
        echo
        echo "$TURN_HEADER"
        printf '%s\n' "${TURN_TABLES[@]}"
    fi
    echo
    printf '%s\n' "${NOTES[@]}"
} | tee "$OUT/table.md"
log "raw results: $OUT"
