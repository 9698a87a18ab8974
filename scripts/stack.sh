#!/usr/bin/env bash
# Bring up / tear down the real stack vmms runs against, on a machine WITHOUT systemd as
# PID 1 (CI containers, `make test`): system D-Bus, polkitd, virtlogd, libvirtd, plus the
# vmms bus policy, polkit actions and rules, the vmms-admins group and three test users:
#   alice  member of vmms-admins  -> polkit: yes            (Hyper-V Administrators)
#   bob    no extra groups        -> polkit: no             (ordinary user)
#   carol  member of sudo         -> polkit: auth_self_keep (Administrator under UAC)
#
# Usage: scripts/stack.sh up|down|status      (as root; every subcommand is idempotent)
#
# `up` only starts what is not already running and records the pids of what it started
# in /run/vmms-stack/, so `down` stops exactly those and nothing else.
# Logs: /var/log/vmms-stack/.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
STATE_DIR=/run/vmms-stack
LOG_DIR=/var/log/vmms-stack
RETRIES=${VMMS_STACK_RETRIES:-60}          # readiness polls, 0.5 s apart
POLKITD=/usr/lib/polkit-1/polkitd
DBUS_PIDFILE=/run/dbus/pid
DBUS_SOCKET=/run/dbus/system_bus_socket

# Runtime packages of the stack, and what the tests call (xmllint for virt-xml-validate;
# dnsmasq-base and iptables for libvirt networks, which libvirt only recommends; the iSCSI
# pool driver and QEMU's iSCSI block driver, which libvirtd loads only when it starts, and tgt,
# a user-space iSCSI target for the SAN tests; openssh-server/-client and systemd
# (systemd-stdio-bridge) for vmmsctl --host, bsdutils (script) for its pseudo-terminal tests;
# python3-dbus and python3-gi for the clients ResourceBoundsTests runs as the test users; for
# the Cockpit page's browser tests, Tests/CockpitTests: cockpit-ws and the bridge, cockpit-system
# for the shell the page sits in, headless Chromium with its WebDriver, and selenium to drive it).
# busybox: udhcpc, the DHCP client of the switch tests (Tests/IntegrationTests/SwitchTests.swift).
# socat: the migration tests relay TCP on their veth to this libvirtd's socket, so the second
# host can move VMs back (Tests/IntegrationTests/MigrationTests.swift).
# cockpit-machines: what make bench-cockpit (scripts/bench-cockpit.sh) compares the page with.
PACKAGES=(dbus-daemon dbus-bin polkitd libvirt-daemon-system libvirt-clients
          qemu-system-x86 qemu-utils ovmf libvirt-dbus libglib2.0-bin
          libxml2-utils dnsmasq-base iptables
          libvirt-daemon-driver-storage-iscsi-direct qemu-block-extra libiscsi-bin tgt
          openssh-server openssh-client systemd bsdutils python3-dbus python3-gi
          cockpit-ws cockpit-bridge cockpit-system chromium chromium-driver python3-selenium
          busybox socat)
PACKAGES+=(cockpit-machines)
# The Debian packaging tools, for Tests/InstallTests/DebPackageTests (make deb, lintian).
PACKAGES+=(debhelper dpkg-dev fakeroot lintian)

