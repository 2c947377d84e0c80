#!/bin/sh
# test_install.sh SOURCE_DIR BUILD_DIR CONFIGURED_PREFIX - `cmake --install`
# gives a usable package (BUILD_DIR: a built Release tree configured with
# CMAKE_INSTALL_PREFIX=CONFIGURED_PREFIX, the release_build fixture's):
# binaries, headers, librendezvous (shared + static), librendezvous.pc and
# a CMake package; a consumer program builds and runs against it both via
# pkg-config and via find_package(rendezvous).
# The prefix is chosen at install time (`cmake --install --prefix P`, not
# the configure-time CMAKE_INSTALL_PREFIX), so librendezvous.pc must be
# relocatable and the installed rdv / rendezvousd must find librendezvous
# without LD_LIBRARY_PATH: both are run with a clean environment, and
# client/README's example is built with the prefix's pkg-config file only
# (the README's own `cc` line) and run against the installed server. Then
# once more with a Debian multiarch libdir (lib/x86_64-linux-gnu). Last,
# scripts/install PREFIX and the PATH / PKG_CONFIG_PATH lines it prints.
set -eu
SRC=$1
REL=$2
CONFIGURED=$3
work=$(mktemp -d /tmp/rdv-install-XXXXXX)
spid=""
cleanup() {
  if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || :; wait "$spid" 2>/dev/null || :; fi
  rm -rf "$work"
}
trap cleanup EXIT
prefix=$work/prefix
# REL is configured for a prefix nothing is ever installed to.
[ ! -e "$CONFIGURED" ] || { echo "FAIL: $CONFIGURED exists before the test"; exit 1; }
cmake --install "$REL" --prefix "$prefix" >/dev/null
[ ! -e "$CONFIGURED" ] || { echo "FAIL: installed to the configure-time prefix"; exit 1; }

fail=0
for f in bin/rdv include/rendezvous/rendezvous.h include/rendezvous/version.h lib/librendezvous.a \
         lib/pkgconfig/librendezvous.pc lib/cmake/rendezvous/rendezvousConfig.cmake; do
  if [ -e "$prefix/$f" ] || [ -e "$prefix/$(echo "$f" | sed 's#^lib/#lib/x86_64-linux-gnu/#')" ]; then :; else
    echo "FAIL: missing $f"; fail=1
  fi
done
[ -x "$prefix/bin/rendezvousd" ] || { echo "FAIL: missing bin/rendezvousd"; fail=1; }
[ -x "$prefix/bin/rdvctl" ] || { echo "FAIL: missing bin/rdvctl (the operator's CLI)"; fail=1; }

cat > "$work/consumer.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <rendezvous/rendezvous.h>
int main(void) {
    rdv_identity id;
    char node_id[RDV_NODE_ID_LEN + 1];
    if (rdv_identity_generate(&id) != 0) return 1;
    rdv_identity_node_id(&id, node_id);
    rdv_identity_wipe(&id);
    printf("%s\n", node_id);
    if (strcmp(rdv_version(), RDV_VERSION_STRING) != 0) return 1; /* headers = library */
    return strlen(node_id) == RDV_NODE_ID_LEN ? 0 : 1;
}
C
pcdir=$(dirname "$(find "$prefix" -name librendezvous.pc | head -n1)")
libdir=$(dirname "$pcdir")
if PKG_CONFIG_PATH=$pcdir cc -o "$work/consumer_pc" "$work/consumer.c" \
     $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs librendezvous); then
  LD_LIBRARY_PATH=$libdir "$work/consumer_pc" >/dev/null || { echo "FAIL: pkg-config consumer"; fail=1; }
else
  echo "FAIL: pkg-config consumer does not build"; fail=1
fi
if PKG_CONFIG_PATH=$pcdir cc -o "$work/consumer_static" "$work/consumer.c" \
     $(PKG_CONFIG_PATH=$pcdir pkg-config --static --cflags librendezvous) "$libdir/librendezvous.a" \
     $(PKG_CONFIG_PATH=$pcdir pkg-config --static --libs-only-l librendezvous | sed 's/-lrendezvous//'); then
  "$work/consumer_static" >/dev/null || { echo "FAIL: static consumer"; fail=1; }
