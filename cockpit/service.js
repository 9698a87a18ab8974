// The vmms D-Bus API (dbus/*.xml) as the page sees it: one GetManagedObjects when the page
// loads or the service comes back, then InterfacesAdded / InterfacesRemoved /
// PropertiesChanged. Nothing is polled.
//
// Calls go WITHOUT Cockpit's superuser, so polkit sees the logged-in user and the service's
// rules decide, and with the allow-interactive-authorization flag ("i"), so that an
// administrator (sudo/wheel, AUTH_SELF_KEEP) can be asked for a password by Cockpit's polkit
// agent instead of getting InteractiveAuthorizationRequired.
//
// Signals that arrive while GetManagedObjects is on its way are kept and replayed, in order,
// on top of its reply: those the service sent before the reply are already in it (replaying
// them ends on the same values), those sent after it are newer.
//
// Recovery: a new owner of org.example.VMMS1 (vmmsd restarted) or Host.Connected turning
// true again (libvirtd back) starts one new GetManagedObjects, whose reply replaces
// everything; replies of an older load are dropped.

const BUS_NAME = "org.example.VMMS1";
export const ROOT_PATH = "/org/example/VMMS1";
export const HOST_PATH = `${ROOT_PATH}/Host`;
export const HOST_INTERFACE = "org.example.VMMS1.Host";
export const VM_INTERFACE = "org.example.VMMS1.VM";
export const SWITCH_INTERFACE = "org.example.VMMS1.Switch";
export const CHECKPOINT_INTERFACE = "org.example.VMMS1.Checkpoint";
export const JOB_INTERFACE = "org.example.VMMS1.Job";
export const SAN_INTERFACE = "org.example.VMMS1.SAN";
/** The object kinds besides Host and VM the inventory keeps: interface → the service's
 *  field (a Map path → properties) and the event it sends when one changes. */
const KINDS = {
    [SWITCH_INTERFACE]: "switches",
    [CHECKPOINT_INTERFACE]: "checkpoints",
    [JOB_INTERFACE]: "jobs",
    [SAN_INTERFACE]: "sans",
};
const OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager";
const PROPERTIES = "org.freedesktop.DBus.Properties";

export const ErrorName = {
    notAuthorized: "org.example.VMMS1.Error.NotAuthorized",
    interactiveRequired: "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
    hypervisorUnavailable: "org.example.VMMS1.Error.HypervisorUnavailable",
    notFound: "org.example.VMMS1.Error.NotFound",
    alreadyExists: "org.example.VMMS1.Error.AlreadyExists",
    invalidState: "org.example.VMMS1.Error.InvalidState",
    unknownMethod: "org.freedesktop.DBus.Error.UnknownMethod",
};

/** Errors that mean nobody owns the name (vmmsd stopped and not activatable). */
const SERVICE_ABSENT = new Set([
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.Spawn.ChildExited",
    "org.freedesktop.DBus.Error.Spawn.ExecFailed",
]);

/** Milliseconds. The service's polkit check may wait up to 300 s for a password typed into
 *  the agent, and Shutdown waits up to its TimeoutSeconds (default 120) for the guest. */
const CALL_TIMEOUT = 310_000;

/** The page's states as a whole. */
export const Status = Object.freeze({
    loading: "loading",            // first GetManagedObjects on its way
    ready: "ready",                // full inventory, live
    delegated: "delegated",        // the host refused the inventory; VMs opened by UUID only
    notAuthorized: "not-authorized",
    serviceDown: "service-down",   // nobody owns org.example.VMMS1
    failed: "failed",              // anything else (the message says what)
});

/** A D-Bus variant for a call: cockpit's JSON form. */
export const variant = (type, value) => ({ t: type, v: value });

/** {Key: [type, value]} → a{sv} in cockpit's JSON form; undefined values are left out. */
export function vardict(entries) {
    const result = {};
    for (const [key, [type, value]] of Object.entries(entries)) {
        if (value !== undefined) result[key] = variant(type, value);
    }
    return result;
}

