#!/bin/sh
# run_oom.sh SRC TEST_BINARY - fault_oom: builds a Release rendezvousd
# without sanitizers (ASan reserves terabytes of address space, so a real
# `prlimit --as` limit cannot apply to the test build) and runs the test
# with RDV_SERVERD pointing at a wrapper that starts it under
# `prlimit --as=$RDV_OOM_AS` (default 160 MiB; an idle server uses ~15).
set -eu
src=$1
bin=$2
work=$(mktemp -d /tmp/rdv-fault-oom-XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DRDV_SANITIZE=OFF \
    -DRDV_BUILD_TESTS=OFF >/dev/null
cmake --build "$work/build" --target rendezvousd -j"$(nproc)" >/dev/null
cat >"$work/rendezvousd" <<WRAP
#!/bin/sh
exec prlimit --as=${RDV_OOM_AS:-167772160} -- "$work/build/rendezvous/rendezvousd" "\$@"
WRAP
chmod +x "$work/rendezvousd"
RDV_SERVERD="$work/rendezvousd" RDV_OOM_WRAPPED=1 "$bin"
