#!/bin/sh
# Installs the PeerJS server into bench/peers/peerjs (git-ignored) from
# bench/peerjs/package.json and its lock file: `peer` 1.0.2 and `ws` 8.23.1
# pinned, every transitive dependency fixed by package-lock.json (npm ci).
# Idempotent: does nothing when the installed lock file is the same.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/peers/peerjs"
if [ -f "$dest/node_modules/peer/package.json" ] &&
    cmp -s "$here/peerjs/package-lock.json" "$dest/package-lock.json"; then
    exit 0
fi
command -v npm >/dev/null || { echo "install_peerjs: npm not found (node >= 14 needed)" >&2; exit 1; }
mkdir -p "$dest"
cp "$here/peerjs/package.json" "$here/peerjs/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error)
v() { sed -n 's/^[[:space:]]*"version": "\(.*\)",$/\1/p' "$dest/node_modules/$1/package.json" | head -1; }
echo "install_peerjs: peer@$(v peer) ws@$(v ws) in $dest"