function unwrap(properties) {
    const result = {};
    for (const [name, value] of Object.entries(properties ?? {})) {
        result[name] = value !== null && typeof value === "object" && "v" in value ? value.v : value;
    }
    return result;
}

/** The object path of a VM from its UUID (api.md: '-' replaced by '_'); null if it is not one. */
export function vmPathForUUID(text) {
    const uuid = String(text).trim().toLowerCase();
    if (!/^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/.test(uuid)) return null;
    const plain = uuid.replaceAll("-", "");
    const dashed = [plain.slice(0, 8), plain.slice(8, 12), plain.slice(12, 16), plain.slice(16, 20), plain.slice(20)].join("_");
    return `${ROOT_PATH}/VM/${dashed}`;
}

export function isNotAuthorized(error) {
    return error?.name === ErrorName.notAuthorized || error?.name === ErrorName.interactiveRequired ||
        error?.problem === "access-denied";
}

/** A message for people: the service's own text (it names the problem and the remedy). */
export function errorMessage(error) {
    if (!error) return "";
    if (error.message) return error.message;
    return cockpit.message(error);
}

/**
 * Events (all plain Events, read the service's fields afterwards):
 *   "status"  the page-wide status or its problem changed
 *   "host"    Host properties changed
 *   "vms"     VMs were added, removed or changed; event.paths is a Set, or null for "all"
 *   "switches", "checkpoints", "jobs", "sans"   the same for those objects (event.paths)
 *   "job-completed"   a Job's Completed signal; event.path, event.state, event.errorName,
 *                     event.errorMessage
 */
export class VMMSService extends EventTarget {
    constructor() {
        super();
        this.status = Status.loading;
        this.problem = null;           // {name, message} behind notAuthorized / failed
        this.host = null;              // Host properties, null until read (or refused)
        this.vms = new Map();          // VM object path → VM properties
        this.switches = new Map();     // Switch path → properties (and likewise below)
        this.checkpoints = new Map();
        this.jobs = new Map();
        this.sans = new Map();
        this.owner = undefined;        // unique name of org.example.VMMS1's owner, null: none
        this._loadedFrom = undefined;  // the owner whose inventory we show
        this._generation = 0;
        this._buffer = null;           // signals held while GetManagedObjects is on its way
        this._user = cockpit.user().then(user => user.name, () => "");

        this._client = cockpit.dbus(BUS_NAME, { bus: "system" });
        this._client.subscribe({ path_namespace: ROOT_PATH, interface: PROPERTIES, member: "PropertiesChanged" },
                               (path, _i, _m, args) => this._signal("changed", path, args));
        this._client.subscribe({ path: ROOT_PATH, interface: OBJECT_MANAGER, member: "InterfacesAdded" },
                               (path, _i, _m, args) => this._signal("added", path, args));
        this._client.subscribe({ path: ROOT_PATH, interface: OBJECT_MANAGER, member: "InterfacesRemoved" },
                               (path, _i, _m, args) => this._signal("removed", path, args));
        this._client.subscribe({ path_namespace: `${ROOT_PATH}/Job`, interface: JOB_INTERFACE, member: "Completed" },
                               (path, _i, _m, args) => this._signal("completed", path, args));
        // The bridge tells us the name's owner when the channel opens and whenever it changes.
        this._client.addEventListener("owner", (_event, owner) => this._ownerChanged(owner));
        this._client.addEventListener("close", (_event, options) => {
            this._setStatus(Status.failed, { name: options?.problem ?? "disconnected", message: cockpit.message(options ?? {}) });
        });
    }

    // MARK: loading

