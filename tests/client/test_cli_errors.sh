#!/bin/sh
# test_cli_errors.sh RDV RENDEZVOUSD - client_cli_errors: every mistake a
# newcomer makes with rdv gets a message that names the cause and the fix
# (issue 13), against a real rendezvousd on loopback:
#   - a missing key file (the default ./rendezvous.key too): "not found",
#     "run `rdv keygen`"; keygen into a missing directory: "does not exist";
#   - an unreachable server: one message (not one per attempt) naming the
#     URL tried; a wrong URL path: the upgrade refused at that path, the
#     endpoint is /v1; wss:// to a plain server: the TLS handshake failed,
#     plain ws://?; --url http://...: must start with ws:// or wss://;
#   - rdv offer to our own node ID; rdv proxy --forward to a host that does
#     not resolve: refused at start;
#   - rdv proxy --listen on a port in use / an address not on this host:
#     fails at once (status 1, the reason), before contacting the peer;
#     --listen 0.0.0.0: a warning; SIGTERM: the proxy exits promptly;
#   - help texts: proxy --help names RENDEZVOUS_STATE, lookup --help --nat.
set -u
RDV=$1
SERVERD=$2
PY=${PYTHON:-python3}
dir=$(mktemp -d /tmp/rdv-cli-errors-XXXXXX)
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
# expect NAME STATUS FILE PATTERN...: the last command's status, and each
# (extended, case-insensitive) pattern in FILE.
expect() {
  what=$1; want=$2; file=$3; shift 3
  check "$what: status $want (got $rc)" test "$rc" -eq "$want"
  for pat in "$@"; do
    check "$what: says '$pat'" grep -qiE -- "$pat" "$file"
  done
  [ "$fail" -eq 0 ] || show "$file"
}

"$SERVERD" --listen 127.0.0.1 --port 0 --stun-port 0 --db "$dir/r.db" >"$dir/server.log" 2>&1 &
spid=$!
port=""
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
  port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/server.log" 2>/dev/null | sed 's/.*://')
  [ -z "$port" ] && sleep 0.1
  i=$((i+1))
done
if [ -z "$port" ]; then echo "server did not start"; show "$dir/server.log"; exit 1; fi
URL="ws://127.0.0.1:$port/v1"
export RENDEZVOUS_URL="$URL"
unset RENDEZVOUS_KEY RENDEZVOUS_STATE

A=$("$RDV" keygen --key "$dir/a.key" 2>/dev/null)
B=$("$RDV" keygen --key "$dir/b.key" 2>/dev/null)
"$RDV" keygen --key "$dir/w.key" >/dev/null 2>&1

# ---- key files ----
(cd "$dir" && "$RDV" lookup "$A" >/dev/null 2>"$dir/e1"); rc=$?
expect "default key missing" 1 "$dir/e1" "rendezvous.key" "not found" 'run `rdv keygen'
timeout 10 "$RDV" proxy --key "$dir/none.key" "$B" --listen 127.0.0.1:0 >/dev/null 2>"$dir/e2"; rc=$?
expect "--key missing" 1 "$dir/e2" "none.key" "not found" 'run `rdv keygen --key'
"$RDV" id --key "$dir/none.key" >/dev/null 2>"$dir/e3"; rc=$?
expect "id: key missing" 1 "$dir/e3" "not found" "rdv keygen"
"$RDV" keygen --key "$dir/nodir/x.key" >/dev/null 2>"$dir/e4"; rc=$?
expect "keygen into a missing directory" 1 "$dir/e4" "directory .*nodir does not exist" "mkdir -p"

# ---- the server URL ----
free=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$RDV" lookup --key "$dir/a.key" --url "ws://127.0.0.1:$free/v1" "$B" >/dev/null 2>"$dir/e5"; rc=$?
expect "unreachable server" 1 "$dir/e5" "ws://127.0.0.1:$free/v1" "cannot reach the server" \
  "is rendezvousd running"
check "unreachable server: said once" test "$(grep -c "127.0.0.1:$free" "$dir/e5")" -eq 1
"$RDV" lookup --key "$dir/a.key" --url "ws://127.0.0.1:$port/rendezvous" "$B" >/dev/null 2>"$dir/e6"; rc=$?
expect "wrong path" 1 "$dir/e6" "refused the WebSocket upgrade at path /rendezvous" \
  "endpoint is /v1" "HTTP 404"
check "wrong path: said once" test "$(grep -c "upgrade" "$dir/e6")" -eq 1
"$RDV" lookup --key "$dir/a.key" --url "wss://127.0.0.1:$port/v1" "$B" >/dev/null 2>"$dir/e7"; rc=$?
expect "wss to a plain server" 1 "$dir/e7" "TLS handshake .*failed" "plain ws://"
"$RDV" lookup --key "$dir/a.key" --url "http://127.0.0.1:$port/v1" "$B" >/dev/null 2>"$dir/e8"; rc=$?
expect "http URL" 2 "$dir/e8" "must start with ws:// or wss://"
# A long-running command says a repeated failure once, not per attempt.
"$RDV" watch --key "$dir/a.key" --url "ws://127.0.0.1:$free/v1" --timeout 2500 "$B" \
  >/dev/null 2>"$dir/e9"; rc=$?
check "watch, unreachable: one line for a repeated cause" test "$(grep -c "127.0.0.1:$free" "$dir/e9")" -eq 1

