#!/bin/sh
# callgrind_handshake.sh - instructions per authenticated handshake in
# rendezvousd (issue 15, goal 4), a figure that other load on the machine
# does not change.
#
#   bench/callgrind_handshake.sh RENDEZVOUSD
#
# Runs RENDEZVOUSD (default flags, verification on; rate and per-IP caps
# lifted) under `valgrind --tool=callgrind` twice, each time for a whole
# loadgen_idle run: N1 then N2 nodes connect (TCP, WebSocket upgrade,
# challenge, signed hello, welcome, presence online), at most INFLIGHT at
# a time, and all disconnect when the last is ready (presence offline);
# then the server is stopped. Prints (Ir(N2) - Ir(N1)) / (N2 - N1): the
# instructions of one connect + authenticate + disconnect, start-up and
# shutdown cancelled out, every thread counted (the hello's Ed25519
# verify runs on a --verify-threads worker). User space only: the
# kernel's accept / recv / send / poll are not in it. With PROFILE=1 it
# also prints the functions whose self cost grew most per handshake
# (callgrind_annotate of both runs, subtracted). A run in which not every
# node got its welcome makes the figure INVALID and the exit status 1.
# Knobs: N1 (300), N2 (1500), INFLIGHT (20), PORT (18781), GEN
# (build-bench-gen), OUT (a new /tmp dir), RDV_FLAGS (extra server flags,
# e.g. "--event-loop uv"), KEEP=1 keeps the callgrind.out files.
set -eu
RDVD=${1:?usage: callgrind_handshake.sh RENDEZVOUSD}
N1=${N1:-300}
N2=${N2:-1500}
INFLIGHT=${INFLIGHT:-20}
PORT=${PORT:-18781}
HERE=$(cd "$(dirname "$0")" && pwd)
GEN=${GEN:-$HERE/../build-bench-gen}
OUT=${OUT:-$(mktemp -d /tmp/rdv-cgh.XXXXXX)}
mkdir -p "$OUT"
RDV_FLAGS=${RDV_FLAGS:-}

run_one() { # N -> prints total Ir of the server process
    n=$1
    rm -f "$OUT/rdv.db"* "$OUT/cg.out.$n"
    # shellcheck disable=SC2086 # RDV_FLAGS is a list of flags
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out.$n" \
        "$RDVD" --port "$PORT" --db "$OUT/rdv.db" --name bench --operator-listen off \
        --rate 1000000 --burst 1000000 --max-connections-per-ip 0 --max-handshakes-per-ip 0 \
        --stun off --log-level warn $RDV_FLAGS >"$OUT/rdv.$n.log" 2>&1 &
    pid=$!
    i=0
    while ! ss -Htln "sport = :$PORT" | grep -q . && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
    done
    "$GEN/loadgen_idle" --proto rdv --port "$PORT" --name bench --conns "$n" \
        --inflight "$INFLIGHT" --family 7 --hold 0 --timeout 600 --quiet \
        >"$OUT/gen.$n.txt" 2>"$OUT/gen.$n.err" || true
    # let the server see every close before it stops
    i=0
    while ss -Htn state established "( sport = :$PORT )" | grep -q . && [ $i -lt 600 ]; do
        sleep 0.1; i=$((i + 1))
    done
    kill -TERM "$pid"
    wait "$pid" || true
    if ! grep -q "ready=$n failed=0 .*status=ok" "$OUT/gen.$n.txt"; then
        echo "run $n: not every node authenticated (see $OUT)" >&2
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
echo "CALLGRIND_HANDSHAKE server=$RDVD n1=$N1 ir1=$ir1 n2=$N2 ir2=$ir2 ir_per_handshake=$per flags=$RDV_FLAGS out=$OUT"
if [ "${PROFILE:-0}" = 1 ] && [ $rc = 0 ]; then
    # self cost per function, N2 run minus N1 run, per handshake: the top 30
    for n in "$N1" "$N2"; do
        callgrind_annotate --auto=no --threshold=100 --inclusive=no "$OUT/cg.out.$n" 2>/dev/null |
            awk '/^ *[0-9,]+ \( *[0-9.]+%\) +[^ ]/ {v = $1; gsub(",", "", v); l = $0
                sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, "", l); print v "\t" l}' >"$OUT/fn.$n.txt"
    done
    echo "self instructions per handshake (N2 run - N1 run) / (N2 - N1), the top 30:"
    awk -F'\t' -v n1="$N1" -v n2="$N2" -v tot="$per" 'NR == FNR {a[$2] = $1; next}
        $2 != "PROGRAM TOTALS" {d = ($1 - a[$2]) / (n2 - n1); if (d > 0) printf "%9.0f %5.1f%%  %s\n", d, 100 * d / tot, $2}' \
        "$OUT/fn.$N1.txt" "$OUT/fn.$N2.txt" | sort -rn | head -30
fi
[ "${KEEP:-0}" = 1 ] || rm -f "$OUT"/cg.out.*
exit $rc