log()  { printf 'stack: %s\n' "$*"; }
die()  { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# pid_alive PID COMM: true if PID runs and its command name is COMM (guards against
# pid reuse and stale pid files).
pid_alive() {
    local pid=$1 comm=$2
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# pid from a pid file, empty if none
pid_from() { [[ -s $1 ]] && tr -dc '0-9' <"$1" || true; }

# wait_for DESCRIPTION COMMAND...: poll COMMAND until it succeeds, bounded.
wait_for() {
    local what=$1; shift
    local i
    for ((i = 0; i < RETRIES; i++)); do
        if "$@" >/dev/null 2>&1; then
            log "$what: ready"
            return 0
        fi
        sleep 0.5
    done
    die "$what: not ready after $((RETRIES / 2)) s (last try: $*); see $LOG_DIR/"
}

bus_call() {
    dbus-send --system --print-reply --reply-timeout=2000 \
        --dest=org.freedesktop.DBus /org/freedesktop/DBus "$@"
}
bus_ready()     { bus_call org.freedesktop.DBus.GetId; }
name_has_owner() { bus_call org.freedesktop.DBus.NameHasOwner "string:$1" | grep -q 'boolean true'; }
polkit_ready()  { name_has_owner org.freedesktop.PolicyKit1; }
libvirt_ready() { virsh -c qemu:///system version; }

# ---------------------------------------------------------------------------- packages
install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        log "packages: all present"
        return 0
    fi
    log "packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# ------------------------------------------------------------------- group and users
ensure_group() {
    getent group "$1" >/dev/null || { groupadd --system "$1"; log "group $1: created"; }
}

# ensure_user NAME [GROUP]: user with home and bash, optionally member of GROUP.
ensure_user() {
    local user=$1 group=${2:-}
    if ! getent passwd "$user" >/dev/null; then
        useradd --create-home --shell /bin/bash "$user"
        log "user $user: created"
    fi
    if [[ -n $group ]] && ! id -nG "$user" | tr ' ' '\n' | grep -qx "$group"; then
        usermod -aG "$group" "$user"
        log "user $user: added to $group"
    fi
}

setup_accounts() {
    ensure_group vmms-admins
    ensure_user alice vmms-admins
    ensure_user bob
    ensure_user carol sudo
}

# ------------------------------------------------------------------------ config files
install_file() {   # SRC DST MODE
    local src=$REPO_ROOT/$1 dst=$2 mode=$3
    [[ -f $src ]] || die "missing $src"
    if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
        return 0
    fi
    install -D -m "$mode" -o root -g root "$src" "$dst"
    log "installed $dst"
}

install_config() {
    install_file dbus/org.example.VMMS1.conf /usr/share/dbus-1/system.d/org.example.VMMS1.conf 0644
    install_file polkit/org.example.vmms1.policy /usr/share/polkit-1/actions/org.example.vmms1.policy 0644
    # polkitd watches rules.d with inotify and reloads changed rules on its own.
    install_file polkit/50-org.example.vmms1.rules /etc/polkit-1/rules.d/50-org.example.vmms1.rules 0644
}

# ---------------------------------------------------------------------------- devices
# Without udev, /dev/kvm stays root:root 0600. libvirt then probes QEMU as root with KVM
# but finds KVM unusable for the libvirt-qemu user when it validates its capability
# cache, so it re-probes QEMU on every connection (4-8 s per virsh call) and cannot
# start KVM guests. Do what Debian's udev rule does: group kvm, mode 0660.
fix_kvm_permissions() {
    [[ -c /dev/kvm ]] || { log "/dev/kvm: absent, guests will use TCG"; return 0; }
    getent group kvm >/dev/null || return 0
    if [[ $(stat -c '%G %a' /dev/kvm) != "kvm 660" && $(stat -c '%a' /dev/kvm) != 666 ]]; then
        chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
        log "/dev/kvm: set to root:kvm 0660 (no udev here)"
    fi
}

# ---------------------------------------------------------------------------- daemons
start_dbus() {
    local pid
    pid=$(pid_from "$DBUS_PIDFILE")
    if [[ -n $pid ]] && pid_alive "$pid" dbus-daemon; then
        log "dbus-daemon: running (pid $pid), reloading config"
        dbus-send --system --print-reply --type=method_call --dest=org.freedesktop.DBus \
            / org.freedesktop.DBus.ReloadConfig >/dev/null \
            || die "dbus-daemon: ReloadConfig failed"
        return 0
    fi
    if [[ -e $DBUS_PIDFILE ]]; then
        log "dbus-daemon: removing stale $DBUS_PIDFILE"
        rm -f "$DBUS_PIDFILE" "$DBUS_SOCKET"
    fi
    mkdir -p /run/dbus
    dbus-uuidgen --ensure
    dbus-daemon --system --fork >>"$LOG_DIR/dbus-daemon.log" 2>&1 \
        || die "dbus-daemon --system --fork failed; see $LOG_DIR/dbus-daemon.log"
    pid=$(pid_from "$DBUS_PIDFILE")
    [[ -n $pid ]] || die "dbus-daemon: no pid in $DBUS_PIDFILE"
    echo "$pid" >"$STATE_DIR/dbus-daemon.pid"
    log "dbus-daemon: started (pid $pid)"
}

start_polkitd() {
    if polkit_ready; then
        log "polkitd: running"
        return 0
    fi
    [[ -x $POLKITD ]] || die "$POLKITD not found (package polkitd)"
    # setsid: its own session, so it survives the calling shell/CI step.
    setsid "$POLKITD" --no-debug </dev/null >>"$LOG_DIR/polkitd.log" 2>&1 &
    echo $! >"$STATE_DIR/polkitd.pid"
    log "polkitd: started (pid $!)"
}

# start_libvirt_daemon NAME PIDFILE: virtlogd / libvirtd daemonize themselves and
# write their own pid file.
start_libvirt_daemon() {
    local name=$1 pidfile=$2 pid
    pid=$(pid_from "$pidfile")
    if [[ -n $pid ]] && pid_alive "$pid" "$name"; then
        log "$name: running (pid $pid)"
        return 0
    fi
    "$name" -d >>"$LOG_DIR/$name.log" 2>&1 || die "$name -d failed; see $LOG_DIR/$name.log"
    local i
    for ((i = 0; i < RETRIES; i++)); do
        pid=$(pid_from "$pidfile")
        [[ -n $pid ]] && pid_alive "$pid" "$name" && break
        sleep 0.5
    done
    [[ -n $pid ]] && pid_alive "$pid" "$name" || die "$name: did not write $pidfile"
    echo "$pid" >"$STATE_DIR/$name.pid"
    log "$name: started (pid $pid)"
}

check_libvirt() {
    local caps
    caps=$(virsh -c qemu:///system capabilities) \
        || die "virsh -c qemu:///system capabilities failed"
    grep -q "<domain type='qemu'" <<<"$caps" \
        || die "libvirt reports no QEMU (TCG) domain type; is qemu-system-x86 installed?"
    if grep -q "<domain type='kvm'" <<<"$caps"; then
        log "libvirt: qemu:///system offers kvm and qemu (TCG) guests"
    else
        log "libvirt: qemu:///system offers qemu (TCG) guests (no /dev/kvm)"
    fi
}

# --------------------------------------------------------------------------- commands
cmd_up() {
    need_root
    mkdir -p "$STATE_DIR" "$LOG_DIR"
    install_packages
    setup_accounts
    install_config
    fix_kvm_permissions

    start_dbus
    wait_for "system bus" bus_ready
    export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$DBUS_SOCKET

    start_polkitd
    wait_for "polkit (org.freedesktop.PolicyKit1)" polkit_ready

    start_libvirt_daemon virtlogd /run/virtlogd.pid
    start_libvirt_daemon libvirtd /run/libvirtd.pid
    wait_for "libvirt (qemu:///system)" libvirt_ready
    check_libvirt
    log "up"
}

# stop_recorded NAME: stop the process `up` started, if it is still that process.
stop_recorded() {
    local name=$1 file=$STATE_DIR/$1.pid pid i
    [[ -f $file ]] || return 0
    pid=$(pid_from "$file")
    if [[ -n $pid ]] && pid_alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            pid_alive "$pid" "$name" || break
            sleep 0.5
        done
        if pid_alive "$pid" "$name"; then
            log "$name: still running after 10 s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "$name: stopped (pid $pid)"
    fi
    rm -f "$file"
}

cmd_down() {
    need_root
    stop_recorded libvirtd
    stop_recorded virtlogd
    stop_recorded polkitd
    if [[ -f $STATE_DIR/dbus-daemon.pid ]]; then
        stop_recorded dbus-daemon
        rm -f "$DBUS_PIDFILE"
    fi
    log "down (installed files, users and groups are left in place)"
}

status_line() {   # NAME RUNNING(0/1) DETAIL
    local name=$1 ok=$2 detail=$3 who=""
    [[ -f $STATE_DIR/$name.pid ]] && who=" [started by stack.sh]"
    if [[ $ok == 0 ]]; then printf '%-12s running   %s%s\n' "$name" "$detail" "$who"
    else printf '%-12s stopped   %s\n' "$name" "$detail"; fi
}

cmd_status() {
    local rc=0 pid
    pid=$(pid_from "$DBUS_PIDFILE")
    if bus_ready >/dev/null 2>&1; then status_line dbus-daemon 0 "pid ${pid:-?}"
    else status_line dbus-daemon 1 ""; rc=1; fi
    if polkit_ready >/dev/null 2>&1; then status_line polkitd 0 "owns org.freedesktop.PolicyKit1"
    else status_line polkitd 1 ""; rc=1; fi
    pid=$(pid_from /run/virtlogd.pid)
    if [[ -n $pid ]] && pid_alive "$pid" virtlogd; then status_line virtlogd 0 "pid $pid"
    else status_line virtlogd 1 ""; rc=1; fi
    pid=$(pid_from /run/libvirtd.pid)
    if [[ -n $pid ]] && pid_alive "$pid" libvirtd; then status_line libvirtd 0 "pid $pid"
    else status_line libvirtd 1 ""; rc=1; fi
    return $rc
}

case ${1:-} in
    up)     cmd_up ;;
    down)   cmd_down ;;
    status) cmd_status ;;
    *)      echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