    /** Reads the whole inventory: one GetManagedObjects. Also what "Try again" does (a call
     *  to an activatable but stopped service starts it). */
    async load() {
        const generation = ++this._generation;
        this._buffer = [];
        if (this.status !== Status.ready) this._setStatus(Status.loading);
        try {
            const [objects] = await this._call(ROOT_PATH, OBJECT_MANAGER, "GetManagedObjects", [], "");
            if (generation !== this._generation) return;
            this._loadedFrom = this.owner ?? undefined;
            this._replaceInventory(objects);
            const held = this._buffer;
            this._buffer = null;
            for (const [kind, path, args] of held) this._apply(kind, path, args);
            // Without the Host object the service gave us only the VMs polkit lets us read
            // one by one (a per-VM rule): signals do not reach us, so this is delegated mode.
            this._setStatus(this.host ? Status.ready : Status.delegated);
        } catch (error) {
            if (generation !== this._generation) return;
            this._buffer = null;
            if (isNotAuthorized(error)) {
                await this._loadDelegated(error, generation);
            } else if (SERVICE_ABSENT.has(error?.name)) {
                this._clear();
                this._setStatus(Status.serviceDown, error);
            } else {
                this._setStatus(Status.failed, error);
            }
        }
    }

    _replaceInventory(objects) {
        this.host = null;
        this.vms = new Map();
        for (const field of Object.values(KINDS)) this[field] = new Map();
        for (const [path, interfaces] of Object.entries(objects ?? {})) {
            if (interfaces[HOST_INTERFACE]) this.host = unwrap(interfaces[HOST_INTERFACE]);
            if (interfaces[VM_INTERFACE]) this.vms.set(path, unwrap(interfaces[VM_INTERFACE]));
            for (const [iface, field] of Object.entries(KINDS)) {
                if (interfaces[iface]) this[field].set(path, unwrap(interfaces[iface]));
            }
        }
        this._emit("host");
        this._emit("vms", null);
        for (const field of Object.values(KINDS)) this._emit(field, null);
    }

    _clear() {
        this.host = null;
        this.vms = new Map();
        for (const field of Object.values(KINDS)) this[field] = new Map();
        this._emit("host");
        this._emit("vms", null);
        for (const field of Object.values(KINDS)) this._emit(field, null);
    }

    _ownerChanged(owner) {
        const previous = this.owner;
        this.owner = owner ?? null;
        if (!this.owner) {
            // vmmsd went away (or never ran): nothing shown is current any more.
            this._generation += 1;
            this._buffer = null;
            this._loadedFrom = undefined;
            this._clear();
            this._setStatus(Status.serviceDown);
        } else if (previous === null && this._buffer) {
            // Our own call is what started it (D-Bus activation); its reply is on the way.
        } else if (this.owner !== previous && this.owner !== this._loadedFrom) {
            this.load();
        }
    }

    // MARK: per-VM delegation

    /** The host refused the inventory. A user whom polkit rules grant single VMs can still
     *  read those VMs' properties (the check carries vm.name / vm.uuid): open the ones this
     *  browser remembers. Signals do not reach such users (the bus policy delivers them to
     *  administrators only), so their VMs are re-read after each of their own actions. */
    async _loadDelegated(refusal, generation) {
        this._clear();
        const remembered = await this._remembered();
        const results = await Promise.allSettled(remembered.map(path => this._readVM(path)));
        if (generation !== this._generation) return;
        results.forEach((result, index) => {
            if (result.status === "fulfilled") this.vms.set(remembered[index], result.value);
        });
        this._emit("vms", null);
        this._setStatus(this.vms.size > 0 ? Status.delegated : Status.notAuthorized, refusal);
    }

    /** Opens one VM by UUID or name (LookupVM, which the service authorizes as a read of
     *  that VM, so a delegated user may use the name too). Resolves to its path. */
    async openVM(nameOrUUID) {
        let path = vmPathForUUID(nameOrUUID);
        if (!path) [path] = await this._call(HOST_PATH, HOST_INTERFACE, "LookupVM", [String(nameOrUUID).trim()], "s");
        const properties = await this._readVM(path);
        this.vms.set(path, properties);
        await this._remember(path);
        this._emit("vms", new Set([path]));
        if (this.status === Status.notAuthorized) this._setStatus(Status.delegated, this.problem);
        return path;
    }