else
  echo "FAIL: static pkg-config consumer does not build"; fail=1
fi

mkdir -p "$work/cmk"
cp "$work/consumer.c" "$work/cmk/"
cat > "$work/cmk/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(rendezvous REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE rendezvous::rendezvous)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static PRIVATE rendezvous::rendezvous_static)
C
cmake -S "$work/cmk" -B "$work/cmk/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmk/build" >/dev/null
"$work/cmk/build/consumer" >/dev/null || { echo "FAIL: find_package consumer"; fail=1; }
"$work/cmk/build/consumer_static" >/dev/null || { echo "FAIL: find_package static consumer"; fail=1; }
# only the public API is exported from the shared library
if nm -D --defined-only "$libdir/librendezvous.so" | awk '{print $3}' | grep -v '^rdv_' | grep -q .; then
  echo "FAIL: non-rdv_ symbols exported:"; nm -D --defined-only "$libdir/librendezvous.so" | grep -v ' rdv_' | head; fail=1
fi

# --- relocated prefix: pkg-config, clean-environment binaries, README example
clean() { env -i PATH=/usr/bin:/bin "$@"; }
# check_prefix PREFIX LABEL: the .pc file there points at PREFIX; rdv and
# rendezvousd run with a clean environment; the README example builds with
# the README's own command and that .pc file, and runs against the server.
check_prefix() {
  p=$1; label=$2
  pc=$(find "$p" -name librendezvous.pc | head -n1)
  [ -n "$pc" ] || { echo "FAIL($label): no librendezvous.pc"; fail=1; return; }
  pcd=$(dirname "$pc")
  got=$(clean PKG_CONFIG_PATH="$pcd" pkg-config --variable=prefix librendezvous)
  if [ "$(realpath -m "$got")" != "$(realpath "$p")" ]; then
    echo "FAIL($label): $pc gives prefix=$got, not $p"; fail=1
  fi
  got=$(clean PKG_CONFIG_PATH="$pcd" pkg-config --variable=libdir librendezvous)
  if [ ! -e "$got/librendezvous.so" ]; then
    echo "FAIL($label): $pc gives libdir=$got, which has no librendezvous.so"; fail=1
  fi
  if ! clean "$p/bin/rdv" --help >"$work/out" 2>&1; then
    echo "FAIL($label): installed rdv --help with a clean environment:"; cat "$work/out"; fail=1
  fi
  key=$work/$label.key
  if ! id=$(clean "$p/bin/rdv" keygen --key "$key" 2>"$work/out"); then
    echo "FAIL($label): installed rdv keygen with a clean environment:"; cat "$work/out"; fail=1
  fi
  if ! clean "$p/bin/rendezvousd" --help >"$work/out" 2>&1; then
    echo "FAIL($label): installed rendezvousd --help with a clean environment:"; cat "$work/out"; fail=1
  fi
  if ! clean "$p/bin/rdvctl" --help >"$work/out" 2>&1; then
    echo "FAIL($label): installed rdvctl --help with a clean environment:"; cat "$work/out"; fail=1
  fi

  # client/README's example, built with the README's `cc` line.
  mkdir -p "$work/$label-example"
  awk '/^## Example/{e=1} e && /^```c$/{c=1; next} c && /^```$/{exit} c' \
    "$SRC/client/README.md" >"$work/$label-example/lookup.c"
  ccline=$(grep -m1 '^cc -o lookup lookup.c' "$SRC/client/README.md" || :)
  [ -n "$ccline" ] || { echo "FAIL: client/README.md has no 'cc -o lookup lookup.c' line"; fail=1; return; }
  if ! (cd "$work/$label-example" && clean PKG_CONFIG_PATH="$pcd" sh -c "$ccline") >"$work/out" 2>&1; then
    echo "FAIL($label): the README example does not build with '$ccline' and $pc only:"
    cat "$work/out"; fail=1; return
  fi
  [ -n "${id:-}" ] || return
  # env directly, not the clean() function: a backgrounded function is a
  # subshell, and killing it would leave the server running
  env -i PATH=/usr/bin:/bin "$p/bin/rendezvousd" --listen 127.0.0.1 --port 0 --stun off \
    --db "$work/$label.db" >"$work/$label-server.log" 2>&1 &
  spid=$!
  port=""; i=0
  while [ $i -lt 100 ] && [ -z "$port" ]; do
    port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$work/$label-server.log" 2>/dev/null | sed 's/.*://' || :)
    [ -z "$port" ] && sleep 0.1
    i=$((i+1))
  done
  if [ -z "$port" ]; then
    echo "FAIL($label): installed rendezvousd did not start with a clean environment:"
    cat "$work/$label-server.log"; fail=1
  elif ! out=$(clean "$work/$label-example/lookup" "ws://127.0.0.1:$port/v1" "$key" "$id" 2>&1) ||
       [ "$out" != "$id online" ]; then
    echo "FAIL($label): the README example, run with a clean environment, said: $out"; fail=1
  fi
  kill "$spid" 2>/dev/null || :; wait "$spid" 2>/dev/null || :; spid=""
}
check_prefix "$prefix" default-libdir

