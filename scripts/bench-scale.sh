#!/usr/bin/env bash
# make bench-scale: make bench at 1,000 and at 10,000 defined VMs in one go, then how each
# figure grew between the two (vmms-bench compare): inventory, start-up and memory should grow
# at most like N, one VM's read, power operation and event not at all.
#   scripts/bench-scale.sh [--small N] [--large N]     (defaults 1000 and 10000; root)
# Writes bench/results-<N>.json for both runs and bench/scale.json; the tables go to stdout.
# At 10,000 VMs libvirt-dbus's inventory takes about a minute a round, so that run does one
# round of each libvirt-dbus variant and 10 of vmms's.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
SCRATCH=${VMMS_BENCH_SCRATCH:-$REPO_ROOT/.build-bench}
SWIFT=${SWIFT:-swift}
SMALL=1000
LARGE=10000
while (($#)); do
    case $1 in
        --small) SMALL=$2; shift 2 ;;
        --large) LARGE=$2; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "bench-scale: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $SMALL =~ ^[0-9]+$ && $LARGE =~ ^[0-9]+$ && $SMALL -ge 5 && $LARGE -gt $SMALL ]] \
    || { echo "bench-scale: need 5 <= --small < --large" >&2; exit 2; }
cd "$REPO_ROOT"

"$SCRIPT_DIR/bench.sh" --vms "$SMALL" --json "bench/results-$SMALL.json"
"$SCRIPT_DIR/bench.sh" --vms "$LARGE" --json "bench/results-$LARGE.json" --libvirt-rounds 1 --vmms-rounds 10
BIN=$("$SWIFT" build -c release --scratch-path "$SCRATCH" --show-bin-path)
"$BIN/vmms-bench" compare "bench/results-$SMALL.json" "bench/results-$LARGE.json" --json bench/scale.json
