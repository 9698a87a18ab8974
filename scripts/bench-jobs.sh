#!/usr/bin/env bash
# make bench-jobs: Export and storage Move as vmms jobs against the tools they replace.
#   scripts/bench-jobs.sh [ROUNDS]        (default 3 rounds; the best of each is compared)
# Must run as root on the real stack. Defines one VM (vmmsbench-jobs) with a 2 GiB qcow2
# disk holding 1 GiB of data, starts its own vmmsd (VMMSD_BIN, default the release build in
# .build-bench), and times, with the page cache warm:
#   Export of the Off VM (until the job's State leaves Running) against
#   `qemu-img convert -O qcow2` and `cp --sparse=always` (each followed by sync) of the disk;
#   Move of the running VM's storage against `virsh blockcopy --transient-job --wait --pivot`
#   followed by sync (the Move writes the new files to disk before it removes the old ones).
# Everything it made is removed at the end, also when it fails.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
ROUNDS=${1:-3}
SWIFT=${SWIFT:-swift}
[[ $(id -u) -eq 0 ]] || { echo "bench-jobs: must run as root" >&2; exit 1; }
cd "$REPO_ROOT"
if [[ -z ${VMMSD_BIN:-} ]]; then
    "$SWIFT" build -c release --scratch-path .build-bench --product vmmsd
    VMMSD_BIN=$("$SWIFT" build -c release --scratch-path .build-bench --show-bin-path)/vmmsd
fi

NAME=vmmsbench-jobs
STATE=$(mktemp -d /tmp/vmms-bench-jobs-XXXXXX)
HOST=/org/example/VMMS1/Host
LOCK=/run/vmms-stack/tests.lock
mkdir -p /run/vmms-stack
exec 9>"$LOCK"
flock 9   # the system bus name is one test's or benchmark's at a time

"$VMMSD_BIN" --system --connect qemu:///system --accelerator tcg --state-dir "$STATE" 2>"$STATE.log" &
PID=$!
WORK=""
cleanup() {
    virsh -q -c qemu:///system destroy "$NAME" >/dev/null 2>&1 || true
    virsh -q -c qemu:///system undefine "$NAME" --nvram >/dev/null 2>&1 || true
    [[ -n $WORK ]] && rm -rf "$WORK"
    [[ -n ${DISK:-} ]] && rm -f "$DISK"
    virsh -q -c qemu:///system pool-refresh vmms-disks >/dev/null 2>&1 || true
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rm -rf "$STATE" "$STATE.log"
}
trap cleanup EXIT
for _ in $(seq 100); do busctl --system status org.example.VMMS1 >/dev/null 2>&1 && break; sleep 0.1; done

call() { busctl --system call org.example.VMMS1 "$@"; }
path() { cut -d'"' -f2; }
now() { date +%s.%N; }
wait_job() {
    while [[ $(busctl --system get-property org.example.VMMS1 "$1" org.example.VMMS1.Job State) == 's "Running"' ]]; do sleep 0.02; done
    local state; state=$(busctl --system get-property org.example.VMMS1 "$1" org.example.VMMS1.Job State)
    [[ $state == 's "Completed"' ]] || { echo "bench-jobs: job $1 ended $state" >&2; exit 1; }
}
best() { sort -n | head -1; }
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

VM=$(call $HOST org.example.VMMS1.Host CreateVM 'sa{sv}' "$NAME" 3 Generation u 2 \
       NewDiskSizeBytes t 2147483648 MemoryStartupBytes t 134217728 | path)
DISK=$(virsh -c qemu:///system domblklist "$NAME" | awk '$1 == "vda" {print $2}')
qemu-io -f qcow2 -c 'write -P 0x33 0 1G' "$DISK" >/dev/null
VMP=$(busctl --system get-property org.example.VMMS1 $HOST org.example.VMMS1.Host VirtualMachinePath | cut -d'"' -f2)
WORK="$VMP/vmmsbench-jobs-work"
rm -rf "$WORK"; mkdir -p "$WORK"
cat "$DISK" >/dev/null

declare -a export_t convert_t cp_t move_t blockcopy_t
for round in $(seq "$ROUNDS"); do
    rm -rf "${WORK:?}"/*
    t0=$(now); job=$(call "$VM" org.example.VMMS1.VM Export 'sa{sv}' "$WORK" 0 | path); wait_job "$job"; t1=$(now)
    export_t+=("$(minus "$t1" "$t0")")
    t0=$(now); qemu-img convert -O qcow2 "$DISK" "$WORK/convert.qcow2"; sync -f "$WORK/convert.qcow2"; t1=$(now)
    convert_t+=("$(minus "$t1" "$t0")")
    t0=$(now); cp --sparse=always "$DISK" "$WORK/cp.qcow2"; sync -f "$WORK/cp.qcow2"; t1=$(now)
    cp_t+=("$(minus "$t1" "$t0")")
done
EXPORTED=$(du -B1 "$WORK/$NAME/Virtual Hard Disks/"* | awk '{s += $1} END {print s}')

call "$VM" org.example.VMMS1.VM Start
for round in $(seq "$ROUNDS"); do
    mkdir -p "$WORK/move-$round" "$WORK/blockcopy-$round"
    t0=$(now); job=$(call "$VM" org.example.VMMS1.VM Move 'sa{sv}' "$WORK/move-$round" 0 | path); wait_job "$job"; t1=$(now)
    move_t+=("$(minus "$t1" "$t0")")
    t0=$(now)
    virsh -q -c qemu:///system blockcopy "$NAME" vda "$WORK/blockcopy-$round/b.qcow2" --format qcow2 --transient-job --wait --pivot >/dev/null
    sync -f "$WORK/blockcopy-$round/b.qcow2"
    t1=$(now)
    blockcopy_t+=("$(minus "$t1" "$t0")")
done

e=$(printf '%s\n' "${export_t[@]}" | best); c=$(printf '%s\n' "${convert_t[@]}" | best); s=$(printf '%s\n' "${cp_t[@]}" | best)
m=$(printf '%s\n' "${move_t[@]}" | best); b=$(printf '%s\n' "${blockcopy_t[@]}" | best)
faster=$(awk -v a="$c" -v b="$s" 'BEGIN { print (a < b) ? a : b }')
printf '%-44s %8s s   (rounds: %s)\n' "Export (2 GiB disk, 1 GiB data)" "$e" "${export_t[*]}"
printf '%-44s %8s s   (rounds: %s)\n' "qemu-img convert -O qcow2 + sync" "$c" "${convert_t[*]}"
printf '%-44s %8s s   (rounds: %s)\n' "cp --sparse=always + sync" "$s" "${cp_t[*]}"
printf '%-44s %8s     (target: at most 1.2)\n' "Export / faster of the two" "$(awk -v a="$e" -v b="$faster" 'BEGIN { printf "%.2f", a / b }')"
printf '%-44s %8s MiB\n' "exported disk, allocated" "$((EXPORTED >> 20))"
printf '%-44s %8s s   (rounds: %s)\n' "Move, running VM" "$m" "${move_t[*]}"
printf '%-44s %8s s   (rounds: %s)\n' "virsh blockcopy --transient-job --pivot + sync" "$b" "${blockcopy_t[*]}"
