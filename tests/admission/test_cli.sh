#!/bin/sh
# test_cli.sh RDV RENDEZVOUSD - the README "Admitting your fleet" steps with
# the real tools: rdv fleet keygen (secret key 0600, public key file), rdv
# fleet sign (a certificate for a node; a key others may read, a bad node
# ID, a bad group refused), rendezvousd --admission fleet --fleet-key
# "$(cat fleet.pub)", rdv lookup with --cert / RENDEZVOUS_CERT admitted,
# without it refused as not_admitted with the reason.
set -u
RDV=$1
SRV=$2
dir=$(mktemp -d /tmp/rdv-adm-cli-XXXXXX)
srv_pid=
cleanup() {
  [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
pass=0; fail=0
check() { # check NAME CONDITION...
  name=$1; shift
  if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $name"; fi
}
cd "$dir" || exit 1
pub=$("$RDV" fleet keygen 2>/dev/null)
check "keygen prints the public key" sh -c "echo '$pub' | grep -Eq '^[0-9a-f]{64}$'"
check "fleet.key is 0600" test "$(stat -c %a fleet.key)" = 600
check "fleet.pub holds the public key" test "$(cat fleet.pub)" = "$pub"
"$RDV" fleet keygen >/dev/null 2>&1; rc=$?
check "keygen refuses to overwrite" test "$rc" = 1
"$RDV" keygen --key alice.key >/dev/null 2>&1
"$RDV" keygen --key bob.key >/dev/null 2>&1
alice=$("$RDV" id --key alice.key)
bob=$("$RDV" id --key bob.key)
"$RDV" fleet sign "$alice" --expires 90d --group relay --out alice.cert 2>/dev/null; rc=$?
check "sign alice" test "$rc" = 0
check "certificate names alice, the key and the group" sh -c \
  "grep -q '\"nodeID\": \"$alice\"' alice.cert && grep -q '\"fleetKey\": \"$pub\"' alice.cert && grep -q relay alice.cert"
"$RDV" fleet sign not-a-node >/dev/null 2>err; rc=$?
check "a bad node ID is a usage error" test "$rc" = 2
"$RDV" fleet sign "$alice" --group "no spaces" >/dev/null 2>&1; rc=$?
check "a bad group is a usage error" test "$rc" = 2
chmod 644 fleet.key
"$RDV" fleet sign "$alice" >/dev/null 2>err; rc=$?
check "a fleet key others may read is refused" test "$rc" = 1
check "the refusal says chmod 600" grep -q "chmod 600" err
chmod 600 fleet.key

"$SRV" --port 0 --stun off --operator-listen off --db ./r.db --admission fleet \
  --fleet-key "$(cat fleet.pub)" >srv.log 2>&1 &
srv_pid=$!
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
  port=$(sed -n 's|.*listening on ws://127.0.0.1:\([0-9]*\)/v1.*|\1|p' srv.log | head -1)
  [ -z "$port" ] && sleep 0.1
  i=$((i+1))
done
check "server started in fleet mode" test -n "$port"
url=ws://127.0.0.1:$port/v1
"$RDV" lookup --url "$url" --key alice.key --cert alice.cert --no-stun --timeout 10000 \
  "$alice" >out 2>&1; rc=$?
check "alice with --cert is admitted" test "$rc" = 0
check "alice sees herself online" grep -q "$alice online" out
"$RDV" fleet sign "$bob" --out bob.cert 2>/dev/null
RENDEZVOUS_CERT=bob.cert "$RDV" lookup --url "$url" --key bob.key --no-stun --timeout 10000 \
  "$alice" >out 2>&1; rc=$?
check "bob with RENDEZVOUS_CERT is admitted" test "$rc" = 0
"$RDV" lookup --url "$url" --key bob.key --no-stun --timeout 2000 "$alice" >out 2>&1; rc=$?
check "bob without a certificate fails" test "$rc" = 1
check "and is told why" grep -q "sent no fleet certificate.*not_admitted" out
"$RDV" lookup --url "$url" --key bob.key --cert alice.cert --no-stun --timeout 2000 \
  "$alice" >out 2>&1; rc=$?
check "alice's certificate is refused for bob" test "$rc" = 1
check "the server logged the groups" grep -q "certificate .*, groups \[relay\]" srv.log
echo "admission_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
