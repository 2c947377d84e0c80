#!/bin/sh
# test_failover_client.sh SERVERD RDV - a node of the real client library
# given the URLs of both instances of a cluster (repeated --url) fails over
# when its instance drains (SIGTERM with --drain-window): it is back,
# authenticated on the other instance, within seconds, and a peer's offer
# reaches it there. A wrong URL among them is skipped the same way. Also:
# RENDEZVOUS_URL takes a comma-separated list.
set -u
SERVERD=$1; RDV=$2
TEST=failover
. "$(dirname "$0")/cluster_lib.sh"
start_redis
p1=$(start_instance i1 --drain-window 500); p2=$(start_instance i2 --drain-window 500)
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
finish cluster_failover_client listen.err offer.err i1.log i2.log
