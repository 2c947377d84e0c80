#!/bin/sh
# test_cli_relay.sh RDV RENDEZVOUSD - client_cli_relay: the relay commands
# of rdv against a real rendezvousd on loopback:
#   - `rdv relay` pipes: a 200 kB file A -> B and a text B -> A through one
#     encrypted relay session (`rdv relay --accept` on B), both intact;
#   - `rdv proxy` on both sides carries UDP datagrams both ways between two
#     local UDP sockets (python3), while `rdv network status` shows the
#     running proxy's status file (active relays 1, Relayed) without
#     connecting; after the proxies stop, a live status keeps "Relayed";
#   - `rdv network status` does NAT discovery against the server's STUN
#     responder (--stun-port 0, RFC 5780 alternate port and address
#     127.0.0.2): nat_discovered, no NAT, fullCone, the STUN server, in
#     --json and text; --no-stun skips it;
#   - `rdv proxy --direct` on both ends: the path line says Direct on both
#     sides and UDP datagrams pass both ways; `rdv network status` shows
#     the direct session; with --relay-only on the connecting side the path
#     is Relayed (never Direct) and data still passes;
#   - `rdv relay` to an offline node fails (status 1); --help of each; bad
#     values of the NAT traversal options are usage errors (status 2).
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

free_udp() { # free_udp IP: a UDP port free on IP now
  $PY -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$1"
}
# STUN on a free port (--stun-port 0), with the RFC 5780 alternate port and
# address (127.0.0.2) when this host can bind 127.0.0.2.
alt_ok=0
if $PY -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(("127.0.0.2", 0))' 2>/dev/null; then
  alt_ok=1
fi
port=""; stun=""
for attempt in 1 2 3; do
  if [ $alt_ok = 1 ]; then
    alt=$(free_udp 127.0.0.1)
    set -- --stun-port 0 --stun-alt-port "$alt" --stun-alt-address 127.0.0.2
  else
    set -- --stun-port 0
  fi
  "$SERVERD" --listen 127.0.0.1 --port 0 --db "$dir/r.db" "$@" >"$dir/server.log" 2>&1 &
  spid=$!
  i=0
  while [ $i -lt 100 ] && { [ -z "$port" ] || [ -z "$stun" ]; } && kill -0 $spid 2>/dev/null; do
    port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/server.log" 2>/dev/null | sed 's/.*://')
    stun=$(grep -o 'stun on udp://127.0.0.1:[0-9]*' "$dir/server.log" 2>/dev/null | sed 's/.*://')
    { [ -z "$port" ] || [ -z "$stun" ]; } && sleep 0.1
    i=$((i+1))
  done
  [ -n "$port" ] && [ -n "$stun" ] && break
  kill $spid 2>/dev/null; wait $spid 2>/dev/null; spid=""; port=""; stun=""  # alt port taken: again
done
if [ -z "$port" ] || [ -z "$stun" ]; then echo "server did not start"; show "$dir/server.log"; exit 1; fi
export RENDEZVOUS_URL="ws://127.0.0.1:$port/v1"
STUN="127.0.0.1:$stun"

A=$("$RDV" keygen --key "$dir/a.key" 2>/dev/null)
B=$("$RDV" keygen --key "$dir/b.key" 2>/dev/null)
"$RDV" keygen --key "$dir/w.key" >/dev/null 2>&1

# --help of the new commands.
for c in relay proxy network; do
  "$RDV" $c --help >"$dir/help" 2>&1
  check "$c --help" grep -q "usage: rdv $c" "$dir/help"
  check "$c --help: --stun" grep -q -- "--stun HOST:PORT" "$dir/help"
  check "$c --help: --relay-only" grep -q -- "--relay-only" "$dir/help"
done
for c in relay proxy; do
  "$RDV" $c --help >"$dir/help" 2>&1
  check "$c --help: --direct" grep -q -- "--direct  " "$dir/help"
done
"$RDV" network status --help >"$dir/help" 2>&1
check "network status --help" grep -q "last relay error" "$dir/help"
check "network status --help: --wait" grep -q -- "--wait MS" "$dir/help"

# Waits until node $1 is online (as seen by the watcher key).
wait_online() {
  j=0
  while [ $j -lt 100 ]; do
    if "$RDV" lookup --key "$dir/w.key" "$1" 2>/dev/null | grep -q " online"; then return 0; fi
    sleep 0.1; j=$((j+1))
  done
  return 1
}

