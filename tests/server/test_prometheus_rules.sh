#!/bin/sh
# test_prometheus_rules.sh SERVERD SRCDIR - server_prometheus_rules: the
# example alert rules (docker/prometheus-rules.yml) pass `promtool check
# rules` (Debian's prometheus package), and every rendezvous_* metric they
# name is one a running rendezvousd exports on /metrics.
set -u
SERVERD=$1; SRC=$2
RULES=$SRC/docker/prometheus-rules.yml
command -v promtool >/dev/null 2>&1 || { echo "FAIL: promtool not installed (scripts/bootstrap --test)"; exit 1; }
dir=$(mktemp -d /tmp/rdv-prom-XXXXXX)
spid=""
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; rm -rf "$dir"' EXIT
fail=0
promtool check rules "$RULES" >"$dir/check.out" 2>&1 || { echo "FAIL: promtool check rules"; cat "$dir/check.out"; fail=1; }
"$SERVERD" --listen 127.0.0.1 --port 0 --stun-port 0 --operator-listen 127.0.0.1:0 \
  --db "$dir/r.db" >"$dir/server.log" 2>&1 &
spid=$!
port=""
for i in $(seq 100); do
  # /metrics is on the operator's listener
  port=$(grep -o 'operator on http://127.0.0.1:[0-9]*' "$dir/server.log" 2>/dev/null | sed 's/.*://')
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: server did not start"; cat "$dir/server.log"; exit 1; }
/usr/bin/python3 -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
  "http://127.0.0.1:$port/metrics" >"$dir/metrics" || { echo "FAIL: /metrics"; exit 1; }
names=$(grep 'expr:' "$RULES" | grep -o 'rendezvous_[a-z_]*' | sort -u)
n=0
for m in $names; do
  n=$((n+1))
  grep -q "^$m[{ ]" "$dir/metrics" || { echo "FAIL: the rules use $m, which /metrics does not export"; fail=1; }
done
[ "$n" -ge 5 ] || { echo "FAIL: only $n metric names found in the rules"; fail=1; }
echo "server_prometheus_rules: $n metric names checked, $([ $fail = 0 ] && echo passed || echo failed)"
exit $fail
