#!/bin/sh
# callgrind_signal.sh - instructions per routed offer in rendezvousd, a
# figure that other load on the machine does not change (issue 15).
#
#   bench/callgrind_signal.sh RENDEZVOUSD [off|on] [WINDOW]
#
# Runs RENDEZVOUSD under `valgrind --tool=callgrind` twice, each time for a
# whole loadgen_signal run (100 pairs; N1 then N2 measured messages, the
# same warm-up), and prints (Ir(N2) - Ir(N1)) / (N2 - N1): the instructions
# the server executes per routed offer, start-up, handshakes and the idle
# loop cancelled out. Worker threads (--verify-threads) are counted too
# (callgrind follows every thread of the process). A run that did not
# deliver every message without an error (under callgrind the server is
# ~50x slower: offers signed before a run stay fresh for ~50 s, so keep N2
# small on a busy machine) makes the figure INVALID and the exit status 1.
# Knobs: N1 (1000), N2 (5000), PORT (18780), GEN (build/perf-gen), OUT (a
# new /tmp dir), RDV_FLAGS (extra server flags), KEEP=1 keeps the
# callgrind.out files.
set -eu
RDVD=${1:?usage: callgrind_signal.sh RENDEZVOUSD [off|on] [WINDOW]}
VERIFY=${2:-off}
WINDOW=${3:-10}
N1=${N1:-1000}
N2=${N2:-5000}
PORT=${PORT:-18780}
HERE=$(cd "$(dirname "$0")" && pwd)
GEN=${GEN:-$HERE/../build/perf-gen}
OUT=${OUT:-$(mktemp -d /tmp/rdv-cg.XXXXXX)}
mkdir -p "$OUT"
RDV_FLAGS=${RDV_FLAGS:-}

run_one() { # N -> prints total Ir of the server process
    n=$1
    rm -f "$OUT/rdv.db"* "$OUT/cg.out.$n"
    # shellcheck disable=SC2086 # RDV_FLAGS is a list of flags
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out.$n" \
        "$RDVD" --port "$PORT" --db "$OUT/rdv.db" --name bench --verify-signatures "$VERIFY" \
        --rate 1000000 --burst 1000000 --max-connections-per-ip 0 --max-handshakes-per-ip 0 \
        --stun off --log-level warn $RDV_FLAGS >"$OUT/rdv.$n.log" 2>&1 &
    pid=$!
    i=0
    while ! ss -Htln "sport = :$PORT" | grep -q . && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
    done
    "$GEN/loadgen_signal" --proto rdv --port "$PORT" --name bench --pairs 100 \
        --messages "$n" --warmup 500 --window "$WINDOW" --timeout 300 --quiet \
        >"$OUT/gen.$n.txt" 2>"$OUT/gen.$n.err" || true
    kill -TERM "$pid"
    wait "$pid" || true
    if ! grep -q "status=ok.* errors=0 " "$OUT/gen.$n.txt"; then
        echo "run $n: not every message delivered without error (see $OUT)" >&2
        echo INVALID
        return
    fi
    awk '/^summary:/ {print $2}' "$OUT/cg.out.$n"
}

ir1=$(run_one "$N1")
ir2=$(run_one "$N2")
rc=0
if [ "$ir1" = INVALID ] || [ "$ir2" = INVALID ]; then
    per=INVALID
    rc=1
else
    per=$(echo "$ir1 $ir2 $N1 $N2" | awk '{printf "%.0f", ($2 - $1) / ($4 - $3)}')
fi
echo "CALLGRIND server=$RDVD verify=$VERIFY window=$WINDOW n1=$N1 ir1=$ir1 n2=$N2 ir2=$ir2 ir_per_msg=$per out=$OUT"
[ "${KEEP:-0}" = 1 ] || rm -f "$OUT"/cg.out.*
exit $rc