# A Debian multiarch libdir (what GNUInstallDirs picks for prefix /usr):
# the .pc file sits three levels below the prefix.
cmake -S "$SRC" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DRDV_BUILD_TESTS=OFF \
      -DCMAKE_INSTALL_LIBDIR=lib/x86_64-linux-gnu >/dev/null
cmake --build "$work/build" -j2 >/dev/null
cmake --install "$work/build" --prefix "$work/prefix2" >/dev/null
[ -e "$work/prefix2/lib/x86_64-linux-gnu/pkgconfig/librendezvous.pc" ] ||
  { echo "FAIL: multiarch install has no lib/x86_64-linux-gnu/pkgconfig/librendezvous.pc"; fail=1; }
check_prefix "$work/prefix2" multiarch-libdir

# scripts/install PREFIX (reusing this build directory): installs there and
# prints the PATH / PKG_CONFIG_PATH lines that work.
p3=$work/prefix3
if ! RDV_INSTALL_BUILD_DIR=$work/build "$SRC/scripts/install" "$p3" >"$work/si.out" 2>"$work/si.err"; then
  echo "FAIL: scripts/install $p3:"; cat "$work/si.out" "$work/si.err"; fail=1
else
  grep -qxF "  export PATH=\"$p3/bin:\$PATH\"" "$work/si.out" ||
    { echo "FAIL: scripts/install does not print the PATH line:"; cat "$work/si.out"; fail=1; }
  pcline=$(grep '^  export PKG_CONFIG_PATH=' "$work/si.out" || :)
  [ -n "$pcline" ] || { echo "FAIL: scripts/install does not print the PKG_CONFIG_PATH line"; fail=1; }
  # The printed lines, used as a newcomer would: rdv on PATH, pkg-config finds the library.
  got=$(clean sh -c "$(sed -n 's/^  export /export /p' "$work/si.out"); command -v rdv; rdv --help >/dev/null && pkg-config --variable=prefix librendezvous") ||
    { echo "FAIL: with scripts/install's lines, rdv or pkg-config fails: $got"; fail=1; }
  [ "$(echo "$got" | head -n1)" = "$p3/bin/rdv" ] || { echo "FAIL: rdv on PATH is not $p3/bin/rdv: $got"; fail=1; }
  [ "$(realpath -m "$(echo "$got" | tail -n1)")" = "$p3" ] ||
    { echo "FAIL: pkg-config with scripts/install's lines gives prefix $(echo "$got" | tail -n1)"; fail=1; }
fi

[ $fail -eq 0 ] && echo "client_install: all checks passed"
exit $fail
