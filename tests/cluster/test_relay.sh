#!/bin/sh
# test_relay.sh SERVERD RDV - the relay of last resort across instances,
# with the real client library: `rdv relay --accept` (B) on instance 2 and
# `rdv relay` (A) on instance 1 of a cluster sharing one redis-server pipe
# a 200 kB file A -> B and a text B -> A through one end-to-end encrypted
# relay session, both intact. The frames cross instances through Redis
# (seen in redis-cli MONITOR), and a marker line of the plaintext never
# appears there: Redis and both servers carry ciphertext only.
set -u
SERVERD=$1; RDV=$2
command -v redis-server >/dev/null 2>&1 || { echo "FAIL: redis-server not installed (scripts/bootstrap --test)"; exit 1; }
dir=$(mktemp -d /tmp/rdv-cluster-relay-XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  sleep 0.2
  [ "${RDV_KEEP_TMP:-0}" = 1 ] && echo "kept $dir" || rm -rf "$dir"
}
trap cleanup EXIT
pass=0; fail=0
check() { name=$1; shift; if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $name"; fi; }
show() { echo "----- $1"; cat "$1" 2>/dev/null | head -50; }

redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no --dir "$dir" \
  >"$dir/redis.log" 2>&1 &
pids="$pids $!"
for i in $(seq 50); do [ -S "$dir/redis.sock" ] && break; sleep 0.1; done
start() {
  "$SERVERD" --listen 127.0.0.1 --port 0 --stun-port 0 --redis "unix://$dir/redis.sock" \
    >"$dir/$1.log" 2>&1 &
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
marker="plaintext-marker-$(date +%s)-never-in-redis"
{ echo "$marker"; head -c 200000 /dev/urandom; echo; echo "$marker"; } >"$dir/fileA"
printf 'hello A, this is B on instance 2\n' >"$dir/fileB"

redis-cli -s "$dir/redis.sock" monitor >"$dir/monitor.log" 2>&1 &
mpid=$!; pids="$pids $mpid"
"$RDV" relay --accept --key "$dir/b.key" --url "$U2" --no-stun --wait -1 "$A" \
  <"$dir/fileB" >"$dir/outB" 2>"$dir/errB" &
bpid=$!; pids="$pids $bpid"
online=no
for i in $(seq 50); do
  "$RDV" lookup --key "$dir/w.key" --url "$U1" --no-stun "$B" 2>/dev/null | grep -q " online" && { online=yes; break; }
  [ -f "$dir/w.key" ] || "$RDV" keygen --key "$dir/w.key" >/dev/null 2>&1
  sleep 0.1
done
check "B on instance 2 seen online from instance 1" test "$online" = yes
"$RDV" relay --key "$dir/a.key" --url "$U1" --no-stun --wait 5000 "$B" \
  <"$dir/fileA" >"$dir/outA" 2>"$dir/errA"
arc=$?
wait $bpid; brc=$?
kill $mpid 2>/dev/null
check "relay opener rc 0" test $arc -eq 0
check "relay acceptor rc 0" test $brc -eq 0
check "A->B intact across instances" cmp -s "$dir/fileA" "$dir/outB"
check "B->A intact across instances" cmp -s "$dir/fileB" "$dir/outA"
check "A on instance 1" grep -q "node $A authenticated" "$dir/i1.log"
check "B on instance 2" grep -q "node $B authenticated" "$dir/i2.log"
check "frames crossed through Redis" grep -q '"PUBLISH" "rdv:i:[0-9a-f]*" "R d\|"PUBLISH" "rdv:i:[0-9a-f]*" "R b' "$dir/monitor.log"
check "no plaintext in Redis" sh -c "! grep -q '$marker' '$dir/monitor.log'"
if [ "$fail" -ne 0 ]; then
  for f in errA errB i1.log i2.log; do show "$dir/$f"; done
  grep -c PUBLISH "$dir/monitor.log"
fi
echo "cluster_relay: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
