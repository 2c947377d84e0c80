#!/bin/sh
# test_rdvctl.sh SERVERD RDVCTL RDV - admission_rdvctl: rdvctl against a
# real rendezvousd's admin API, end to end. A node connected with `rdv
# listen` is listed (text and --json), looked up, allowlisted, revoked
# (its connection closes) and unrevoked; the audit log shows each change
# with the token's name. Refusals: no token (status 2), a wrong token
# (status 1, "unauthorized"), a node that is not connected (1), a server
# that is not there (1), bad usage (2).
set -u
SERVERD=$1 RDVCTL=$2 RDV=$3
dir=$(mktemp -d /tmp/rdv-rdvctl-XXXXXX)
spid="" lpid=""
trap '[ -n "$lpid" ] && kill $lpid 2>/dev/null; [ -n "$spid" ] && kill $spid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
fail=0
check() { # check NAME COMMAND...
  name=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ok: $name"; else echo "FAIL: $name"; fail=$((fail + 1)); fi
}
token=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
printf '# operators\nops-alice %s\n' "$token" >"$dir/admin.token"
chmod 600 "$dir/admin.token"
"$SERVERD" --listen 127.0.0.1 --port 0 --stun-port 0 --operator-listen 127.0.0.1:0 \
  --db "$dir/r.db" --admin-token-file "$dir/admin.token" >"$dir/server.log" 2>&1 &
spid=$!
port="" op=""
for i in $(seq 200); do
  port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/server.log" | sed 's/.*://')
  op=$(grep -o 'operator on http://127.0.0.1:[0-9]*' "$dir/server.log" | sed 's/.*://')
  [ -n "$port" ] && [ -n "$op" ] && break
  sleep 0.05
done
[ -n "$port" ] && [ -n "$op" ] || { echo "FAIL: server did not start"; cat "$dir/server.log"; exit 1; }
grep -q "admin API on" "$dir/server.log" || { echo "FAIL: ready line lacks 'admin API on'"; fail=$((fail + 1)); }
export RDVCTL_URL="http://127.0.0.1:$op"
ctl() { "$RDVCTL" --token-file "$dir/admin.token" "$@"; }

"$RDV" keygen --key "$dir/a.key" >/dev/null 2>&1
id=$("$RDV" id --key "$dir/a.key")
"$RDV" listen --key "$dir/a.key" --url "ws://127.0.0.1:$port/v1" >"$dir/listen.out" 2>&1 &
lpid=$!
for i in $(seq 100); do
  ctl nodes --json >"$dir/nodes.json" 2>&1 && grep -q "$id" "$dir/nodes.json" && break
  sleep 0.1
done
check "nodes --json lists the node" grep -q "\"nodeID\":\"$id\"" "$dir/nodes.json"
check "nodes --json: observed address" grep -q '"observedAddress":"127.0.0.1:[0-9]*"' "$dir/nodes.json"
ctl nodes >"$dir/nodes.txt" 2>&1
check "nodes (text): one node" grep -q "^1 node(s) connected" "$dir/nodes.txt"
check "nodes (text): the node's line" grep -q "^$id .*127.0.0.1:" "$dir/nodes.txt"
check "node ID" ctl node "$id"
ctl node "$id" --json >"$dir/node.json" 2>&1
check "node ID --json" grep -q "\"connectedSince\":[0-9]" "$dir/node.json"

check "allow" ctl allow "$id"
ctl allowlist >"$dir/allow.txt" 2>&1
check "allowlist shows it" grep -q "^$id  added " "$dir/allow.txt"
ctl allow "$id" >"$dir/allow2.txt" 2>&1
check "allow twice: unchanged" grep -q "unchanged" "$dir/allow2.txt"
check "disallow" ctl disallow "$id"

ctl revoke "$id" >"$dir/revoke.txt" 2>&1
check "revoke: closes the live node" grep -q "revoke $id: ok (1 connection(s) closed)" "$dir/revoke.txt"
ctl revoked --json >"$dir/revoked.json" 2>&1
check "revoked lists it" grep -q "$id" "$dir/revoked.json"
check "unrevoke" ctl unrevoke "$id"

ctl audit --limit 10 >"$dir/audit.txt" 2>&1
check "audit: who and what" grep -q "ops-alice from 127.0.0.1:[0-9]*: revoke $id -> ok" "$dir/audit.txt"
check "audit: newest first" sh -c "head -1 '$dir/audit.txt' | grep -q unrevoke"
n=$(ctl audit --json | grep -o '"action"' | wc -l)
check "audit: 5 changes" test "$n" -eq 5

# refusals
RENDEZVOUS_ADMIN_TOKEN="" "$RDVCTL" nodes >"$dir/e1" 2>&1; rc=$?
check "no token: status 2" test $rc -eq 2
check "no token: says so" grep -q "no token" "$dir/e1"
RENDEZVOUS_ADMIN_TOKEN=0000000000000000000000000000 "$RDVCTL" nodes >"$dir/e2" 2>&1; rc=$?
check "wrong token: status 1" test $rc -eq 1
check "wrong token: unauthorized" grep -q "unauthorized" "$dir/e2"
ctl node 0000000000000000000000000000000000000000000000000000000000000001 >"$dir/e3" 2>&1; rc=$?
check "node not connected: status 1" test $rc -eq 1
ctl --url http://127.0.0.1:1 nodes >"$dir/e4" 2>&1; rc=$?
check "no server: status 1" test $rc -eq 1
ctl frobnicate >"$dir/e5" 2>&1; rc=$?
check "unknown command: status 2" test $rc -eq 2
ctl revoke >"$dir/e6" 2>&1; rc=$?
check "revoke without ID: status 2" test $rc -eq 2
check "--help" sh -c "'$RDVCTL' --help | grep -q 'Usage: rdvctl'"

kill $lpid 2>/dev/null; wait $lpid 2>/dev/null; lpid=""
kill $spid; wait $spid; src=$?
check "server exit 0" test $src -eq 0
if grep -q "Sanitizer\|runtime error" "$dir/server.log"; then echo "FAIL: sanitizer report"; cat "$dir/server.log"; fail=$((fail + 1)); fi
if [ $fail -ne 0 ]; then echo "--- server log"; tail -30 "$dir/server.log"; echo "$fail check(s) failed"; exit 1; fi
echo PASS
