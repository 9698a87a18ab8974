#!/usr/bin/env bash
# make bench-checkpoints: a vmms checkpoint of a running 256 MiB VM and its Apply, against
# `virsh snapshot-create-as --memspec` (and `virsh restore` of that image) on the same VM,
# both under TCG, on the real stack. Runs as root with this tree's vmmsd (VMMSD=… to pick
# another build); takes the test lock so no test's vmmsd holds the bus name meanwhile.
#   scripts/bench-checkpoints.sh [rounds]        (default 5)
set -euo pipefail

ROUNDS=${1:-5}
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
VMMSD=${VMMSD:-$REPO_ROOT/.build/debug/vmmsd}
[[ $(id -u) -eq 0 ]] || { echo "bench-checkpoints: must run as root" >&2; exit 1; }
[[ -x $VMMSD ]] || { echo "bench-checkpoints: no vmmsd at $VMMSD (swift build first)" >&2; exit 1; }

if [[ -z ${BENCH_LOCKED:-} ]]; then
    mkdir -p /run/vmms-stack
    BENCH_LOCKED=1 exec flock /run/vmms-stack/tests.lock "$0" "$@"
fi

STATE=$(mktemp -d /tmp/vmms-bench-ckpt-XXXXXX)
SCRATCH=$(mktemp -d /var/tmp/vmms-bench-virsh-XXXXXX)
chmod 711 "$SCRATCH"   # QEMU (libvirt-qemu) opens the overlays by path
NAME=ckbench-$$
VIRSH="virsh -c qemu:///system"
BUS=(busctl --system --timeout=300)
"$VMMSD" --system --connect qemu:///system --accelerator tcg --state-dir "$STATE" 2>"$STATE.log" &
VMMSD_PID=$!
cleanup() {
    [[ -n ${VM:-} ]] && "${BUS[@]}" call org.example.VMMS1 "$VM" org.example.VMMS1.VM Delete 'a{sv}' 2 DeleteDisks b true Force b true >/dev/null 2>&1 || true
    $VIRSH destroy "$NAME" >/dev/null 2>&1 || true
    $VIRSH undefine "$NAME" --managed-save --nvram >/dev/null 2>&1 || true
    kill "$VMMSD_PID" 2>/dev/null || true
    wait "$VMMSD_PID" 2>/dev/null || true
    [[ -n ${DISK:-} ]] && rm -f "$DISK"
    rm -rf "$STATE" "$STATE.log" "$SCRATCH"
}
trap cleanup EXIT
for _ in $(seq 200); do "${BUS[@]}" status org.example.VMMS1 2>/dev/null | grep -q "^PID=$VMMSD_PID$" && break; sleep 0.05; done

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

VM=$("${BUS[@]}" call org.example.VMMS1 /org/example/VMMS1/Host org.example.VMMS1.Host CreateVM 'sa{sv}' "$NAME" 3 \
        Generation u 1 MemoryStartupBytes t 268435456 NewDiskSizeBytes t 67108864 | cut -d'"' -f2)
DISK=$("${BUS[@]}" get-property org.example.VMMS1 "$VM" org.example.VMMS1.VM HardDisks | cut -d'"' -f2)
"${BUS[@]}" call org.example.VMMS1 "$VM" org.example.VMMS1.VM Start
sleep 2

vmms_take=() vmms_apply=() virsh_take=() virsh_restore=()
for i in $(seq "$ROUNDS"); do
    t0=$(now); CP=$("${BUS[@]}" call org.example.VMMS1 "$VM" org.example.VMMS1.VM Checkpoint s "b$i" | cut -d'"' -f2); t1=$(now)
    vmms_take+=("$(ms "$t0" "$t1")")
    "${BUS[@]}" call org.example.VMMS1 "$VM" org.example.VMMS1.VM TurnOff
    t0=$(now); "${BUS[@]}" call org.example.VMMS1 "$CP" org.example.VMMS1.Checkpoint Apply; t1=$(now)
    vmms_apply+=("$(ms "$t0" "$t1")")
    "${BUS[@]}" call org.example.VMMS1 "$VM" org.example.VMMS1.VM Start
    sleep 1
done
# Fold the checkpoints away, so virsh works on the VM's own disk.
for i in $(seq "$ROUNDS"); do
    "${BUS[@]}" call org.example.VMMS1 "$VM/Checkpoint/b$i" org.example.VMMS1.Checkpoint Delete 'a{sv}' 0
done
for i in $(seq "$ROUNDS"); do
    t0=$(now)
    $VIRSH snapshot-create-as "$NAME" "v$i" --no-metadata --memspec "file=$SCRATCH/v$i.mem,snapshot=external" \
        --diskspec "vda,file=$SCRATCH/v$i.qcow2" >/dev/null
    t1=$(now)
    virsh_take+=("$(ms "$t0" "$t1")")
done
$VIRSH destroy "$NAME" >/dev/null
for i in $(seq "$ROUNDS"); do
    t0=$(now); $VIRSH restore "$SCRATCH/v$i.mem" --paused >/dev/null; t1=$(now)
    virsh_restore+=("$(ms "$t0" "$t1")")
    $VIRSH destroy "$NAME" >/dev/null
done

mt=$(printf '%s\n' "${vmms_take[@]}" | median); ma=$(printf '%s\n' "${vmms_apply[@]}" | median)
vt=$(printf '%s\n' "${virsh_take[@]}" | median); vr=$(printf '%s\n' "${virsh_restore[@]}" | median)
printf '%-58s %10s\n' "scenario (running 256 MiB VM, TCG, $ROUNDS rounds)" "median ms"
printf '%-58s %10s\n' "vmms Checkpoint (NVRAM, memory, disks)" "$mt"
printf '%-58s %10s\n' "virsh snapshot-create-as --memspec --diskspec --no-metadata" "$vt"
printf '%-58s %10s\n' "vmms Apply (overlay, restore paused, managed save)" "$ma"
printf '%-58s %10s\n' "virsh restore --paused of the same-size memory image" "$vr"
awk -v a="$mt" -v b="$vt" -v c="$ma" -v d="$vr" 'BEGIN { printf "ratio Checkpoint / snapshot-create-as: %.2f; Apply / restore: %.2f\n", a / b, c / d }'
