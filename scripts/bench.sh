#!/usr/bin/env bash
# make bench: vmms against libvirt-dbus on the real stack (system bus, polkitd, libvirtd).
#   scripts/bench.sh [vmms-bench run options]     e.g. --vms 200, --seconds 10; see --help
# Must run as root: it brings up the stack (scripts/stack.sh up), defines N VMs
# (default 1000; named vmmsbench-NNNN, all removed at the end), starts its own vmmsd,
# prints the table and writes bench/results.json.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
SCRATCH=${VMMS_BENCH_SCRATCH:-$REPO_ROOT/.build-bench}
SWIFT=${SWIFT:-swift}

[[ $(id -u) -eq 0 ]] || { echo "bench: must run as root (it starts vmmsd and defines VMs)" >&2; exit 1; }
cd "$REPO_ROOT"

"$SCRIPT_DIR/stack.sh" up
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket

echo "bench: building vmmsd and vmms-bench (release, scratch path $SCRATCH)"
"$SWIFT" build -c release --scratch-path "$SCRATCH" --product vmmsd
"$SWIFT" build -c release --scratch-path "$SCRATCH" --product vmms-bench
BIN=$("$SWIFT" build -c release --scratch-path "$SCRATCH" --show-bin-path)

# The client processes run as alice (vmms-admins): the binaries must be reachable by her.
for dir in "$BIN" /opt/swift; do
    [[ -e $dir ]] || continue
    runuser -u alice -- test -x "$dir" || echo "bench: warning: alice cannot reach $dir" >&2
done

mkdir -p bench
# Its vmmsd owns org.example.VMMS1 on the system bus: take the lock the tests take for it.
exec flock /run/vmms-stack/tests.lock "$BIN/vmms-bench" run --vmmsd "$BIN/vmmsd" --json bench/results.json "$@"
