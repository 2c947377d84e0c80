#!/bin/sh
# test_man.sh BUILD_DIR PACKAGING_OUT RENDEZVOUSD RDV RDVCTL - packaging_man:
# rendezvousd(8), rdv(1) and rdvctl(1), generated from --help at build time
# (packaging/help2roff), render with man-db without a single warning at 80
# columns, name every option their program's --help lists, and are
# installed by `cmake --install` to share/man/man8 and man1.
set -u
BUILD=$1 OUT=$2 SERVERD=$3 RDV=$4 RDVCTL=$5
work=$(mktemp -d /tmp/rdv-man-XXXXXX)
trap 'rm -rf "$work"' EXIT
command -v man >/dev/null || { echo "FAIL: man (Debian package man-db) is missing: scripts/bootstrap --test"; exit 1; }
fail=0

# check PAGE PROGRAM: no warnings, every --option of PROGRAM --help in the page
check() {
  page=$1 prog=$2
  [ -s "$page" ] || { echo "FAIL: $page missing"; fail=1; return; }
  warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  if [ -n "$warn" ]; then echo "FAIL: $page: man --warnings:"; echo "$warn"; fail=1; fi
  MANWIDTH=80 man -l "$page" 2>/dev/null | col -b >"$work/page.txt"
  [ -s "$work/page.txt" ] || { echo "FAIL: $page renders empty"; fail=1; return; }
  # roff may render '-' as U+2010 or U+2212: compare ASCII forms
  sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g' "$work/page.txt" >"$work/page.ascii"
  env -i "$prog" --help | grep -o -- '--[a-z][a-z-]*' | sort -u >"$work/opts"
  n=0
  while read -r o; do
    n=$((n + 1))
    grep -q -e "$o" "$work/page.ascii" || { echo "FAIL: $page lacks $o (in $prog --help)"; fail=1; }
  done <"$work/opts"
  [ "$n" -ge 5 ] || { echo "FAIL: $prog --help lists only $n options"; fail=1; }
  echo "ok: $page: no warnings, $n options of --help"
}
check "$OUT/rendezvousd.8" "$SERVERD"
check "$OUT/rdv.1" "$RDV"
check "$OUT/rdvctl.1" "$RDVCTL"
MANWIDTH=80 man -l "$OUT/rendezvousd.8" 2>/dev/null | col -b | grep -q '^CONFIGURATION FILE' ||
  { echo "FAIL: rendezvousd.8 has no CONFIGURATION FILE section"; fail=1; }

# installed where man finds them
cmake --install "$BUILD" --prefix "$work/prefix" >/dev/null || { echo "FAIL: cmake --install"; exit 1; }
for p in man8/rendezvousd.8.gz man1/rdv.1.gz man1/rdvctl.1.gz; do
  f=$work/prefix/share/man/$p
  if [ ! -s "$f" ]; then echo "FAIL: cmake --install did not install share/man/$p"; fail=1; continue; fi
  warn=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
  [ -z "$warn" ] || { echo "FAIL: installed $p: $warn"; fail=1; }
done
name=$(MANPATH=$work/prefix/share/man man -w rendezvousd 2>/dev/null)
[ "$name" = "$work/prefix/share/man/man8/rendezvousd.8.gz" ] ||
  { echo "FAIL: man -w rendezvousd with MANPATH=PREFIX/share/man: '$name'"; fail=1; }
[ $fail -eq 0 ] && echo "PASS"
exit $fail
