// The power operations of the VM interface and Checkpoint, the states each is allowed from
// (as dbus/org.example.VMMS1.VM.xml says; the service still decides and answers
// InvalidState), and running one over several VMs.

import { vardict, errorMessage } from "./service.js";

const _ = cockpit.gettext;

export const POWER_ACTIONS = [
    { id: "start", method: "Start", label: _("Start"), verb: _("Starting"), from: ["Off", "Saved"] },
    { id: "shutdown", method: "Shutdown", label: _("Shut down"), verb: _("Shutting down"), from: ["Running"],
      args: () => [vardict({})], signature: "a{sv}" },
    { id: "turnoff", method: "TurnOff", label: _("Turn off"), verb: _("Turning off"),
      from: ["Running", "Paused", "Starting", "Stopping", "Crashed"] },
    { id: "save", method: "Save", label: _("Save"), verb: _("Saving"), from: ["Running", "Paused"] },
    { id: "pause", method: "Pause", label: _("Pause"), verb: _("Pausing"), from: ["Running"] },
    { id: "resume", method: "Resume", label: _("Resume"), verb: _("Resuming"), from: ["Paused"] },
    { id: "reset", method: "Reset", label: _("Reset"), verb: _("Resetting"), from: ["Running", "Paused"] },
];

/** Checkpoint-VM from the list's toolbar, as Hyper-V Manager's Checkpoint action: no prompt,
 *  each VM's checkpoint gets Hyper-V's kind of name (defaultCheckpointName). */
export const CHECKPOINT = {
    id: "checkpoint", method: "Checkpoint", label: _("Checkpoint"), verb: _("Taking a checkpoint of"),
    from: ["Off", "Running", "Paused"], args: vm => [defaultCheckpointName(vm?.Name ?? "")], signature: "s",
    /** What the list says when it worked: for one VM its name, else how many. */
    done: (name, count) => cockpit.format(cockpit.ngettext("Took a checkpoint of $0.", "Took checkpoints of $1 virtual machines.", count), name, count),
};

/** Hyper-V's name for a new checkpoint ("<VM> - (12/2/2026 - 2:22:12 PM)") in the characters
 *  a vmms name may hold (letters, digits, space, "-", "_", ".", at most 64):
 *  "<VM> - YYYY-MM-DD HH.MM.SS", the VM's name shortened if need be. */
export function defaultCheckpointName(vmName, now = new Date()) {
    const two = n => String(n).padStart(2, "0");
    const stamp = ` - ${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())} ${two(now.getHours())}.${two(now.getMinutes())}.${two(now.getSeconds())}`;
    return vmName.slice(0, 64 - stamp.length).trimEnd() + stamp;
}

/** Reboot is offered on the VM page only (Restart-VM); the list keeps Hyper-V Manager's set. */
export const REBOOT = { id: "reboot", method: "Reboot", label: _("Restart"), verb: _("Restarting"), from: ["Running"] };

export function allowed(action, state) {
    return action.from.includes(state);
}

/** At most this many calls in flight, so 1,000 selected VMs do not hit the bus's limit of
 *  pending replies per connection. */
const PARALLEL = 8;

/**
 * Runs `call(path)` for every path, PARALLEL at a time. Resolves to the failures as
 * [{path, message}] (never rejects).
 */
export async function runForEach(paths, call) {
    const queue = [...paths];
    const failures = [];
    async function worker() {
        while (queue.length > 0) {
            const path = queue.shift();
            try {
                await call(path);
            } catch (error) {
                failures.push({ path, name: error?.name ?? null, message: errorMessage(error) });
            }
        }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
    return failures;
}

/** One power action (or CHECKPOINT) on one VM. */
export function powerCall(service, action, path) {
    return service.callVM(path, action.method, action.args ? action.args(service.vms.get(path)) : [], action.signature ?? "");
}

/** Delete (Remove-VM) with its options. */
export function deleteCall(service, path, { deleteDisks, force }) {
    return service.callVM(path, "Delete", [vardict({ DeleteDisks: ["b", deleteDisks], Force: ["b", force] })], "a{sv}");
}