# network status, live, before any relay; --no-stun: no discovery, so the
# endpoint is the one the server observed and the type unknown.
"$RDV" network status --key "$dir/a.key" --json --no-stun >"$dir/ns0" 2>"$dir/errns0"
check "status live rc" test $? -eq 0
check "status live traversal Unknown" grep -q '"lastTraversal":"Unknown"' "$dir/ns0"
check "status live relay available" grep -q '"relayAvailable":true' "$dir/ns0"
check "status live endpoint" grep -q '"publicEndpoint":"127.0.0.1:' "$dir/ns0"
check "status live nat unknown" grep -q '"natType":"unknown"' "$dir/ns0"
check "status --no-stun: tcp endpoint" grep -q '"publicEndpointSource":"server-observed-tcp","publicEndpointFromStun":false' "$dir/ns0"
check "status --no-stun: no STUN server" grep -q '"noNat":false,.*"stunServer":""' "$dir/ns0"
check "status --no-stun: no direct yet" grep -q '"directSessions":0,"lastConnectMs":-1,"lastDirectMs":-1' "$dir/ns0"

# NAT discovery against the server's STUN responder: no NAT on loopback,
# and with RFC 5780 (other address answered) a full cone.
"$RDV" network status --key "$dir/a.key" --json --stun "$STUN" >"$dir/ns3" 2>"$dir/errns3"
check "status stun rc" test $? -eq 0
check "status stun: discovered" grep -q '"natDiscovered":true' "$dir/ns3"
check "status stun: no NAT" grep -q '"noNat":true' "$dir/ns3"
check "status stun: server" grep -q "\"stunServer\":\"$STUN\"" "$dir/ns3"
check "status stun: endpoint from STUN" grep -q '"publicEndpoint":"127.0.0.1:[0-9]*","publicEndpointSource":"stun","publicEndpointFromStun":true' "$dir/ns3"
check "status stun: method" grep -q '"natMethod":"[^"]' "$dir/ns3"
check "status stun: time" grep -q '"natDiscoveryMs":[0-9]' "$dir/ns3"
if [ $alt_ok = 1 ]; then
  check "status stun: fullCone" grep -q '"natType":"fullCone"' "$dir/ns3"
else
  echo "SKIP: 127.0.0.2 not usable: no RFC 5780 server, fullCone not checked"
fi
"$RDV" network status --key "$dir/a.key" --stun "$STUN" >"$dir/ns3.txt" 2>"$dir/errns3t"
check "status stun text: no NAT" grep -q "No NAT: *yes" "$dir/ns3.txt"
check "status stun text: discovery" grep -q "NAT discovery: *done in [0-9]* ms" "$dir/ns3.txt"
check "status stun text: server" grep -q "STUN server: *$STUN\$" "$dir/ns3.txt"
check "status stun text: from STUN" grep -q "Public endpoint: *127.0.0.1:[0-9]* (from STUN)" "$dir/ns3.txt"
if [ $alt_ok = 1 ]; then
  check "status stun text: fullCone" grep -q "NAT type: *none (announced as fullCone" "$dir/ns3.txt"
fi
# No NAT: the NAT type line must not name a NAT type as if there were one.
check "status stun text: no NAT type beside No NAT" sh -c "! grep -Eq 'NAT type: *(fullCone|restrictedCone|portRestricted|symmetric)\$' '$dir/ns3.txt'"
# A STUN server that does not answer: --wait bounds the wait.
dead=$(free_udp 127.0.0.1)
t0=$(date +%s)
"$RDV" network status --key "$dir/a.key" --json --stun "127.0.0.1:$dead" --wait 700 >"$dir/ns4" 2>"$dir/errns4"
t1=$(date +%s)
check "status dead stun: bounded" test $((t1 - t0)) -le 3
check "status dead stun: not discovered" grep -q '"natDiscovered":false,"noNat":false' "$dir/ns4"
if [ $fail -gt 0 ]; then show "$dir/ns3"; show "$dir/ns3.txt"; show "$dir/ns4"; show "$dir/server.log"; fi

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
check "relay: the close reads closed_by_peer" grep -q "closed by the peer (closed_by_peer)" "$dir/errB"
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
"$RDV" network status --key "$dir/a.key" --json --stun "$STUN" >"$dir/ns2" 2>&1
check "status live after" grep -q '"source":"live"' "$dir/ns2"
check "status keeps Relayed" grep -q '"lastTraversal":"Relayed"' "$dir/ns2"
check "status after: 0 active" grep -q '"activeRelays":0' "$dir/ns2"
check "status after: last connect of the relay session" grep -q '"lastConnectMs":[0-9]' "$dir/ns2"
"$RDV" network status --key "$dir/a.key" --stun "$STUN" >"$dir/ns2.txt" 2>&1
check "status after text: Relayed" grep -q "Last traversal: *Relayed" "$dir/ns2.txt"
check "status after text: Last connect not none" grep -q "Last connect: *[0-9][0-9]* ms" "$dir/ns2.txt"

