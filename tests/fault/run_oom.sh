#!/bin/sh
# run_oom.sh RENDEZVOUSD TEST_BINARY - fault_oom: runs the test with
# RDV_SERVERD pointing at a wrapper that starts RENDEZVOUSD (a Release build
# without sanitizers, from the release_build fixture: ASan reserves terabytes
# of address space, so a real `prlimit --as` limit cannot apply to the test
# build) under `prlimit --as=$RDV_OOM_AS` (default 160 MiB; an idle server
# uses ~15).
set -eu
server=$1
bin=$2
[ -x "$server" ] || { echo "FAIL: no Release rendezvousd at $server (the release_build test builds it)"; exit 1; }
work=$(mktemp -d /tmp/rdv-fault-oom-XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/rendezvousd" <<WRAP
#!/bin/sh
exec prlimit --as=${RDV_OOM_AS:-167772160} -- "$server" "\$@"
WRAP
chmod +x "$work/rendezvousd"
RDV_SERVERD="$work/rendezvousd" RDV_OOM_WRAPPED=1 "$bin"
