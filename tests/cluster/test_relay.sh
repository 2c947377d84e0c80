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
TEST=cluster-relay
. "$(dirname "$0")/cluster_lib.sh"
start_redis
p1=$(start_instance i1); p2=$(start_instance i2)
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
[ "$fail" -ne 0 ] && grep -c PUBLISH "$dir/monitor.log"
finish cluster_relay errA errB i1.log i2.log
