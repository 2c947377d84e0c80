#!/bin/sh
# test_install_root.sh PACKAGES_DIR SOURCE_DIR - packaging_install_root: the
# Debian packages scripts/package built (packaging_deb's, PACKAGES_DIR) go
# into a fresh Debian 12 root (scripts/debian12-root, unpacked; chroot):
# apt installs them with their Depends from the Debian mirror (its
# downloads cached in build/container/apt), rendezvousd is started from the
# installed files the way the unit does (ExecStart, User=, the state
# directory, UMask=0077) in a network namespace of its own, the installed
# `rendezvousd --healthcheck` finds it, two nodes with the installed rdv
# exchange an offer and its answer, SIGTERM stops it (exit 0); `apt-get
# remove` keeps the database and the configuration, `apt-get purge`
# deletes them. Needs root, chroot and unshare; skips (77) without root.
set -u
P=$1 SRC=$2
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (chroot, mounts, a network namespace)"; exit 77; }
for c in chroot unshare mount ip python3; do
  command -v $c >/dev/null || { echo "SKIP: $c missing"; exit 77; }
done
ls "$P"/rendezvousd_*.deb "$P"/rdv_*.deb "$P"/librendezvous0_*.deb >/dev/null 2>&1 ||
  { echo "FAIL: no packages in $P (packaging_deb builds them)"; exit 1; }
CACHE=${RDV_CONTAINER_CACHE:-$SRC/build/container}
tar_file=$(RDV_CONTAINER_CACHE=$CACHE "$SRC/scripts/debian12-root") ||
  { echo "FAIL: no Debian 12 root (scripts/debian12-root)"; exit 1; }
root=$(mktemp -d /tmp/rdv-root-XXXXXX)
chmod 0755 "$root" # it becomes / (mktemp makes it 0700)
mounts=""
cleanup() {
  [ -n "${srv:-}" ] && kill "$srv" 2>/dev/null
  for m in $mounts; do umount -l "$m" 2>/dev/null; done
  rm -rf "$root"
}
trap cleanup EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $* [$(( $(date +%s) - t0 )) s]"; }
t0=$(date +%s)

tar -C "$root" -xf "$tar_file" || { echo "FAIL: cannot unpack $tar_file"; exit 1; }
mkdir -p "$CACHE/apt/archives/partial" "$CACHE/apt/lists/partial" "$root/pkgs"
mount -t proc proc "$root/proc" && mounts="$root/proc $mounts"
mount --bind "$CACHE/apt/archives" "$root/var/cache/apt/archives" &&
  mounts="$root/var/cache/apt/archives $mounts"
