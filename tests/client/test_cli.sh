#!/bin/sh
# test_cli.sh RDV - rdv keygen / id: file mode, node ID agreement, refusals.
set -u
RDV=$1
dir=$(mktemp -d /tmp/rdv-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass=0; fail=0
check() { # check NAME CONDITION...
  name=$1; shift
  if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $name"; fi
}
key=$dir/node.key
id1=$("$RDV" keygen --key "$key" 2>/dev/null)
check "keygen prints a node id" sh -c "echo '$id1' | grep -Eq '^[0-9a-f]{64}$'"
check "key file is 0600" test "$(stat -c %a "$key")" = 600
id2=$("$RDV" id --key "$key")
check "id matches keygen" test "$id1" = "$id2"
id3=$(RENDEZVOUS_KEY=$key "$RDV" id)
check "RENDEZVOUS_KEY is used" test "$id1" = "$id3"
json=$("$RDV" id --key "$key" --json)
check "id --json" sh -c "echo '$json' | grep -q '\"nodeID\":\"$id1\"'"
"$RDV" keygen --key "$key" >/dev/null 2>&1; rc=$?
check "keygen refuses to overwrite" test "$rc" = 1
check "key unchanged after refusal" test "$("$RDV" id --key "$key")" = "$id1"
chmod 644 "$key"
"$RDV" id --key "$key" >/dev/null 2>"$dir/err"; rc=$?
check "readable key refused" test "$rc" = 1
check "refusal explains" grep -q "chmod 600" "$dir/err"
"$RDV" frobnicate >/dev/null 2>&1; rc=$?
check "unknown command is a usage error" test "$rc" = 2
check "--help" sh -c "'$RDV' --help | grep -q keygen"
echo "client_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
