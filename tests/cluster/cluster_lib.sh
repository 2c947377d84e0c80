# cluster_lib.sh - what the cluster_ shell tests share (sourced, not run):
# a temporary directory cleaned up at exit, check / show / wait_grep, one
# redis-server on a Unix socket, and rendezvousd instances on it.
# The sourcing script sets SERVERD and names itself in TEST before sourcing.

command -v redis-server >/dev/null 2>&1 ||
  { echo "FAIL: redis-server not installed (scripts/bootstrap --test)"; exit 1; }
dir=$(mktemp -d "/tmp/rdv-$TEST-XXXXXX")
pids=""
cluster_cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null
  sleep 0.2
  if [ "${RDV_KEEP_TMP:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cluster_cleanup EXIT
pass=0; fail=0
check() { # check NAME CONDITION...
  name=$1; shift
  if "$@"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $name"; fi
}
show() { echo "----- $1"; tail -40 "$1" 2>/dev/null; }
wait_grep() { # wait_grep PATTERN FILE TENTHS_OF_A_SECOND
  i=0
  while [ $i -lt "$3" ]; do
    grep -q "$1" "$2" 2>/dev/null && return 0
    sleep 0.1; i=$((i+1))
  done
  return 1
}

# start_redis: redis-server on $dir/redis.sock, no persistence.
start_redis() {
  redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
  pids="$pids $!"
  for i in $(seq 50); do [ -S "$dir/redis.sock" ] && return 0; sleep 0.1; done
  return 1
}

# start_instance NAME [ARGS...]: a rendezvousd on that Redis; prints its
# port (empty when it did not start); its pid is in $dir/NAME.pid.
start_instance() {
  name=$1; shift
  "$SERVERD" --listen 127.0.0.1 --port 0 --stun-port 0 --redis "unix://$dir/redis.sock" \
    "$@" >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  for i in $(seq 100); do
    p=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/$name.log" 2>/dev/null | sed 's/.*://')
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.05
  done
}

# finish NAME [FILES...]: on failure shows the files; the summary line; the
# exit status.
finish() {
  name=$1; shift
  if [ "$fail" -ne 0 ]; then
    for f in "$@"; do show "$dir/$f"; done
  fi
  echo "$name: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
