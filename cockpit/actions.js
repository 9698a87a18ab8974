// The power operations of the VM interface, the states each is allowed from (as
// dbus/org.example.VMMS1.VM.xml says; the service still decides and answers InvalidState),
// and running one over several VMs.

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

/** One power action on one VM. */
export function powerCall(service, action, path) {
    return service.callVM(path, action.method, action.args ? action.args() : [], action.signature ?? "");
}

/** Delete (Remove-VM) with its options. */
export function deleteCall(service, path, { deleteDisks, force }) {
    return service.callVM(path, "Delete", [vardict({ DeleteDisks: ["b", deleteDisks], Force: ["b", force] })], "a{sv}");
}
