#!/bin/sh
# test_deb.sh SOURCE_DIR [BUILD_DIR] - packaging_deb: scripts/package builds the four
# Debian packages, and they hold what issue 17 asks: dpkg-deb -c / -I
# (files, Depends from dpkg-shlibdeps, conffiles, shlibs and the ldconfig
# trigger, no RUNPATH), the packaged unit passes systemd-analyze verify
# against the package's own files, the man pages render without warnings,
# the maintainer scripts (run with stub commands) create the user and state
# directory on configure and delete the data on purge only, and lintian
# reports no error or warning; every package has its copyright file.
# Installing into a fresh Debian root: packaging_install_root.
set -u
SRC=$1
work=$(mktemp -d /tmp/rdv-deb-XXXXXX)
# BUILD_DIR (optional): where scripts/package builds; its packages/ stay
# for packaging_install_root
BUILD=${2:-$work/build}
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

RDV_PACKAGE_BUILD_DIR=$BUILD "$SRC/scripts/package" >"$work/package.log" 2>&1 ||
  { cat "$work/package.log"; echo "FAIL: scripts/package"; exit 1; }
P=$BUILD/packages
V=$(sed -n 's/^project(rendezvous VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")-1
A=$(dpkg --print-architecture)
ML=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for p in rendezvousd librendezvous0 librendezvous-dev rdv; do
  [ -f "$P/${p}_${V}_$A.deb" ] || bad "no ${p}_${V}_$A.deb (scripts/package printed: $(cat "$work/package.log"))"
done
[ $fail -eq 0 ] || exit 1

# has PKG PATH...: dpkg-deb -c lists each path
has() {
  pkg=$1; shift
  dpkg-deb -c "$P/${pkg}_${V}_$A.deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$work/c"
  for f in "$@"; do grep -qx "$f" "$work/c" || bad "$pkg lacks $f"; done
}
has rendezvousd /usr/bin/rendezvousd /lib/systemd/system/rendezvousd.service \
  /etc/rendezvous/rendezvousd.conf /usr/share/man/man8/rendezvousd.8.gz
has librendezvous0 /usr/lib/$ML/librendezvous.so.0 /usr/lib/$ML/librendezvous.so.0.1.0
has librendezvous-dev /usr/include/rendezvous/rendezvous.h /usr/include/rendezvous/version.h \
  /usr/lib/$ML/librendezvous.a \
  /usr/lib/$ML/librendezvous.so /usr/lib/$ML/pkgconfig/librendezvous.pc \
  /usr/lib/$ML/cmake/rendezvous/rendezvousConfig.cmake
has rdv /usr/bin/rdv /usr/share/man/man1/rdv.1.gz
# one package per file: the shared library only in librendezvous0, rdv only in rdv
dpkg-deb -c "$P/librendezvous-dev_${V}_$A.deb" | awk '{ print $6 }' | grep -q 'librendezvous\.so\.0' &&
  bad "librendezvous-dev holds the shared library itself"
dpkg-deb -c "$P/rendezvousd_${V}_$A.deb" | awk '{ print $6 }' | grep -Eq '/rdv(\.1\.gz)?$' &&
  bad "rendezvousd holds rdv's files"
# the operator's CLI goes with the server
has rendezvousd /usr/bin/rdvctl /usr/share/man/man1/rdvctl.1.gz

# Depends (dpkg-shlibdeps for the libraries)
dep() { dpkg-deb -f "$P/${1}_${V}_$A.deb" Depends; }
for want in libsqlite3-0 libwebsockets17 libjansson4 libsodium23 libc6 adduser; do
  dep rendezvousd | grep -q "$want" || bad "rendezvousd Depends lacks $want: $(dep rendezvousd)"
done
dep rdv | grep -q "librendezvous0 (= $V)" || bad "rdv Depends lacks librendezvous0 (= $V): $(dep rdv)"
dep librendezvous-dev | grep -q "librendezvous0 (= $V)" || bad "librendezvous-dev Depends: $(dep librendezvous-dev)"
dep librendezvous0 | grep -q libssl3 || bad "librendezvous0 Depends lacks libssl3: $(dep librendezvous0)"

# control files
for p in rendezvousd librendezvous0; do dpkg-deb -e "$P/${p}_${V}_$A.deb" "$work/ctl-$p"; done
grep -qx /etc/rendezvous/rendezvousd.conf "$work/ctl-rendezvousd/conffiles" || bad "rendezvousd.conf is not a conffile"
grep -q "^librendezvous 0 librendezvous0" "$work/ctl-librendezvous0/shlibs" 2>/dev/null || bad "librendezvous0 has no shlibs"
grep -qx "activate-noawait ldconfig" "$work/ctl-librendezvous0/triggers" 2>/dev/null || bad "librendezvous0 has no ldconfig trigger"

# extracted files: no RUNPATH, the unit, the man pages
root=$work/root
for p in rendezvousd librendezvous0 rdv; do dpkg-deb -x "$P/${p}_${V}_$A.deb" "$root"; done
for b in usr/bin/rendezvousd usr/bin/rdv usr/lib/$ML/librendezvous.so.0.1.0; do
  readelf -d "$root/$b" | grep -qE 'RUNPATH|RPATH' && bad "$b has an RPATH/RUNPATH"
done
for m in usr/share/man/man8/rendezvousd.8.gz usr/share/man/man1/rdv.1.gz; do
  w=$(MANWIDTH=80 man --warnings -l "$root/$m" 2>&1 >/dev/null)
  [ -z "$w" ] || bad "$m: $w"
done
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$root/lib/systemd"
  for d in /lib/systemd/system /usr/lib/systemd/system; do
    [ -d "$d" ] && cp -an "$d" "$root/lib/systemd/" && break
  done
  # ExecReload runs /bin/kill (procps, on every Debian system)
  mkdir -p "$root/bin" && cp /bin/kill "$root/bin/kill"
  msgs=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" rendezvousd.service 2>&1) ||
    bad "systemd-analyze verify (packaged unit): $msgs"
  [ -z "$msgs" ] || bad "systemd-analyze verify (packaged unit): $msgs"
  grep -q '^ExecStart=/usr/bin/rendezvousd --config /etc/rendezvous/rendezvousd.conf$' \
    "$root/lib/systemd/system/rendezvousd.service" || bad "packaged unit's ExecStart"
fi
# the packaged configuration is valid and puts the database in the state directory
grep -qx 'db = /var/lib/rendezvousd/rendezvous.db' "$root/etc/rendezvous/rendezvousd.conf" ||
  bad "rendezvousd.conf does not set db to /var/lib/rendezvousd"
LD_LIBRARY_PATH=$root/usr/lib/$ML "$root/usr/bin/rendezvousd" --config "$root/etc/rendezvous/rendezvousd.conf" \
  --db /nonexistent-dir/x.db >/dev/null 2>&1
[ $? -eq 1 ] || bad "the packaged rendezvousd does not accept its packaged configuration"

# maintainer scripts with stub commands that only log
stubs=$work/stubs log=$work/calls
mkdir -p "$stubs"
for c in adduser rm rmdir mkdir chown chmod systemctl deb-systemd-helper deb-systemd-invoke; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$c" "$log" >"$stubs/$c"
done
printf '#!/bin/sh\nexit 2\n' >"$stubs/getent"   # no such user yet
chmod +x "$stubs"/*
ms() { : >"$log"; PATH=$stubs:/usr/bin:/bin sh "$work/ctl-rendezvousd/$1" "$2" || bad "$1 $2 failed"; }
ms postinst configure
grep -q '^adduser --system --group .*rendezvousd$' "$log" || bad "postinst configure: no system user ($(cat "$log"))"
grep -q '^chown rendezvousd:rendezvousd /var/lib/rendezvousd' "$log" || [ -d /var/lib/rendezvousd ] ||
  bad "postinst configure: no state directory ($(cat "$log"))"
for a in remove upgrade; do
  ms prerm $a; ms postrm $a
  grep -qE '^(rm|rmdir) ' "$log" && bad "postrm $a deletes: $(cat "$log")"
done
ms postrm purge
grep -qx 'rm -rf /var/lib/rendezvousd' "$log" || bad "postrm purge keeps the data ($(cat "$log"))"

# every package carries the licence (packaging/debian/copyright, DEP-5)
for d in "$P"/*.deb; do
  pkg=$(dpkg-deb -f "$d" Package)
  dpkg-deb -c "$d" | grep -q " \./usr/share/doc/$pkg/copyright\$" || bad "$pkg: no copyright file"
done
# lintian: no error or warning (overrides in packaging/debian/lintian, each
# with its reason)
if command -v lintian >/dev/null; then
  lintian --tag-display-limit 0 "$P"/*.deb >"$work/lintian" 2>&1
  left=$(grep -E '^[EW]: ' "$work/lintian")
  [ -z "$left" ] || bad "lintian: $left"
  echo "lintian:"; sed 's/^/  /' "$work/lintian"
else
  bad "lintian missing (scripts/bootstrap --test installs it)"
fi
[ $fail -eq 0 ] && echo "PASS"
exit $fail