# ---- rdv proxy --direct: a direct UDP path, both sides say so ----
# wait_for FILE PATTERN: up to 10 s.
wait_for() {
  j=0
  while [ $j -lt 100 ]; do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1; j=$((j+1))
  done
  return 1
}
PA=$(free_udp 127.0.0.1)
PB=$(free_udp 127.0.0.1)
"$RDV" proxy --accept --direct --key "$dir/b.key" --stun "$STUN" --forward "127.0.0.1:$PB" \
  --json >"$dir/pDB" 2>"$dir/pDBerr" &
pdb=$!; pids="$pids $pdb"
check "B online (direct)" wait_online "$B"
"$RDV" proxy --direct --key "$dir/a.key" --stun "$STUN" "$B" --listen "127.0.0.1:$PA" \
  --json >"$dir/pDA" 2>"$dir/pDAerr" &
pda=$!; pids="$pids $pda"
check "direct: A path line" wait_for "$dir/pDA" '"event":"path"'
check "direct: A path Direct" grep -q '"event":"path",.*"path":"Direct","elapsedMs":[0-9]*,"remote":"' "$dir/pDA"
check "direct: B path Direct" wait_for "$dir/pDB" '"event":"path",.*"path":"Direct"'
check "direct: B saw a direct-capable request" grep -q "\"event\":\"request\",.*\"peer\":\"$A\",\"direct\":true,\"peerNat\":\"[a-zA-Z]*\",\"result\":\"accepted\"" "$dir/pDB"
check "direct: A proxy up" grep -q "\"event\":\"proxy\",.*\"port\":$PA,\"direct\":true" "$dir/pDA"
$PY "$dir/udp.py" "$PA" "$PB" >"$dir/udpD.out" 2>&1
check "direct: udp both ways" grep -q "udp ok" "$dir/udpD.out"
check "direct: never Relayed" sh -c "! grep -q '\"path\":\"Relayed\"' '$dir/pDA'"
check "direct: status file says Direct" wait_for "$dir/a.key.status" "last_traversal=Direct"
"$RDV" network status --key "$dir/a.key" --json >"$dir/nsD" 2>&1
check "direct: status from running proxy" grep -q '"source":"rdv proxy, pid' "$dir/nsD"
check "direct: status Direct" grep -q '"lastTraversal":"Direct"' "$dir/nsD"
check "direct: status direct sessions 1" grep -q '"directSessions":1,"lastConnectMs":[0-9]*,"lastDirectMs":[0-9]' "$dir/nsD"
check "direct: status stun fields" grep -q "\"natDiscovered\":true,\"noNat\":true,.*\"stunServer\":\"$STUN\"" "$dir/nsD"
# SIGHUP = "the network changed": rediscovery, and the proxy goes on
kill -HUP $pda
check "direct: SIGHUP reported" wait_for "$dir/pDA" '"event":"networkChanged","by":"SIGHUP"'
check "direct: alive after SIGHUP" kill -0 $pda
$PY "$dir/udp.py" "$PA" "$PB" >"$dir/udpD2.out" 2>&1
check "direct: udp both ways after SIGHUP" grep -q "udp ok" "$dir/udpD2.out"
kill -TERM $pda; wait $pda; parc=$?
kill -TERM $pdb; wait $pdb; pbrc=$?
check "direct: proxy A exit 0" test $parc -eq 0
check "direct: proxy B exit 0" test $pbrc -eq 0
if [ $fail -gt 0 ]; then
  for f in pDA pDAerr pDB pDBerr udpD.out udpD2.out nsD; do show "$dir/$f"; done
fi

# ---- --relay-only on the connecting side: Relayed, data passes; text ----
PA=$(free_udp 127.0.0.1)
PB=$(free_udp 127.0.0.1)
"$RDV" proxy --accept --direct --key "$dir/b.key" --stun "$STUN" --forward "127.0.0.1:$PB" \
  >"$dir/pRB" 2>"$dir/pRBerr" &
prb=$!; pids="$pids $prb"
check "B online (relay-only)" wait_online "$B"
"$RDV" proxy --direct --relay-only --key "$dir/a.key" --stun "$STUN" "$B" \
  --listen "127.0.0.1:$PA" >"$dir/pRA" 2>"$dir/pRAerr" &
