#!/bin/sh
# test_systemd.sh PACKAGING_OUT RENDEZVOUSD - packaging_systemd: the unit
# packaging/rendezvousd.service.in (as configured for this build) passes
# `systemd-analyze verify` without a single message, in a scratch root
# holding the unit, the binary at its ExecStart path, the man page its
# Documentation= names and the system's own units; it carries the
# hardening of issue 17, Type=notify and ExecReload (SIGHUP);
# `systemd-analyze security --offline` scores it (printed). Skips (77) where systemd-analyze is missing.
set -u
OUT=$1 SERVERD=$2
UNIT=$OUT/rendezvousd.service
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze missing (Debian package systemd)"; exit 77; }
work=$(mktemp -d /tmp/rdv-unit-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
[ -s "$UNIT" ] || { echo "FAIL: $UNIT missing"; exit 1; }

bin=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNIT")
conf=$(sed -n 's/^ExecStart=.* --config \([^ ]*\).*/\1/p' "$UNIT")
[ -n "$bin" ] && [ -n "$conf" ] || { echo "FAIL: ExecStart is not 'BINARY --config FILE'"; fail=1; }
root=$work/root
mkdir -p "$root/etc/systemd/system" "$root$(dirname "$bin")" "$root/man/man8" "$root/lib/systemd"
cp "$UNIT" "$root/etc/systemd/system/"
cp "$SERVERD" "$root$bin"
# ExecReload runs /bin/kill (procps): verify wants it executable
mkdir -p "$root/bin" && cp /bin/kill "$root/bin/kill"
cp "$OUT/rendezvousd.8.gz" "$root/man/man8/"
for d in /lib/systemd/system /usr/lib/systemd/system; do
  [ -d "$d" ] && cp -a "$d" "$root/lib/systemd/" && break
done
msgs=$(MANPATH=$root/man systemd-analyze verify --man=yes --root="$root" rendezvousd.service 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$msgs" ]; then
  echo "FAIL: systemd-analyze verify: exit status $rc:"
  printf '%s\n' "$msgs"
  fail=1
else
  echo "ok: systemd-analyze verify: clean"
fi

# the hardening the issue asks for
for want in 'User=rendezvousd' 'StateDirectory=rendezvousd' 'ProtectSystem=strict' \
    'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'AmbientCapabilities=' \
    'LimitNOFILE=262144' 'Restart=on-failure' 'KillSignal=SIGTERM' \
    'Type=notify' 'NotifyAccess=main' 'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$want" "$UNIT" || { echo "FAIL: $UNIT lacks '$want'"; fail=1; }
done
# Type=notify needs the server to call sd_notify: it links libsystemd
# (server_notify tests what it sends)
ldd "$SERVERD" 2>/dev/null | grep -q 'libsystemd\.so' ||
  { echo "FAIL: $SERVERD does not link libsystemd (sd_notify) but the unit is Type=notify"; fail=1; }

score=$(systemd-analyze security --offline=yes --root="$root" rendezvousd.service 2>/dev/null |
  sed -n 's/.*Overall exposure level for rendezvousd.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ]; then
  echo "systemd-analyze security --offline: exposure $score"
  # 0 best, 10 worst; 'OK' is below 2.0 in systemd's scale... keep it there
  awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || { echo "FAIL: exposure $score (>= 2.0)"; fail=1; }
fi
[ $fail -eq 0 ] && echo "PASS"
exit $fail
