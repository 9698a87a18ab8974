#!/usr/bin/env bash
# make bench-cockpit: time to the first full VM list in the browser, the vmms page against
# cockpit-machines, with N VMs defined on the same libvirtd, through the same cockpit-ws.
#   scripts/bench-cockpit.sh [--vms N] [--runs R] [--timeout S]   (defaults: 1000 VMs, 5 runs each)
# Runs as root on the real stack (scripts/stack.sh up). VMMSD=path picks the vmmsd binary
# (default: a release build in .build-bench, built when missing).
# For the time it runs it: defines N diskless TCG VMs benchck-NNNN, starts a vmmsd on the
# system bus (under the tests' lock), gives alice a random password and adds her to group
# libvirt (libvirt-dbus's bus policy), copies cockpit/ to ~alice/.local/share/cockpit/vmms and
# starts cockpit-ws --no-tls on a free 127.0.0.1 port. All of it is undone at the end, also
# when it fails (or is interrupted). Prints a table and writes bench/cockpit-results.json.
# A load that does not show every VM within --timeout is recorded as timed out (the rows shown
# then, the seconds waited, since when that count stood) and the run goes on: only real errors
# (no stack, a browser or WebDriver failure) make it exit non-zero.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
SWIFT=${SWIFT:-swift}
VMS=1000
RUNS=5
TIMEOUT=900   # seconds one page load may take; one still not complete then is recorded as timed out
PREFIX=benchck
USER_NAME=alice
while (($#)); do
    case $1 in
        --vms) VMS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "bench-cockpit: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $VMS =~ ^[0-9]+$ && $VMS -ge 1 && $VMS -le 9999 ]] || { echo "bench-cockpit: --vms 1..9999" >&2; exit 2; }
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || { echo "bench-cockpit: --runs 1.." >&2; exit 2; }
[[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -ge 1 ]] || { echo "bench-cockpit: --timeout 1.. (seconds)" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "bench-cockpit: must run as root (it defines VMs, starts vmmsd and cockpit-ws)" >&2; exit 1; }
cd "$REPO_ROOT"

log() { printf 'bench-cockpit: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -z ${BENCHCK_LOCKED:-} ]]; then
    "$SCRIPT_DIR/stack.sh" up >&2
    if ! dpkg-query -W -f='${Status}' cockpit-machines 2>/dev/null | grep -q 'install ok installed'; then
        log "installing cockpit-machines"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends cockpit-machines >&2 \
            || die "apt-get install cockpit-machines failed"
    fi
    if [[ -z ${VMMSD:-} ]]; then
        log "building vmmsd (release, scratch path .build-bench)"
        "$SWIFT" build -c release --scratch-path "$REPO_ROOT/.build-bench" --product vmmsd >&2
        VMMSD=$("$SWIFT" build -c release --scratch-path "$REPO_ROOT/.build-bench" --show-bin-path)/vmmsd
    fi
    export VMMSD
    # Its vmmsd owns org.example.VMMS1 on the system bus: take the lock the tests take for it.
    mkdir -p /run/vmms-stack
    log "waiting for the tests' lock (/run/vmms-stack/tests.lock)"
    BENCHCK_LOCKED=1 exec flock /run/vmms-stack/tests.lock "$0" --vms "$VMS" --runs "$RUNS" --timeout "$TIMEOUT"
fi
[[ -x $VMMSD ]] || die "no vmmsd at $VMMSD"
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
VIRSH=(virsh -q -c qemu:///system)
BROWSER=$REPO_ROOT/Tests/CockpitTests/cockpit_browser.py
WS=/usr/lib/cockpit/cockpit-ws
for f in "$WS" /usr/bin/chromium /usr/bin/chromedriver "$BROWSER" /usr/share/cockpit/machines/manifest.json; do
    [[ -e $f ]] || die "missing $f (scripts/stack.sh up installs it)"
done

WORK=$(mktemp -d /tmp/vmms-bench-cockpit-XXXXXX)
STATE=$WORK/state
HOME_DIR=$(getent passwd "$USER_NAME" | cut -d: -f6)
TARGET=$HOME_DIR/.local/share/cockpit/vmms
[[ ! -e $TARGET ]] || die "$TARGET exists already (a developer's copy?); remove it first"

# ------------------------------------------------------------------- cleanup (always)
VMMSD_PID="" WS_PID="" MEASURE_PID="" SAVED_SHADOW="" ADDED_GROUP="" CREATED_DIRS=() LIBVIRT_DBUS_WAS_UP=1 DEFINED=""
USER_PIDS_BEFORE="" SESSION_DIRS=()
remove_vms() {
    local names
    names=$("${VIRSH[@]}" list --all --name 2>/dev/null | grep "^$PREFIX-[0-9]*$" || true)
    [[ -n $names ]] || return 0
    sed "s/^/undefine /" <<<"$names" >"$WORK/undefine"
    "${VIRSH[@]}" <"$WORK/undefine" >/dev/null 2>&1 || true
    local left
    left=$("${VIRSH[@]}" list --all --name 2>/dev/null | grep -c "^$PREFIX-[0-9]*$" || true)
    [[ $left == 0 ]] || log "warning: $left $PREFIX-* VMs are still defined"
}
stop_pid() {   # PID NAME
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$2 (pid $pid) ignored SIGTERM, sending KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
}
# The user's Cockpit sessions start processes of hers that may outlive cockpit-ws: a session
# dbus-daemon (cockpit-bridge's), and for cockpit-machines libvirt-dbus --session and a
# session libvirtd, which make ~/.config/libvirt and ~/.cache/libvirt. Those processes of hers
# (by what they run: other suites' tests may run something else as alice meanwhile) that were
# not there before cockpit-ws started are ended by pid; the folders made are removed.
end_session_leftovers() {
    [[ -n $USER_PIDS_BEFORE ]] || return 0
    local pid i comm
    for ((i = 0; i < 20; i++)); do   # cockpit-bridge ends with cockpit-ws; give it a moment
        pgrep -u "$USER_NAME" -x cockpit-bridge >/dev/null || break
        sleep 0.1
    done
    for pid in $(ps -u "$USER_NAME" -o pid=); do
        grep -qx "$pid" <<<"$USER_PIDS_BEFORE" && continue
        comm=$(cat /proc/"$pid"/comm 2>/dev/null) || continue
        case $comm in cockpit-bridge|ssh-agent|dbus-daemon|libvirt-dbus|libvirtd) ;; *) continue ;; esac
        log "ending $USER_NAME's $comm (pid $pid), left by the run's Cockpit sessions"
        stop_pid "$pid" "$USER_NAME's $comm"
    done
    for d in "${SESSION_DIRS[@]}"; do rm -rf "$d"; done
}
cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM HUP   # finish the cleanup even if asked again
    stop_pid "$MEASURE_PID" "the browser (cockpit_browser.py measure)"
    stop_pid "$WS_PID" cockpit-ws
    end_session_leftovers
    stop_pid "$VMMSD_PID" vmmsd
    if [[ $LIBVIRT_DBUS_WAS_UP == 0 ]]; then
        # This run activated libvirt-dbus: stop it again.
        local pid
        pid=$(busctl --system status org.libvirt 2>/dev/null | sed -n 's/^PID=//p')
        [[ -n $pid && $(cat /proc/"$pid"/comm 2>/dev/null) == libvirt-dbus ]] && kill -TERM "$pid"
    fi
    [[ -n $SAVED_SHADOW ]] && usermod -p "$SAVED_SHADOW" "$USER_NAME"
    [[ -n $ADDED_GROUP ]] && gpasswd -d "$USER_NAME" libvirt >/dev/null
    rm -rf "$TARGET"
    local i
    for ((i = ${#CREATED_DIRS[@]} - 1; i >= 0; i--)); do rmdir "${CREATED_DIRS[i]}" 2>/dev/null; done
    [[ -n $DEFINED ]] && { log "removing the $PREFIX-* VMs"; remove_vms; }
    ((rc == 0)) || { log "failed (exit $rc); logs:"; tail -n 20 "$WORK"/*.log >&2 2>/dev/null; }
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------------------- the VMs
DEFINED=1
remove_vms   # a previous run's leftovers
log "defining $VMS VMs ($PREFIX-0001..)"
t0=$(date +%s.%N)
mkdir -p "$WORK/xml"
for ((i = 1; i <= VMS; i++)); do
    name=$(printf '%s-%04d' "$PREFIX" "$i")
    printf "<domain type='qemu'><name>%s</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>\n" \
        "$name" >"$WORK/xml/$name.xml"
    echo "define $WORK/xml/$name.xml"
done >"$WORK/define"
"${VIRSH[@]}" <"$WORK/define" >/dev/null 2>"$WORK/define.log" || true
count=$("${VIRSH[@]}" list --all --name | grep -c "^$PREFIX-[0-9]*$" || true)
[[ $count == "$VMS" ]] || die "defined $count of $VMS VMs: $(head -c 2000 "$WORK/define.log")"
log "defined $VMS VMs in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"

# --------------------------------------------------------------------------- vmmsd
for ((i = 0; i < 600; i++)); do busctl --system status org.example.VMMS1 >/dev/null 2>&1 || break; sleep 0.1; done
busctl --system status org.example.VMMS1 >/dev/null 2>&1 && die "org.example.VMMS1 is owned already although we hold the lock"
"$VMMSD" --system --connect qemu:///system --accelerator tcg --state-dir "$STATE" 2>"$WORK/vmmsd.log" &
VMMSD_PID=$!
for ((i = 0; i < 600; i++)); do
    busctl --system status org.example.VMMS1 2>/dev/null | grep -qx "PID=$VMMSD_PID" && break
    kill -0 "$VMMSD_PID" 2>/dev/null || die "vmmsd exited: $(tail -n 20 "$WORK/vmmsd.log")"
    sleep 0.1
done
busctl --system status org.example.VMMS1 2>/dev/null | grep -qx "PID=$VMMSD_PID" || die "vmmsd did not take org.example.VMMS1"
log "vmmsd $VMMSD running (pid $VMMSD_PID)"

# libvirt-dbus (cockpit-machines' backend) is bus-activated; start it now so that neither
# page's first load pays for its backend's start.
busctl --system status org.libvirt >/dev/null 2>&1 || LIBVIRT_DBUS_WAS_UP=0
busctl --system --timeout=120 call org.libvirt /org/libvirt/QEMU org.libvirt.Connect ListDomains u 0 >/dev/null \
    || die "libvirt-dbus (org.libvirt) does not answer"

# --------------------------------------------------------------------- the user alice
SAVED_SHADOW=$(getent shadow "$USER_NAME" | cut -d: -f2)
[[ -n $SAVED_SHADOW ]] || die "no shadow entry for $USER_NAME"
PASSWORD=benchck-$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
printf '%s:%s\n' "$USER_NAME" "$PASSWORD" | chpasswd || die "chpasswd failed"
( umask 077; printf '%s\n' "$PASSWORD" >"$WORK/password" )
if ! id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx libvirt; then
    gpasswd -a "$USER_NAME" libvirt >/dev/null && ADDED_GROUP=1
fi
owner=$(stat -c '%u:%g' "$HOME_DIR")
for d in "$HOME_DIR/.local" "$HOME_DIR/.local/share" "$HOME_DIR/.local/share/cockpit"; do
    [[ -d $d ]] && continue
    mkdir "$d" && chown "$owner" "$d" && CREATED_DIRS+=("$d")
done
cp -r "$REPO_ROOT/cockpit" "$TARGET" && chown -R "$owner" "$TARGET"

# ----------------------------------------------------------------------- cockpit-ws
USER_PIDS_BEFORE=$(ps -u "$USER_NAME" -o pid= | tr -d ' '; echo none)
for d in .config .cache; do
    if [[ ! -e $HOME_DIR/$d ]]; then SESSION_DIRS+=("$HOME_DIR/$d")
    elif [[ ! -e $HOME_DIR/$d/libvirt ]]; then SESSION_DIRS+=("$HOME_DIR/$d/libvirt")
    fi
done
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LANG=C.UTF-8 LC_ALL= "$WS" --no-tls --address 127.0.0.1 --port "$PORT" >"$WORK/cockpit-ws.log" 2>&1 &
WS_PID=$!
for ((i = 0; i < 200; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$WS_PID" 2>/dev/null || die "cockpit-ws exited"
    sleep 0.05
done
BASE=http://127.0.0.1:$PORT
log "cockpit-ws on $BASE"

# ----------------------------------------------------------------------- measuring
# vmms: the page's own mark of its first complete list (cockpit/vm-list.js).
VMMS_PAGE=/cockpit/@localhost/vmms/index.html
VMMS_READY="document.documentElement.dataset.vmmsList === 'complete' && (window.vmms?.service.vms.size ?? 0) >= $VMS"
# cockpit-machines: every benchck VM has its row in the "Virtual machines" listing (it renders
# every row; the vmms page renders the rows in view and knows all of them). Its "Hardware
# virtualization is disabled" notice (virt-host-validate under TCG) is dismissed beforehand,
# as a user does once with "Ignore".
MACHINES_PAGE=/cockpit/@localhost/machines/index.html
MACHINES_COUNT="document.querySelectorAll('table[aria-label=\"Virtual machines\"] tbody tr[data-row-id^=\"vm-$PREFIX-\"]').length"
MACHINES_READY="$MACHINES_COUNT >= $VMS"
# The rows each page has when a load times out: cockpit-machines' rows in its table; the VMs
# the vmms list holds (it renders only the rows in view).
VMMS_COUNT="window.vmms?.service.vms.size ?? 0"
if [[ -n ${BENCHCK_HOLD:-} ]]; then
    log "holding for $BENCHCK_HOLD s: base $BASE, password file $WORK/password"
    sleep "$BENCHCK_HOLD"
fi
measure() {   # PAGE READY COUNT OUT [measure options]
    local page=$1 ready=$2 count=$3 out=$4 rc=0; shift 4
    # In the background, so that an INT/TERM reaches the trap (and the cleanup) at once.
    /usr/bin/python3 "$BROWSER" measure --base "$BASE" --user "$USER_NAME" --password-file "$WORK/password" \
        --page "$page" --ready-js "$ready" --count-js "$count" --runs "$RUNS" --timeout "$TIMEOUT" "$@" \
        >"$out" 2>"$out.log" &
    MEASURE_PID=$!
    wait "$MEASURE_PID" || rc=$?
    MEASURE_PID=""
    ((rc == 0)) || die "measuring $page failed (exit $rc): $(tail -n 20 "$out.log")"
    grep '^run ' "$out.log" | sed 's/^/  /' >&2 || true
}
log "measuring the vmms page ($RUNS runs, at most $TIMEOUT s each)"
measure "$VMMS_PAGE" "$VMMS_READY" "$VMMS_COUNT" "$WORK/vmms.json"
log "measuring cockpit-machines ($RUNS runs, at most $TIMEOUT s each)"
measure "$MACHINES_PAGE" "$MACHINES_READY" "$MACHINES_COUNT" "$WORK/machines.json" --local-storage virtualization-disabled-ignored=true

mkdir -p "$REPO_ROOT/bench"
MACHINES_VERSION=$(dpkg-query -W -f='${Version}' cockpit-machines)
COCKPIT_VERSION=$(dpkg-query -W -f='${Version}' cockpit-ws)
/usr/bin/python3 - "$WORK/vmms.json" "$WORK/machines.json" "$REPO_ROOT/bench/cockpit-results.json" "$VMS" "$RUNS" \
    "$MACHINES_VERSION" "$COCKPIT_VERSION" "$VMMSD" "$TIMEOUT" <<'EOF'
import json, os, platform, statistics, sys, time
vmms_file, machines_file, out, vms, runs, machines_version, cockpit_version, vmmsd, timeout = sys.argv[1:]
vms, runs, timeout = int(vms), int(runs), float(timeout)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())


def summary(loads):
    """The complete loads' seconds and median, and the timed-out ones as they were."""
    complete = [load["seconds"] for load in loads if load["complete"]]
    timed_out = [load for load in loads if not load["complete"]]
    return {"seconds": complete, "median": statistics.median(complete) if complete else None,
            "timed_out": [{"waited": load["waited"], "rows": load["rows"], "rows_since": load.get("rows_since")}
                          for load in timed_out],
            "loads": loads}


vmms = summary(json.load(open(vmms_file))["runs"])
machines = summary(json.load(open(machines_file))["runs"])
result = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "host": {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(), "load_average": os.getloadavg()},
    "vms": vms, "runs": runs, "timeout": timeout,
    "command": f"make bench-cockpit BENCH_ARGS='--vms {vms} --runs {runs} --timeout {int(timeout)}'",
    "measure": "seconds from navigation start to the first frame with every VM listed (Tests/CockpitTests/cockpit_browser.py measure, headless Chromium, logged in as alice, page opened on its own); a load not complete within the timeout is listed under timed_out with the rows shown then, the seconds waited and since when that count stood",
    "vmms": {"page": "/cockpit/@localhost/vmms/index.html", **vmms,
             "data": "org.example.VMMS1 on the system bus through cockpit-bridge's D-Bus channel (one GetManagedObjects answered from vmmsd's in-memory model, then its signals)",
             "rows": "VMs the list holds (window.vmms.service.vms.size; it renders only the rows in view)",
             "vmmsd": vmmsd},
    "cockpit_machines": {"page": "/cockpit/@localhost/machines/index.html", "version": machines_version, **machines,
                         "data": "libvirt-dbus (org.libvirt, qemu:///system) on the system bus through cockpit-bridge; alice in group libvirt for the run",
                         "rows": "rows of its \"Virtual machines\" table"},
    "cockpit_ws": cockpit_version,
}
if vmms["median"] is not None and machines["median"] is not None:
    # Of the complete loads (with some of cockpit-machines' timed out: of those that were not).
    result["ratio_machines_over_vmms"] = machines["median"] / vmms["median"]
if vmms["median"] is not None and not vmms["timed_out"] and machines["timed_out"]:
    # The loads that timed out: cockpit-machines needed more than the time it was given.
    result["ratio_machines_over_vmms_at_least"] = min(t["waited"] for t in machines["timed_out"]) / vmms["median"]
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as file:
    json.dump(result, file, indent=2)
    file.write("\n")


def row(name, s):
    loads = []
    for load in s["loads"]:
        if load["complete"]:
            loads.append(f"{load['seconds']:.2f}")
        else:
            since = f", since {load['rows_since']:.0f} s" if load.get("rows_since") is not None else ""
            loads.append(f"timed out: {load['rows']}/{vms} rows after {load['waited']:.0f} s{since}")
    median = f"{s['median']:.2f}" if s["median"] is not None else "-"
    print(f"{name:<28} {median:>7}  {'; '.join(loads)}")


print(f"\nPage load with {vms} VMs (time to the first full list, seconds; {runs} runs each, at most {timeout:.0f} s; {result['date']})")
print(f"{'page':<28} {'median':>7}  runs")
row("vmms", vmms)
row("cockpit-machines " + machines_version, machines)
if "ratio_machines_over_vmms" in result:
    print(f"cockpit-machines / vmms: {result['ratio_machines_over_vmms']:.1f}x (medians of the complete loads)")
if "ratio_machines_over_vmms_at_least" in result:
    print(f"cockpit-machines / vmms: more than {result['ratio_machines_over_vmms_at_least']:.0f}x in the "
          f"{len(machines['timed_out'])} of {runs} loads that did not complete")
print("median: of the complete loads only")
print(f"vmms: {result['vmms']['data']}")
print(f"cockpit-machines: {result['cockpit_machines']['data']}")
print(f"wrote {out}")
EOF