# ---- offers and proxies ----
"$RDV" offer --key "$dir/a.key" "$A" >/dev/null 2>"$dir/e10"; rc=$?
expect "offer to self" 2 "$dir/e10" "cannot send an offer to your own node ID"
timeout 10 "$RDV" proxy --key "$dir/a.key" "$A" --listen 127.0.0.1:0 >/dev/null 2>"$dir/e11"; rc=$?
expect "proxy to self" 2 "$dir/e11" "your own node ID"
# (timeout: before issue 13 these ran forever)
timeout 10 "$RDV" proxy --accept --key "$dir/b.key" --forward nothost.invalid:1 >/dev/null 2>"$dir/e12"; rc=$?
expect "--forward unresolvable" 1 "$dir/e12" "--forward nothost.invalid:1" "cannot resolve 'nothost.invalid'"
timeout 10 "$RDV" proxy --accept --key "$dir/b.key" --forward 127.0.0.1 >/dev/null 2>"$dir/e13"; rc=$?
expect "--forward without port" 2 "$dir/e13" "bad --forward" "IP:PORT"

# The peer B accepts proxies; a proxy whose --listen cannot be bound fails
# at once and never opens a session with B.
"$RDV" proxy --accept --key "$dir/b.key" --forward 127.0.0.1:9 >"$dir/pB" 2>"$dir/pBerr" &
pb=$!; pids="$pids $pb"
j=0
while [ $j -lt 100 ]; do
  "$RDV" lookup --key "$dir/w.key" "$B" 2>/dev/null | grep -q " online" && break
  sleep 0.1; j=$((j+1))
done
cat >"$dir/hold.py" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1], "w").write("%d\n" % s.getsockname()[1])
time.sleep(30)
EOF
$PY "$dir/hold.py" "$dir/held" &
hpid=$!; pids="$pids $hpid"
j=0
while [ $j -lt 100 ] && ! [ -s "$dir/held" ]; do sleep 0.1; j=$((j+1)); done
held=$(cat "$dir/held")
t0=$(date +%s)
"$RDV" proxy --key "$dir/a.key" "$B" --listen "127.0.0.1:$held" >/dev/null 2>"$dir/e14" &
ppid=$!; pids="$pids $ppid"
j=0
while [ $j -lt 50 ] && kill -0 $ppid 2>/dev/null; do sleep 0.1; j=$((j+1)); done
if kill -0 $ppid 2>/dev/null; then rc=999; kill $ppid; wait $ppid 2>/dev/null; else wait $ppid; rc=$?; fi
expect "--listen port in use" 1 "$dir/e14" "cannot bind --listen 127.0.0.1:$held" "in use"
"$RDV" proxy --key "$dir/a.key" "$B" --listen 192.0.2.1:40000 --once >/dev/null 2>"$dir/e15" &
ppid=$!; pids="$pids $ppid"
j=0
while [ $j -lt 50 ] && kill -0 $ppid 2>/dev/null; do sleep 0.1; j=$((j+1)); done
if kill -0 $ppid 2>/dev/null; then rc=999; kill $ppid; wait $ppid 2>/dev/null; else wait $ppid; rc=$?; fi
expect "--listen not on this host" 1 "$dir/e15" "cannot bind --listen 192.0.2.1:40000" \
  "not an address of this host"
check "no session reached the peer" sh -c "! grep -q 'request from' '$dir/pBerr'"

# --listen 0.0.0.0: works, with a warning; SIGTERM ends it promptly.
"$RDV" proxy --key "$dir/a.key" "$B" --listen 0.0.0.0:0 >"$dir/pA" 2>"$dir/pAerr" &
pa=$!; pids="$pids $pa"
j=0
while [ $j -lt 100 ] && ! grep -q "UDP port" "$dir/pAerr" 2>/dev/null; do sleep 0.1; j=$((j+1)); done
check "0.0.0.0: proxy up" grep -q "UDP port" "$dir/pAerr"
check "0.0.0.0: warning" grep -q "warning: --listen 0.0.0.0:0 is not a loopback address: it is reachable from the network" "$dir/pAerr"
kill -TERM $pa
sleep 1
check "SIGTERM: the opening proxy exited within 1 s" sh -c "! kill -0 $pa 2>/dev/null"
wait $pa; parc=$?
check "SIGTERM: status 0" test $parc -eq 0
# the accepting side heard of the close, by its protocol name
j=0
while [ $j -lt 50 ] && ! grep -q "closed by the peer" "$dir/pBerr"; do sleep 0.1; j=$((j+1)); done
check "close reason: closed_by_peer" grep -q "closed by the peer (closed_by_peer)" "$dir/pBerr"
kill -TERM $pb
sleep 1
check "SIGTERM: the accepting proxy exited within 1 s" sh -c "! kill -0 $pb 2>/dev/null"
wait $pb

# ---- help texts ----
"$RDV" proxy --help >"$dir/h1" 2>&1
check "proxy --help: RENDEZVOUS_STATE" grep -q "RENDEZVOUS_STATE" "$dir/h1"
"$RDV" lookup --help >"$dir/h2" 2>&1
check "lookup --help: --nat" grep -q -- "--nat TYPE" "$dir/h2"

if grep -q "ERROR: AddressSanitizer\|runtime error\|LeakSanitizer" "$dir"/e* "$dir"/p*err 2>/dev/null; then
  fail=$((fail+1)); echo "FAIL: sanitizer report"; grep -l "Sanitizer\|runtime error" "$dir"/*
fi
if [ "$fail" -ne 0 ]; then
  for f in pAerr pBerr server.log; do show "$dir/$f"; done
fi
echo "client_cli_errors: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
