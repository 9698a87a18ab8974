#!/usr/bin/env bash
# `make run`: vmmsd on a private session bus over libvirt's test:///default driver; no root,
# no libvirtd. Prints how to talk to it once vmmsd owns its name; Ctrl-C stops both and
# exits 0. Refuses to start while another `make run` of this tree is running.
#
# Usage: scripts/run.sh VMMSD_BINARY RUN_DIRECTORY
set -uo pipefail
VMMSD=$1
RUN_DIR=$2
BUS="unix:path=$RUN_DIR/bus"

# On a terminal, run in a process group of our own in the foreground (job control), so the
# terminal's Ctrl-C reaches vmmsd and this script but not make, which would otherwise die
# of it and report an error after a clean stop.
if [[ -t 0 && -z ${VMMS_RUN_INNER:-} ]]; then
    set -m
    VMMS_RUN_INNER=1 "$0" "$@" &
    fg %1 >/dev/null
    exit $?
fi

mkdir -p "$RUN_DIR"
if [[ -s $RUN_DIR/run.pid ]] && kill -0 "$(cat "$RUN_DIR/run.pid")" 2>/dev/null; then
    echo "make run is already running (pid $(cat "$RUN_DIR/run.pid"), bus $BUS); stop it first (Ctrl-C in its terminal)." >&2
    exit 1
fi
echo $$ >"$RUN_DIR/run.pid"
rm -f "$RUN_DIR/bus"

BUS_PID="" VMMSD_PID=""
stop() {
    [[ -n $VMMSD_PID ]] && kill "$VMMSD_PID" 2>/dev/null
    [[ -n $VMMSD_PID ]] && wait "$VMMSD_PID" 2>/dev/null
    [[ -n $BUS_PID ]] && kill "$BUS_PID" 2>/dev/null
    [[ -n $BUS_PID ]] && wait "$BUS_PID" 2>/dev/null
    rm -f "$RUN_DIR/run.pid" "$RUN_DIR/bus"
}
trap 'stop; echo; echo "vmms stopped."; exit 0' INT TERM

dbus-daemon --session --nofork --nopidfile --address="$BUS" &
BUS_PID=$!
for _ in $(seq 200); do busctl --address="$BUS" list >/dev/null 2>&1 && break; sleep 0.05; done

"$VMMSD" --address "$BUS" --connect test:///default --state-dir "$RUN_DIR/state" &
VMMSD_PID=$!
ready=""
for _ in $(seq 600); do
    if busctl --address="$BUS" status org.example.VMMS1 >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$VMMSD_PID" 2>/dev/null || break
    sleep 0.05
done
if [[ -z $ready ]]; then
    echo "vmmsd did not start (see its messages above)." >&2
    stop
    exit 1
fi

cat <<TEXT

vmms is running on a private bus. Try, in another terminal:
  busctl --address=$BUS introspect org.example.VMMS1 /org/example/VMMS1/Host
  gdbus call --address $BUS --dest org.example.VMMS1 --object-path /org/example/VMMS1 \\
        --method org.freedesktop.DBus.ObjectManager.GetManagedObjects
Press Ctrl-C to stop.

TEXT
wait "$VMMSD_PID"
status=$?
# Ctrl-C runs the trap instead of getting here; vmmsd ended on its own.
echo "vmmsd exited with status $status" >&2
VMMSD_PID=""
stop
exit "$status"