    async _readVM(path) {
        const [properties] = await this._call(path, PROPERTIES, "GetAll", [VM_INTERFACE], "s");
        return unwrap(properties);
    }

    /** Re-reads one VM; only needed where signals do not arrive (delegated mode). */
    async refresh(path) {
        try {
            this.vms.set(path, await this._readVM(path));
        } catch (error) {
            if (error?.name !== ErrorName.notFound) throw error;
            this.vms.delete(path);
        }
        this._emit("vms", new Set([path]));
    }

    async _storageKey() {
        return `vmms:delegated-vms:${await this._user}`;
    }

    async _remembered() {
        const key = await this._storageKey();
        try {
            const list = JSON.parse(window.localStorage.getItem(key) ?? "[]");
            return Array.isArray(list) ? list.filter(path => typeof path === "string" && path.startsWith(`${ROOT_PATH}/VM/`)) : [];
        } catch {
            return [];
        }
    }

    async _remember(path) {
        const key = await this._storageKey();
        const list = new Set(await this._remembered());
        list.add(path);
        try {
            window.localStorage.setItem(key, JSON.stringify([...list]));
        } catch {
            // Private browsing: the VM stays open for this page only.
        }
    }

    // MARK: signals

    _signal(kind, path, args) {
        if (this._buffer) {
            this._buffer.push([kind, path, args]);
        } else if (this.status === Status.ready) {
            this._apply(kind, path, args);
        }
    }

    _apply(kind, path, args) {
        if (kind === "changed") {
            const [iface, changed, invalidated] = args;
            this._patch(path, iface, unwrap(changed));
            if (invalidated?.length) this._reread(path, iface, invalidated);
        } else if (kind === "added") {
            const [objectPath, interfaces] = args;
            if (interfaces[VM_INTERFACE]) {
                this.vms.set(objectPath, unwrap(interfaces[VM_INTERFACE]));
                this._emit("vms", new Set([objectPath]));
            }
            if (interfaces[HOST_INTERFACE]) {
                this.host = unwrap(interfaces[HOST_INTERFACE]);
                this._emit("host");
            }
            for (const [iface, field] of Object.entries(KINDS)) {
                if (!interfaces[iface]) continue;
                this[field].set(objectPath, unwrap(interfaces[iface]));
                this._emit(field, new Set([objectPath]));
            }
        } else if (kind === "removed") {
            const [objectPath, interfaces] = args;
            if (interfaces.includes(VM_INTERFACE) && this.vms.delete(objectPath)) this._emit("vms", new Set([objectPath]));
            for (const [iface, field] of Object.entries(KINDS)) {
                if (interfaces.includes(iface) && this[field].delete(objectPath)) this._emit(field, new Set([objectPath]));
            }
        } else if (kind === "completed") {
            // Job.Completed(s state, s error_name, s error_message): the job's last word, also
            // when its PropertiesChanged raced it.
            const [state, errorName, message] = args;
            const job = this.jobs.get(path);
            if (job) {
                Object.assign(job, { State: state, ErrorName: errorName, ErrorMessage: message });
                if (state === "Completed") job.PercentComplete = 100;
                this._emit("jobs", new Set([path]));
            }
            const event = new Event("job-completed");
            Object.assign(event, { path, state, errorName, errorMessage: message });
            this.dispatchEvent(event);
        }
    }

