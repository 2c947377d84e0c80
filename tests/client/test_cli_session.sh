#!/bin/sh
# test_cli_session.sh RDV RENDEZVOUSD - client_cli_session: the network
# commands of rdv against a real rendezvousd on loopback: lookup (text and
# --json), watch (presence + online/offline pushes), the offer/listen
# two-terminal demo (signed offer answered and verified both ways),
# RENDEZVOUS_URL / RENDEZVOUS_KEY, usage errors, an unreachable server.
set -u
RDV=$1
SERVERD=$2
dir=$(mktemp -d /tmp/rdv-cli-session-XXXXXX)
spid=""
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  if [ "${RDV_KEEP_TMP:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
pass=0; fail=0
check() { # check NAME CONDITION...
  name=$1; shift
  if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $name"; fi
}
show() { echo "--- $1"; cat "$1"; }

"$SERVERD" --listen 127.0.0.1 --port 0 --db "$dir/r.db" >"$dir/server.log" 2>&1 &
spid=$!
port=""
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
  port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/server.log" 2>/dev/null | sed 's/.*://')
  [ -z "$port" ] && sleep 0.1
  i=$((i+1))
done
if [ -z "$port" ]; then echo "server did not start"; show "$dir/server.log"; exit 1; fi
export RENDEZVOUS_URL="ws://127.0.0.1:$port/v1"

A=$("$RDV" keygen --key "$dir/a.key" 2>/dev/null)
B=$("$RDV" keygen --key "$dir/b.key" 2>/dev/null)
"$RDV" keygen --key "$dir/w.key" >/dev/null 2>&1   # the watcher: its own identity

# lookup: B never seen; A itself online (its own connection).
out=$("$RDV" lookup --key "$dir/a.key" "$B"); rc=$?
check "lookup rc" test "$rc" = 0
check "lookup text" sh -c "echo '$out' | grep -q '^$B offline nat=unknown lastSeen=never$'"
out=$(RENDEZVOUS_KEY="$dir/a.key" "$RDV" lookup --json "$B" "$A"); rc=$?
check "lookup --json rc" test "$rc" = 0
check "lookup --json B" sh -c "echo '$out' | grep -q '\"nodeID\":\"$B\",\"online\":false'"
check "lookup --json A" sh -c "echo '$out' | grep -q '\"nodeID\":\"$A\",\"online\":true'"

# watch B from W (presence, then online and offline), listen as B. (One
# identity, one connection: a second rdv with the same key replaces it.)
"$RDV" watch --key "$dir/w.key" --json --count 2 --timeout 20000 "$B" >"$dir/watch.out" 2>"$dir/watch.err" &
wpid=$!
sleep 0.5
"$RDV" listen --key "$dir/b.key" --json --count 1 --timeout 20000 --local-port 51820 \
  --nat portRestricted >"$dir/listen.out" 2>"$dir/listen.err" &
lpid=$!
i=0
while [ $i -lt 50 ]; do
  "$RDV" lookup --key "$dir/a.key" "$B" 2>/dev/null | grep -q " online " && break
  sleep 0.1; i=$((i+1))
done
out=$("$RDV" offer --key "$dir/a.key" --json --local-ip 10.0.0.5 --local-port 4242 \
  --nat symmetric "$B" 2>"$dir/offer.err"); rc=$?
check "offer rc" test "$rc" = 0
check "offer prints the answer" sh -c "echo '$out' | grep -q '\"event\":\"answer\",\"fromNodeID\":\"$B\"'"
check "answer carries B's info" sh -c "echo '$out' | grep -q '\"localPort\":51820,\"natType\":\"portRestricted\"'"
wait "$lpid"; lrc=$?
check "listen rc" test "$lrc" = 0
check "listen got the offer" grep -q "\"event\":\"offer\",\"fromNodeID\":\"$A\"" "$dir/listen.out"
check "offer carries A's info" grep -q '"localIP":"10.0.0.5","localPort":4242,"natType":"symmetric"' "$dir/listen.out"
wait "$wpid"; wrc=$?
check "watch rc" test "$wrc" = 0
check "watch presence" grep -q "\"event\":\"presence\",\"nodeID\":\"$B\"" "$dir/watch.out"
check "watch online" grep -q "\"event\":\"online\",\"nodeID\":\"$B\",\"online\":true,.*\"natType\":\"portRestricted\"" "$dir/watch.out"
check "watch offline" grep -q "\"event\":\"offline\",\"nodeID\":\"$B\",\"online\":false" "$dir/watch.out"

# Usage errors, help, an unreachable server.
"$RDV" lookup --key "$dir/a.key" nothex >/dev/null 2>&1; rc=$?
check "bad node id is a usage error" test "$rc" = 2
"$RDV" offer --key "$dir/a.key" >/dev/null 2>&1; rc=$?
check "offer needs an id" test "$rc" = 2
for c in lookup watch offer listen keygen id; do
  check "$c --help" sh -c "'$RDV' $c --help | grep -q 'usage: rdv $c'"
done
free=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
out=$("$RDV" lookup --key "$dir/a.key" --url "ws://127.0.0.1:$free/v1" "$B" 2>&1); rc=$?
check "unreachable server fails" test "$rc" = 1
check "unreachable server explained" sh -c "echo '$out' | grep -q 'cannot reach the server'"

if [ "$fail" -ne 0 ]; then
  for f in watch.out watch.err listen.out listen.err offer.err server.log; do show "$dir/$f"; done
fi
echo "client_cli_session: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