mount --bind "$CACHE/apt/lists" "$root/var/lib/apt/lists" && mounts="$root/var/lib/apt/lists $mounts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$P"/rendezvousd_*.deb "$P"/rdv_*.deb "$P"/librendezvous0_*.deb "$root/pkgs/"
# no service starts inside the root (invoke-rc.d asks policy-rc.d)
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod +x "$root/usr/sbin/policy-rc.d"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }
# apt's downloads go to the bind-mounted cache, owned by root here
echo 'APT::Sandbox::User "root";' >"$root/etc/apt/apt.conf.d/99rdv-test"
debs=$(cd "$root" && ls pkgs/*.deb | sed 's|^|/|')

in_root apt-get update -qq >"$root/apt.log" 2>&1 || { cat "$root/apt.log"; echo "FAIL: apt-get update"; exit 1; }
if in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $debs >>"$root/apt.log" 2>&1; then
  ok "apt-get install ./rendezvousd ./rdv ./librendezvous0 with their Depends ($(( $(date +%s) - t0 )) s)"
else
  cat "$root/apt.log"; echo "FAIL: apt-get install"; exit 1
fi
in_root getent passwd rendezvousd >/dev/null || bad "no system user rendezvousd"
[ -d "$root/var/lib/rendezvousd" ] || bad "no /var/lib/rendezvousd"
unit=$root/lib/systemd/system/rendezvousd.service
[ -f "$unit" ] || { echo "FAIL: no unit installed"; exit 1; }
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
conf=$(sed -n 's/^ExecStart=.* --config \([^ ]*\).*/\1/p' "$unit")
[ -n "$exec_start" ] && [ -n "$user" ] && [ -f "$root$conf" ] || bad "unit: ExecStart '$exec_start', User '$user', config '$conf'"

# the server as the unit runs it, in a network namespace of its own (only
# its loopback), with the nodes and the health check beside it
cat >"$root/run-server.sh" <<EOF
#!/bin/sh
# inside: unshare --net (lo up); chroot
cd /var/lib/rendezvousd || exit 1
umask 0077
setpriv --reuid=$user --regid=$user --init-groups $exec_start >/tmp/server.log 2>&1 &
srv=\$!
for i in \$(seq 1 100); do grep -q 'listening on ws://' /tmp/server.log && break; sleep 0.1; done
rendezvousd --healthcheck --config $conf >/tmp/health.out 2>&1; echo "health \$?" >/tmp/health.rc
cd /tmp
rdv keygen --key a.key >/dev/null 2>&1 && rdv keygen --key b.key >/dev/null 2>&1
b=\$(rdv id --key b.key)
rdv listen --key b.key --no-stun --count 1 --timeout 30000 >/tmp/listen.out 2>&1 &
l=\$!
for i in 1 2 3 4 5 6 7 8 9 10; do
  rdv offer --key a.key --no-stun --timeout 10000 "\$b" >/tmp/offer.out 2>&1 && break
  sleep 0.5
done
wait \$l; echo "listen \$?" >/tmp/listen.rc
kill -TERM \$srv; wait \$srv; echo "server \$?" >/tmp/server.rc
EOF
chmod +x "$root/run-server.sh"
unshare --net sh -c 'ip link set lo up && exec chroot "$1" /usr/bin/env -i \
  PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 HOME=/tmp /run-server.sh' sh "$root" ||
  bad "the run in the network namespace failed"
grep -q 'listening on ws://127.0.0.1:8080/v1' "$root/tmp/server.log" ||
  bad "the installed server did not listen: $(cat "$root/tmp/server.log")"
grep -qx 'health 0' "$root/tmp/health.rc" && grep -q '^healthy: http://127.0.0.1:8080/healthz' "$root/tmp/health.out" &&
  ok "installed rendezvousd --healthcheck --config $conf: $(cat "$root/tmp/health.out")" ||
  bad "healthcheck: $(cat "$root/tmp/health.rc" "$root/tmp/health.out")"
b=$(in_root rdv id --key /tmp/b.key)
grep -qx 'listen 0' "$root/tmp/listen.rc" && grep -q "$b" "$root/tmp/offer.out" &&
  ok "two nodes with the installed rdv: offer and answer through the installed server" ||
  bad "rdv: $(cat "$root/tmp/listen.rc" "$root/tmp/listen.out" "$root/tmp/offer.out")"
grep -qx 'server 0' "$root/tmp/server.rc" && grep -q 'NOTICE stopped' "$root/tmp/server.log" &&
  ok "SIGTERM: exit 0, 'stopped'" || bad "server stop: $(cat "$root/tmp/server.rc" "$root/tmp/server.log")"
db=$root/var/lib/rendezvousd/rendezvous.db
owner=$(stat -c %U "$db" 2>/dev/null)
[ "$owner" = "$user" ] 2>/dev/null || owner=$(in_root stat -c %U /var/lib/rendezvousd/rendezvous.db)
[ "$owner" = "$user" ] || bad "database owned by '$owner', not $user"
nodes() { python3 -c 'import sqlite3,sys; print(sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True).execute("select count(*) from nodes").fetchone()[0])' "$db" 2>&1; }
[ "$(nodes)" = 2 ] || bad "the database holds $(nodes) nodes, not 2"

# remove keeps the data and the configuration; purge deletes them
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq rendezvousd rdv librendezvous0 \
  >>"$root/apt.log" 2>&1 || bad "apt-get remove: $(tail -5 "$root/apt.log")"
[ ! -e "$root/usr/bin/rendezvousd" ] || bad "remove left /usr/bin/rendezvousd"
[ -f "$db" ] && [ "$(nodes)" = 2 ] && ok "apt-get remove: the database survives (2 nodes)" ||
  bad "apt-get remove deleted the database"
[ -f "$root$conf" ] || bad "apt-get remove deleted $conf (a conffile)"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rendezvousd >>"$root/apt.log" 2>&1 ||
  bad "apt-get purge: $(tail -5 "$root/apt.log")"
[ ! -e "$root/var/lib/rendezvousd" ] && [ ! -e "$root$conf" ] &&
  ok "apt-get purge: /var/lib/rendezvousd and $conf are gone" ||
  bad "purge left $(ls -d "$root/var/lib/rendezvousd" "$root$conf" 2>/dev/null)"
echo "took $(( $(date +%s) - t0 )) s"
[ $fail -eq 0 ] && echo "PASS"
exit $fail
