#!/bin/sh
# test_nginx.sh SERVERD RDV SRCDIR - the README's load balancer snippet
# (docker/nginx-cluster.conf) in front of two rendezvousd instances that
# share one redis-server: nginx passes the WebSocket upgrade, and nodes it
# spreads over both instances find and signal each other with the real
# rdv CLI. Two offers from separate connections (round robin, one worker)
# land on both instances, so one of them crosses instances.
set -u
SERVERD=$1; RDV=$2; SRC=$3
for t in redis-server nginx; do
  command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || { echo "FAIL: $t not installed (scripts/bootstrap --test)"; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
TEST=nginx
. "$(dirname "$0")/cluster_lib.sh"
start_redis
p1=$(start_instance i1 --max-handshakes-per-ip 0 --max-connections-per-ip 0)
p2=$(start_instance i2 --max-handshakes-per-ip 0 --max-connections-per-ip 0)
pids="$pids $(cat "$dir/i1.pid") $(cat "$dir/i2.pid")"
check "instances up" test -n "$p1" -a -n "$p2"

lport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s/^    listen 80;/    listen 127.0.0.1:$lport;/" \
    -e "/server 10.0.0.12/d" -e "/server 10.0.0.13/d" \
    -e "s/server 10.0.0.11:8080/server 127.0.0.1:$p1 max_fails=1 fail_timeout=10s; server 127.0.0.1:$p2/" \
    "$SRC/docker/nginx-cluster.conf" >"$dir/site.conf"
cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
error_log $dir/nginx-error.log;
pid $dir/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  include $dir/site.conf;
}
CONF
"$NGINX" -p "$dir" -c "$dir/nginx.conf" -t >"$dir/nginx-t.log" 2>&1
check "nginx accepts the snippet" test $? = 0
"$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/nginx-run.log" 2>&1
for i in $(seq 50); do [ -f "$dir/nginx.pid" ] && break; sleep 0.1; done
URL="ws://127.0.0.1:$lport/v1"
sleep 1.2 # a heartbeat: both instances registered

A=$("$RDV" keygen --key "$dir/a.key" 2>/dev/null)
B=$("$RDV" keygen --key "$dir/b.key" 2>/dev/null)
"$RDV" listen --key "$dir/b.key" --url "$URL" --json --count 2 --timeout 20000 --no-stun \
  >"$dir/listen.out" 2>"$dir/listen.err" &
lpid=$!
online=no
for i in $(seq 50); do
  "$RDV" lookup --key "$dir/a.key" --url "$URL" --no-stun "$B" 2>/dev/null | grep -q " online " && { online=yes; break; }
  sleep 0.2
done
check "B online through nginx" test "$online" = yes
for n in 1 2; do
  "$RDV" offer --key "$dir/a.key" --url "$URL" --json --no-stun "$B" >"$dir/offer$n.out" 2>"$dir/offer$n.err"
  check "offer $n answered" grep -q "\"event\":\"answer\",\"fromNodeID\":\"$B\"" "$dir/offer$n.out"
done
wait "$lpid"; lrc=$?
check "listen got both offers" test "$lrc" = 0
check "A authenticated on instance 1" grep -q "node $A authenticated" "$dir/i1.log"
check "A authenticated on instance 2" grep -q "node $A authenticated" "$dir/i2.log"
/usr/bin/python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
  "http://127.0.0.1:$lport/healthz" >"$dir/hz.out" 2>&1
check "/healthz through nginx" grep -q ok "$dir/hz.out"
finish cluster_nginx i1.log i2.log nginx-error.log nginx-t.log listen.out listen.err offer1.err offer2.err redis.log
