#!/bin/sh
# test_install.sh SOURCE_DIR - `cmake --install` gives a usable package:
# binaries, headers, librendezvous (shared + static), librendezvous.pc and
# a CMake package; a consumer program builds and runs against it both via
# pkg-config and via find_package(rendezvous).
set -eu
SRC=$1
work=$(mktemp -d /tmp/rdv-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake -S "$SRC" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DRDV_BUILD_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
cmake --install "$work/build" >/dev/null

fail=0
for f in bin/rdv include/rendezvous/rendezvous.h lib/librendezvous.a \
         lib/pkgconfig/librendezvous.pc lib/cmake/rendezvous/rendezvousConfig.cmake; do
  if [ -e "$prefix/$f" ] || [ -e "$prefix/$(echo "$f" | sed 's#^lib/#lib/x86_64-linux-gnu/#')" ]; then :; else
    echo "FAIL: missing $f"; fail=1
  fi
done
[ -x "$prefix/bin/rendezvousd" ] || { echo "FAIL: missing bin/rendezvousd"; fail=1; }

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
    return strlen(node_id) == RDV_NODE_ID_LEN ? 0 : 1;
}
C
pcdir=$(dirname "$(find "$prefix" -name librendezvous.pc | head -n1)")
libdir=$(dirname "$pcdir")
PKG_CONFIG_PATH=$pcdir cc -o "$work/consumer_pc" "$work/consumer.c" \
  $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs librendezvous)
LD_LIBRARY_PATH=$libdir "$work/consumer_pc" >/dev/null || { echo "FAIL: pkg-config consumer"; fail=1; }
PKG_CONFIG_PATH=$pcdir cc -o "$work/consumer_static" "$work/consumer.c" \
  $(PKG_CONFIG_PATH=$pcdir pkg-config --static --cflags librendezvous) "$libdir/librendezvous.a" \
  $(PKG_CONFIG_PATH=$pcdir pkg-config --static --libs-only-l librendezvous | sed 's/-lrendezvous//')
"$work/consumer_static" >/dev/null || { echo "FAIL: static consumer"; fail=1; }

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
[ $fail -eq 0 ] && echo "client_install: all checks passed"
exit $fail
