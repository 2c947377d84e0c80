#!/bin/sh
# test_stun_port_check.sh SOURCE_DIR - server_stun_port_banner: when
# rendezvousd's STUN port is already taken on its listen address,
# scripts/stun-port-check (run by scripts/run before rendezvousd) prints a
# banner on stderr naming the process that holds it and what to do (stop
# that service, or --stun-port), for flags and RENDEZVOUS_* variables; it
# says nothing when the port is free, on another address, or STUN is off.
# A python3 process holds an ephemeral UDP port (not 3478: other servers on
# this host may use it).
set -u
SRC=$1
CHECK=$SRC/scripts/stun-port-check
work=$(mktemp -d /tmp/rdv-stunport-XXXXXX)
hpid=""
cleanup() {
  if [ -n "$hpid" ]; then kill "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

command -v ss >/dev/null 2>&1 || { echo "SKIP: no ss (iproute2)"; exit 0; }
[ -x "$CHECK" ] || { echo "FAIL: $CHECK missing or not executable"; exit 1; }
grep -q 'scripts/stun-port-check "\$@"' "$SRC/scripts/run" ||
  bad "scripts/run does not run scripts/stun-port-check with its arguments"

# Hold a UDP port on 127.0.0.1 whose next port is free (for the alternate
# port checks), and print it.
/usr/bin/python3 -c '
import socket, sys, time
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    if port >= 65535:
        continue
    t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t.bind(("0.0.0.0", port + 1))
    except OSError:
        continue
    t.close()
    break
print(port, flush=True)
time.sleep(120)
' >"$work/port" &
hpid=$!
i=0
while [ $i -lt 50 ] && [ ! -s "$work/port" ]; do sleep 0.1; i=$((i+1)); done
port=$(cat "$work/port")
[ -n "$port" ] || { echo "FAIL: the python3 holder did not start"; exit 1; }
free=$((port + 1))

# expect_banner LABEL PORT [env args] CHECK [args]: status 3, the banner on
# stderr with the port, the holder and both fixes, nothing on stdout.
expect_banner() {
  label=$1; p=$2; shift 2
  was=$fail; fail=0
  env "$@" >"$work/out" 2>"$work/err"
  rc=$?
  [ $rc -eq 3 ] || bad "$label: exit status $rc, not 3"
  [ -s "$work/out" ] && bad "$label: wrote to stdout"
  grep -q "STUN PORT $p/udp IS ALREADY TAKEN" "$work/err" || bad "$label: no banner naming port $p"
  grep -q "python3 (pid $hpid)" "$work/err" || bad "$label: does not name the holder python3 (pid $hpid)"
  grep -q "systemctl disable --now coturn" "$work/err" || bad "$label: does not say how to stop coturn"
  grep -q -- "--stun-port N" "$work/err" || bad "$label: does not suggest --stun-port"
  [ "$(grep -c '^rendezvousd: ####' "$work/err")" -eq 2 ] || bad "$label: not a framed banner"
  [ $fail -eq 0 ] || cat "$work/err"
  [ $was -eq 0 ] || fail=1
}
# expect_quiet LABEL [env args] CHECK [args]: status 0 and silence.
expect_quiet() {
  label=$1; shift
  env "$@" >"$work/out" 2>&1
  rc=$?
  [ $rc -eq 0 ] || bad "$label: exit status $rc, not 0"
  [ -s "$work/out" ] && { bad "$label: printed something:"; cat "$work/out"; }
}

expect_banner "--stun-port" "$port" -u RENDEZVOUS_STUN_PORT "$CHECK" --stun-port "$port"
expect_banner "--stun-port=" "$port" -u RENDEZVOUS_STUN_PORT "$CHECK" --listen=127.0.0.1 --stun-port="$port"
expect_banner "RENDEZVOUS_STUN_PORT" "$port" RENDEZVOUS_STUN_PORT="$port" "$CHECK"
expect_banner "--listen 0.0.0.0" "$port" -u RENDEZVOUS_STUN_PORT "$CHECK" --listen 0.0.0.0 --stun-port "$port"
expect_banner "--listen ::" "$port" -u RENDEZVOUS_STUN_PORT "$CHECK" --listen :: --stun-port "$port"
grep -q "will EXIT" "$work/err" || bad "explicit --stun-port: does not say rendezvousd will exit"

expect_quiet "free port" -u RENDEZVOUS_STUN_PORT "$CHECK" --stun-port "$free" --stun-alt-port 0
expect_quiet "other address" -u RENDEZVOUS_STUN_PORT "$CHECK" --listen 127.0.0.2 --stun-port "$port" --stun-alt-port 0
expect_quiet "other family" -u RENDEZVOUS_STUN_PORT "$CHECK" --listen ::1 --stun-port "$port" --stun-alt-port 0
expect_quiet "--stun off" -u RENDEZVOUS_STUN_PORT "$CHECK" --stun off --stun-port "$port"
expect_quiet "RENDEZVOUS_STUN=off" RENDEZVOUS_STUN=off RENDEZVOUS_STUN_PORT="$port" "$CHECK"
expect_quiet "--stun-port 0" -u RENDEZVOUS_STUN_PORT "$CHECK" --stun-port 0

# The taken port as the automatic alternate port (--stun-port + 1): a
# smaller banner, and rendezvousd keeps running.
env -u RENDEZVOUS_STUN_PORT "$CHECK" --stun-port $((port - 1)) >"$work/out" 2>"$work/err"
rc=$?
if [ $((port - 1)) -gt 0 ] && ! ss -Hulnp "sport = :$((port - 1))" | grep -q .; then
  [ $rc -eq 3 ] || bad "alternate port: exit status $rc, not 3"
  grep -q "ALTERNATE STUN PORT $port/udp" "$work/err" || { bad "alternate port: no banner"; cat "$work/err"; }
  grep -q "python3 (pid $hpid)" "$work/err" || bad "alternate port: does not name the holder"
fi

[ $fail -eq 0 ] && echo "server_stun_port_banner: all checks passed"
exit $fail
