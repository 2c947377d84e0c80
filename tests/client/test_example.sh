#!/bin/sh
# test_example.sh SOURCE_DIR RENDEZVOUSD BUILD_DIR - client_example: the
# README example (client/examples/lookup.c, also quoted in client/README.md)
# builds with `pkg-config --cflags --libs librendezvous` against the
# librendezvous installed from BUILD_DIR (a built Release tree: the
# release_build fixture's), and runs against a real rendezvousd: it looks
# itself up.
set -u
SRC=$1
SERVERD=$2
BUILD=$3
work=$(mktemp -d /tmp/rdv-example-XXXXXX)
spid=""
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$work/server.log" ] && cat "$work/server.log"; exit 1; }

# The README quotes the example verbatim.
awk '/^## Example/{e=1} e && /^```c$/{c=1; next} c && /^```$/{exit} c' \
  "$SRC/client/README.md" >"$work/readme.c"
cmp -s "$work/readme.c" "$SRC/client/examples/lookup.c" ||
  fail "client/README.md example differs from client/examples/lookup.c"
[ "$(wc -l <"$SRC/client/examples/lookup.c")" -le 40 ] || fail "example longer than 40 lines"

prefix=$work/prefix
cmake --install "$BUILD" --prefix "$prefix" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail install; }
pcdir=$(dirname "$(find "$prefix" -name librendezvous.pc | head -n1)")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_PATH=$pcdir
cd "$work" || exit 1
cp "$SRC/client/examples/lookup.c" .
cc -o lookup lookup.c $(pkg-config --cflags --libs librendezvous) || fail "example does not build"

"$SERVERD" --listen 127.0.0.1 --port 0 --db "$work/r.db" >"$work/server.log" 2>&1 &
spid=$!
port=""
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do
  port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$work/server.log" 2>/dev/null | sed 's/.*://')
  [ -z "$port" ] && sleep 0.1
  i=$((i+1))
done
[ -n "$port" ] || fail "server did not start"
id=$(LD_LIBRARY_PATH=$libdir "$prefix/bin/rdv" keygen --key "$work/node.key" 2>/dev/null)
out=$(LD_LIBRARY_PATH=$libdir ./lookup "ws://127.0.0.1:$port/v1" "$work/node.key" "$id") ||
  fail "example exited with $?: $out"
[ "$out" = "$id online" ] || fail "unexpected output: $out"
echo "client_example: passed"
