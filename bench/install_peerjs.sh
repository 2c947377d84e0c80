#!/bin/sh
# Installs the PeerJS server (npm package `peer`, pinned) into bench/peers/peerjs
# (git-ignored). Idempotent: does nothing when the pinned version is present.
set -eu
PEER_VERSION=1.0.2
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/peers/peerjs"
pkg="$dest/node_modules/peer/package.json"
if [ -f "$pkg" ] && grep -q "\"version\": \"$PEER_VERSION\"" "$pkg"; then
    exit 0
fi
command -v npm >/dev/null || { echo "install_peerjs: npm not found (node >= 14 needed)" >&2; exit 1; }
mkdir -p "$dest"
npm install --prefix "$dest" --no-audit --no-fund --loglevel=error "peer@$PEER_VERSION"
echo "install_peerjs: peer@$PEER_VERSION in $dest"
