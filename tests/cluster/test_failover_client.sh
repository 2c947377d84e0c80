#!/bin/sh
# test_failover_client.sh SERVERD RDV - a node of the real client library
# given the URLs of both instances of a cluster (repeated --url) fails over
# when its instance drains (SIGTERM with --drain-window): it is back,
# authenticated on the other instance, within seconds, and a peer's offer
# reaches it there. A wrong URL among them is skipped the same way. Also:
# RENDEZVOUS_URL takes a comma-separated list.
set -u
SERVERD=$1; RDV=$2
command -v redis-server >/dev/null 2>&1 || { echo "FAIL: redis-server not installed (scripts/bootstrap --test)"; exit 1; }
dir=$(mktemp -d /tmp/rdv-failover-XXXXXX)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; sleep 0.2; rm -rf "$dir"; }
trap cleanup EXIT
pass=0; fail=0
check() { name=$1; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $name"; fi; }
show() { echo "----- $1"; tail -30 "$1" 2>/dev/null; }
wait_grep() { # wait_grep PATTERN FILE TENTHS
  i=0; while [ $i -lt "$3" ]; do grep -q "$1" "$2" 2>/dev/null && return 0; sleep 0.1; i=$((i+1)); done; return 1
}

redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no --dir "$dir" \
  >"$dir/redis.log" 2>&1 &
pids="$pids $!"
for i in $(seq 50); do [ -S "$dir/redis.sock" ] && break; sleep 0.1; done
start() {
  "$SERVERD" --listen 127.0.0.1 --port 0 --stun-port 0 --redis "unix://$dir/redis.sock" \
    --drain-window 500 >"$dir/$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
  for i in $(seq 100); do
    p=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/$1.log" 2>/dev/null | sed 's/.*://')
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.05
  done
}
p1=$(start i1); p2=$(start i2)
pids="$pids $(cat "$dir/i1.pid") $(cat "$dir/i2.pid")"
check "instances up" test -n "$p1" -a -n "$p2"
U1="ws://127.0.0.1:$p1/v1"; U2="ws://127.0.0.1:$p2/v1"
A=$("$RDV" keygen --key "$dir/a.key" 2>/dev/null)
B=$("$RDV" keygen --key "$dir/b.key" 2>/dev/null)

"$RDV" listen --key "$dir/b.key" --url "$U1" --url "$U2" --no-stun --json --count 1 \
  --timeout 30000 >"$dir/listen.out" 2>"$dir/listen.err" &
lpid=$!; pids="$pids $lpid"
first=""
for i in $(seq 100); do
  grep -q "node $B authenticated" "$dir/i1.log" 2>/dev/null && { first=i1; other=i2; break; }
  grep -q "node $B authenticated" "$dir/i2.log" 2>/dev/null && { first=i2; other=i1; break; }
  sleep 0.1
done
check "B authenticated on one instance" test -n "$first"
[ -n "$first" ] || { first=i1; other=i2; }
kill -TERM "$(cat "$dir/$first.pid")"
check "B back on the other instance within 5 s" wait_grep "node $B authenticated" "$dir/$other.log" 50
# A reaches B through the instance left (a list with a dead URL first:
# RENDEZVOUS_URL, comma-separated)
if [ "$other" = i1 ]; then left=$U1; dead=$U2; else left=$U2; dead=$U1; fi
RENDEZVOUS_URL="$dead,$left" "$RDV" offer --key "$dir/a.key" --no-stun --json "$B" \
  >"$dir/offer.out" 2>"$dir/offer.err"
check "offer answered after failover" grep -q "\"event\":\"answer\",\"fromNodeID\":\"$B\"" "$dir/offer.out"
wait "$lpid"; lrc=$?
check "listen got the offer" test "$lrc" = 0
check "drained instance stopped cleanly" wait_grep "NOTICE stopped" "$dir/$first.log" 50
if [ "$fail" -ne 0 ]; then
  for f in listen.err offer.err i1.log i2.log; do show "$dir/$f"; done
fi
echo "cluster_failover_client: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
