#!/bin/sh
# test_cli_relay.sh RDV RENDEZVOUSD - client_cli_relay: the relay commands
# of rdv against a real rendezvousd on loopback:
#   - `rdv relay` pipes: a 200 kB file A -> B and a text B -> A through one
#     encrypted relay session (`rdv relay --accept` on B), both intact;
#   - `rdv proxy` on both sides carries UDP datagrams both ways between two
#     local UDP sockets (python3), while `rdv network status` shows the
#     running proxy's status file (active relays 1, Relayed) without
#     connecting; after the proxies stop, a live status keeps "Relayed";
#   - `rdv relay` to an offline node fails (status 1); --help of each.
set -u
RDV=$1
SERVERD=$2
PY=${PYTHON:-python3}
dir=$(mktemp -d /tmp/rdv-cli-relay-XXXXXX)
spid=""; pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
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
"$RDV" keygen --key "$dir/w.key" >/dev/null 2>&1

# --help of the new commands.
for c in relay proxy network; do
  "$RDV" $c --help >"$dir/help" 2>&1
  check "$c --help" grep -q "usage: rdv $c" "$dir/help"
done
"$RDV" network status --help >"$dir/help" 2>&1
check "network status --help" grep -q "last relay error" "$dir/help"

# Waits until node $1 is online (as seen by the watcher key).
wait_online() {
  j=0
  while [ $j -lt 100 ]; do
    if "$RDV" lookup --key "$dir/w.key" "$1" 2>/dev/null | grep -q " online"; then return 0; fi
    sleep 0.1; j=$((j+1))
  done
  return 1
}

# network status, live, before any relay.
"$RDV" network status --key "$dir/a.key" --json >"$dir/ns0" 2>"$dir/ns0.err"
check "status live rc" test $? -eq 0
check "status live traversal Unknown" grep -q '"lastTraversal":"Unknown"' "$dir/ns0"
check "status live relay available" grep -q '"relayAvailable":true' "$dir/ns0"
check "status live endpoint" grep -q '"publicEndpoint":"127.0.0.1:' "$dir/ns0"
check "status live nat unknown" grep -q '"natType":"unknown"' "$dir/ns0"

# ---- rdv relay: pipes both ways ----
head -c 200000 /dev/urandom >"$dir/fileA"
printf 'hello A, this is B\nsecond line\n' >"$dir/fileB"
"$RDV" relay --accept --key "$dir/b.key" --wait -1 "$A" <"$dir/fileB" >"$dir/outB" 2>"$dir/errB" &
bpid=$!; pids="$pids $bpid"
check "B online" wait_online "$B"
"$RDV" relay --key "$dir/a.key" --wait 3000 "$B" <"$dir/fileA" >"$dir/outA" 2>"$dir/errA"
arc=$?
wait $bpid; brc=$?
check "relay opener rc 0" test $arc -eq 0
check "relay acceptor rc 0" test $brc -eq 0
check "A->B intact" cmp -s "$dir/fileA" "$dir/outB"
check "B->A intact" cmp -s "$dir/fileB" "$dir/outA"
if [ $fail -gt 0 ]; then show "$dir/errA"; show "$dir/errB"; ls -l "$dir"; fi
# The opener's status file remembers the traversal.
check "status file written" grep -q "last_traversal=Relayed" "$dir/a.key.status"

# ---- rdv proxy: UDP both ways ----
cat >"$dir/udp.py" <<'EOF'
import socket, sys
pa, pb_app = int(sys.argv[1]), int(sys.argv[2])
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", 0)); a.settimeout(5)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", pb_app)); b.settimeout(5)
for i in range(10):
    m = ("ping %d " % i).encode() * 20
    for attempt in range(50):   # the session may still be opening
        a.sendto(m, ("127.0.0.1", pa))
        try:
            got, src = b.recvfrom(4096)
            break
        except socket.timeout:
            continue
    else:
        sys.exit("no datagram through the proxy")
    assert got == m, got
    b.sendto(b"pong %d" % i, src)
    got, _ = a.recvfrom(4096)
    assert got == b"pong %d" % i, got
print("udp ok")
EOF
PA=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PB=$($PY -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RDV" proxy --accept --key "$dir/b.key" --forward "127.0.0.1:$PB" --json >"$dir/pB" 2>"$dir/pBerr" &
pb=$!; pids="$pids $pb"
check "B online (proxy)" wait_online "$B"
"$RDV" proxy --key "$dir/a.key" "$B" --listen "127.0.0.1:$PA" --json >"$dir/pA" 2>"$dir/pAerr" &
pa=$!; pids="$pids $pa"
j=0
while [ $j -lt 100 ] && ! grep -q '"event":"proxy"' "$dir/pA" 2>/dev/null; do sleep 0.1; j=$((j+1)); done
check "proxy A up" grep -q "\"port\":$PA" "$dir/pA"
$PY "$dir/udp.py" "$PA" "$PB" >"$dir/udp.out" 2>&1
check "udp through proxies" grep -q "udp ok" "$dir/udp.out"
sleep 2.5   # the status file is refreshed every 2 s
"$RDV" network status --key "$dir/a.key" --json >"$dir/ns1" 2>&1
check "status from running proxy" grep -q '"source":"rdv proxy, pid' "$dir/ns1"
check "status active relays 1" grep -q '"activeRelays":1' "$dir/ns1"
check "status traversal Relayed" grep -q '"lastTraversal":"Relayed"' "$dir/ns1"
"$RDV" network status --key "$dir/a.key" >"$dir/ns1.txt" 2>&1
check "status text" grep -q "Active relays: *1" "$dir/ns1.txt"
check "proxy A still running" kill -0 $pa
kill -TERM $pa; wait $pa; parc=$?
kill -TERM $pb; wait $pb; pbrc=$?
check "proxy A exit 0" test $parc -eq 0
check "proxy B exit 0" test $pbrc -eq 0
if [ $fail -gt 0 ]; then show "$dir/pAerr"; show "$dir/pBerr"; show "$dir/udp.out"; show "$dir/ns1"; fi
"$RDV" network status --key "$dir/a.key" --json >"$dir/ns2" 2>&1
check "status live after" grep -q '"source":"live"' "$dir/ns2"
check "status keeps Relayed" grep -q '"lastTraversal":"Relayed"' "$dir/ns2"
check "status after: 0 active" grep -q '"activeRelays":0' "$dir/ns2"

# ---- errors ----
G=$("$RDV" keygen --key "$dir/g.key" 2>/dev/null)   # never online
"$RDV" relay --key "$dir/a.key" --timeout 5000 "$G" </dev/null >"$dir/outG" 2>"$dir/errG"
check "relay to offline: rc 1" test $? -eq 1
check "relay to offline: says so" grep -qi "offline" "$dir/errG"
"$RDV" relay --key "$dir/a.key" </dev/null >/dev/null 2>&1
check "relay without ID: usage" test $? -eq 2
"$RDV" proxy --key "$dir/a.key" "$B" </dev/null >/dev/null 2>&1
check "proxy without --listen: usage" test $? -eq 2
"$RDV" network bogus >/dev/null 2>&1
check "network bogus: usage" test $? -eq 2

if grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$dir"/err* "$dir"/p*err 2>/dev/null; then
  fail=$((fail+1)); echo "FAIL: sanitizer report"; grep -l "Sanitizer\|runtime error" "$dir"/*
fi
echo "client_cli_relay: $pass passed, $fail failed"
[ $fail -eq 0 ]