pra=$!; pids="$pids $pra"
check "relay-only: A path line" wait_for "$dir/pRAerr" "rdv proxy: path "
check "relay-only: A path Relayed" grep -q "^rdv proxy: path Relayed [0-9]* ms (session " "$dir/pRAerr"
check "relay-only: B path Relayed" wait_for "$dir/pRBerr" "^rdv proxy: path Relayed [0-9]* ms"
check "relay-only: B request text" grep -q "rdv proxy: accepted a direct-capable request from $A (peer NAT [a-zA-Z]*)" "$dir/pRBerr"
$PY "$dir/udp.py" "$PA" "$PB" >"$dir/udpR.out" 2>&1
check "relay-only: udp both ways" grep -q "udp ok" "$dir/udpR.out"
sleep 1   # B probes in the background; A must not answer
check "relay-only: A never Direct" sh -c "! grep -q 'path Direct' '$dir/pRAerr'"
check "relay-only: B never Direct" sh -c "! grep -q 'path Direct' '$dir/pRBerr'"
kill -TERM $pra; wait $pra; parc=$?
kill -TERM $prb; wait $prb; pbrc=$?
check "relay-only: proxy A exit 0" test $parc -eq 0
check "relay-only: proxy B exit 0" test $pbrc -eq 0
if [ $fail -gt 0 ]; then
  for f in pRA pRAerr pRB pRBerr udpR.out; do show "$dir/$f"; done
fi

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
# bad_value NAME EXPECTED-MESSAGE ARGS...: status 2 and the message.
bad_value() {
  name=$1; msg=$2; shift 2
  "$RDV" "$@" </dev/null >/dev/null 2>"$dir/errbad"
  rc=$?
  check "$name: status 2" test $rc -eq 2
  check "$name: message" grep -q -- "$msg" "$dir/errbad"
}
bad_value "--stun without port" "bad value for --stun" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --stun 127.0.0.1
bad_value "--stun port 0" "bad value for --stun" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --stun 127.0.0.1:0
bad_value "--stun port 70000" "bad value for --stun" relay --key "$dir/a.key" "$B" --stun 127.0.0.1:70000
bad_value "--stun bare IPv6" "bad value for --stun" network status --key "$dir/a.key" --stun ::1:3478
bad_value "--stun open bracket" "bad value for --stun" lookup --key "$dir/a.key" "$B" --stun '[::1:3478'
bad_value "--stun empty host" "bad value for --stun" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --stun :3478
bad_value "--stun missing value" "incomplete option '--stun'" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --stun
bad_value "9 --stun" "at most 8 --stun" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 \
  --stun a:1 --stun a:2 --stun a:3 --stun a:4 --stun a:5 --stun a:6 --stun a:7 --stun a:8 --stun a:9
bad_value "--stun with --no-stun" "contradict" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --stun a:1 --no-stun
bad_value "--udp-port 65536" "bad value for --udp-port" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --udp-port 65536
bad_value "--udp-port abc" "bad value for --udp-port" network status --key "$dir/a.key" --udp-port abc
bad_value "--direct-timeout 0" "bad value for --direct-timeout" proxy --key "$dir/a.key" "$B" --listen 127.0.0.1:1 --direct --direct-timeout 0
bad_value "--direct-timeout -5" "bad value for --direct-timeout" relay --key "$dir/a.key" "$B" --direct --direct-timeout -5
bad_value "--direct-timeout 10x" "bad value for --direct-timeout" relay --key "$dir/a.key" "$B" --direct --direct-timeout 10x
bad_value "network status --wait -1" "--wait must be 0 or more" network status --key "$dir/a.key" --wait -1
bad_value "lookup --direct" "--direct belongs to" lookup --key "$dir/a.key" "$B" --direct
bad_value "network status --direct" "--direct belongs to" network status --key "$dir/a.key" --direct
# A --udp-port taken (IPv4 and IPv6): the client cannot be created (status 1).
cat >"$dir/udpbusy.py" <<'EOF'
import socket, subprocess, sys
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s4.bind(("0.0.0.0", 0))
port = s4.getsockname()[1]
try:
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s6.bind(("::", port))
except OSError:
    pass  # no IPv6: the client cannot bind it either
r = subprocess.run(sys.argv[1:] + ["--udp-port", str(port)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, universal_newlines=True)
print("rc=%d" % r.returncode)
print(r.stderr)
EOF
$PY "$dir/udpbusy.py" "$RDV" lookup --key "$dir/a.key" "$B" >"$dir/errudp" 2>&1
check "--udp-port in use: status 1" grep -q "^rc=1$" "$dir/errudp"
check "--udp-port in use: message" grep -q "UDP port [0-9]* in use" "$dir/errudp"

if grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$dir"/err* "$dir"/p*err 2>/dev/null; then
  fail=$((fail+1)); echo "FAIL: sanitizer report"; grep -l "Sanitizer\|runtime error" "$dir"/*
fi
echo "client_cli_relay: $pass passed, $fail failed"
[ $fail -eq 0 ]