    _patch(path, iface, changed) {
        const field = KINDS[iface];
        if (field) {
            const object = this[field].get(path);
            if (!object) return;
            Object.assign(object, changed);
            this._emit(field, new Set([path]));
        } else if (iface === VM_INTERFACE) {
            const vm = this.vms.get(path);
            if (!vm) return;
            Object.assign(vm, changed);
            this._emit("vms", new Set([path]));
        } else if (iface === HOST_INTERFACE && path === HOST_PATH && this.host) {
            const wasConnected = this.host.Connected;
            Object.assign(this.host, changed);
            this._emit("host");
            // libvirtd is back: the service re-reads libvirt and signals what changed, but a
            // fresh inventory also covers whatever happened while it was away.
            if (changed.Connected === true && wasConnected === false) this.load();
        }
    }

    /** Properties announced as changed without a value (none of ours today). */
    async _reread(path, iface, names) {
        for (const name of names) {
            try {
                const [value] = await this._call(path, PROPERTIES, "Get", [iface, name], "ss");
                this._patch(path, iface, unwrap({ [name]: value }));
            } catch {
                // The object went away meanwhile; InterfacesRemoved follows.
            }
        }
    }

    // MARK: calls

    _call(path, iface, method, args, signature) {
        return this._client.call(path, iface, method, args, { type: signature, flags: "i", timeout: CALL_TIMEOUT });
    }

    /** Host.CheckHealth: resolves to [{rule, severity, message}], errors first. */
    async checkHealth() {
        const [findings] = await this._call(HOST_PATH, HOST_INTERFACE, "CheckHealth", [], "");
        return findings.map(([rule, severity, message]) => ({ rule, severity, message }));
    }

    /** A VM method; resolves to its out arguments. */
    async callVM(path, method, args = [], signature = "") {
        try {
            return await this._call(path, VM_INTERFACE, method, args, signature);
        } finally {
            // No signals reach delegated users: read the VM again (a deleted one drops out).
            if (this.status === Status.delegated) this.refresh(path).catch(() => {});
        }
    }

    /** Writes a VM property (Notes, Autostart). */
    async setVMProperty(path, name, type, value) {
        try {
            await this._call(path, PROPERTIES, "Set", [VM_INTERFACE, name, variant(type, value)], "ssv");
        } finally {
            if (this.status === Status.delegated) this.refresh(path).catch(() => {});
        }
    }

    /** CreateVM; resolves to the new VM's path. `settings` is {Key: [type, value]}. */
    async createVM(name, settings) {
        const [path] = await this._call(HOST_PATH, HOST_INTERFACE, "CreateVM", [name, vardict(settings)], "sa{sv}");
        return path;
    }

    /** A method of any vmms object (Switch, Checkpoint, Job, SAN); resolves to its out
     *  arguments. */
    callObject(path, iface, method, args = [], signature = "") {
        return this._call(path, iface, method, args, signature);
    }

    /** Host.CreateSwitch; resolves to the new switch's path. `options` is {Key: [type, value]}. */
    async createSwitch(name, type, options) {
        const [path] = await this._call(HOST_PATH, HOST_INTERFACE, "CreateSwitch", [name, type, vardict(options)], "ssa{sv}");
        return path;
    }

    /** A name for a switch's path in the lists (its Name, or the path's last part). */
    switchName(path) {
        if (!path || path === "/") return "";
        return this.switches.get(path)?.Name ?? path.split("/").pop();
    }

    /** The checkpoints of a VM in the order of its Checkpoints property (creation order). */
    checkpointsOf(vmPath) {
        const vm = this.vms.get(vmPath);
        return (vm?.Checkpoints ?? []).map(path => ({ path, ...(this.checkpoints.get(path) ?? {}) }));
    }

    // MARK: events

    _setStatus(status, problem = null) {
        const normalized = problem ? { name: problem.name ?? problem.problem ?? null, message: errorMessage(problem) } : null;
        if (this.status === status && JSON.stringify(this.problem) === JSON.stringify(normalized)) return;
        this.status = status;
        this.problem = normalized;
        this._emit("status");
    }

    _emit(type, paths) {
        const event = new Event(type);
        if (type === "vms" || Object.values(KINDS).includes(type)) event.paths = paths ?? null;
        this.dispatchEvent(event);
    }
}
