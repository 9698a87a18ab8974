// The host's shared resources, each a view of its own: virtual switches (Hyper-V Manager's
// Virtual Switch Manager: Get-/New-/Remove-VMSwitch) and virtual SANs (Hyper-V's Virtual SAN
// Manager). Both come from the inventory (GetManagedObjects + signals); nothing is polled.

import { h, fill, setText } from "./dom.js";
import { bytes } from "./format.js";
import { openDialog, openConfirmDialog, Field, textInput, placeServiceError } from "./dialogs.js";
import { ErrorName, errorMessage, SWITCH_INTERFACE, SAN_INTERFACE } from "./service.js";

const _ = cockpit.gettext;

export const SWITCH_TYPES = [
    { value: "Private", label: _("Private (virtual machines only)") },
    { value: "Internal", label: _("Internal (virtual machines and this host)") },
    { value: "External", label: _("External (bridged to a host network interface)") },
    { value: "NAT", label: _("NAT (virtual machines reach out through this host)") },
];

const byName = (a, b) => (a.Name ?? "").localeCompare(b.Name ?? "");

function yesNo(value) {
    return value === true ? _("Yes") : value === false ? _("No") : "-";
}

/** A view: heading, toolbar, a table of objects, an inline problem and an empty text. */
class ObjectView {
    constructor({ id, title, columns, emptyText, toolbar = [] }) {
        this.problem = h("p", { class: "inline-problem", role: "alert", hidden: true });
        this.tbody = h("tbody");
        this.table = h("table", { class: "small-table object-table", "aria-labelledby": `${id}-title` },
            h("thead", {}, h("tr", {}, columns.map(label => h("th", { scope: "col" }, label)),
                              h("th", { scope: "col" }, h("span", { class: "sr-only" }, _("Actions"))))),
            this.tbody);
        this.empty = h("p", { class: "field-help object-empty" }, emptyText);
        this.heading = h("h1", { id: `${id}-title` }, title);
        this.element = h("section", { class: `object-view ${id}`, "aria-labelledby": `${id}-title`, hidden: true },
            h("header", { class: "page-header" }, this.heading, h("div", { class: "toolbar-end" }, toolbar)),
            this.problem, h("div", { class: "card" }, this.table, this.empty));
        this.shown = null;
    }

    showProblem(message) {
        setText(this.problem, message ?? "");
        this.problem.hidden = !message;
    }

    focus() {
        this.heading.tabIndex = -1;
        this.heading.focus({ preventScroll: true });
    }

    /** Rebuilds the rows when what they show changed. */
    render(objects, row, unsupported) {
        const key = JSON.stringify([objects, unsupported]);
        if (key === this.shown) return;
        this.shown = key;
        this.table.hidden = objects.length === 0;
        this.empty.hidden = objects.length > 0;
        if (unsupported) setText(this.empty, unsupported);
        // A rebuilt row keeps the keyboard focus on its button.
        const focused = this.tbody.contains(document.activeElement) ? document.activeElement : null;
        const again = focused && [focused.closest("tr")?.dataset.path, focused.dataset.action];
        fill(this.tbody, objects.map(row));
        if (again) this.tbody.querySelector(`tr[data-path="${CSS.escape(again[0])}"] [data-action="${again[1]}"]`)?.focus();
    }
}

// MARK: switches

export class SwitchesView extends ObjectView {
    constructor(service, { notify }) {
        const createButton = h("button", { type: "button", class: "btn btn-primary", id: "switch-create",
                                           onclick: () => this.create() }, _("New virtual switch"));
        super({
            id: "switches-view", title: _("Virtual switches"),
            columns: [_("Name"), _("Type"), _("Active"), _("Bridge"), _("Address"), _("Interface"), _("Adapters")],
            emptyText: _("No virtual switches."), toolbar: [createButton],
        });
        this.service = service;
        this.notify = notify;
        this.createButton = createButton;
    }

    /** VM names by switch path, from the VMs' NetworkAdapters. */
    _users() {
        const users = new Map();
        for (const vm of this.service.vms.values()) {
            for (const [, switchPath] of vm.NetworkAdapters ?? []) {
                if (!users.has(switchPath)) users.set(switchPath, new Set());
                users.get(switchPath).add(vm.Name);
            }
        }
        return users;
    }

    update() {
        const users = this._users();
        const switches = [...this.service.switches].map(([path, props]) => ({ path, ...props, users: [...(users.get(path) ?? [])].sort() }))
            .sort(byName);
        // A service without switches (older than api.md's Switch) has no Host.Switches.
        const unsupported = this.service.host && !("Switches" in this.service.host)
            ? _("This vmms service does not offer virtual switches yet.") : null;
        this.createButton.disabled = unsupported !== null;
        this.render(switches, sw => h("tr", { class: "switch-row", dataset: { name: sw.Name ?? "", path: sw.path, active: String(!!sw.Active) } },
            h("th", { scope: "row", class: "switch-name" }, sw.Name ?? ""),
            h("td", { class: "switch-type" }, sw.Type || "-"),
            h("td", {}, yesNo(sw.Active)),
            h("td", {}, sw.Bridge || "-"),
            h("td", {}, sw.Address || "-"),
            h("td", {}, sw.Interface || "-"),
            h("td", { class: "switch-users" }, sw.users.length ? sw.users.join(", ") : "-"),
            h("td", {}, h("button", {
                type: "button", class: "btn btn-link-danger", dataset: { action: "delete-switch" },
                "aria-label": cockpit.format(_("Delete switch $0"), sw.Name ?? ""),
                onclick: () => this.remove(sw.path),
            }, _("Delete")))), unsupported);
    }

    async create() {
        const path = await openCreateSwitchDialog(this.service);
        if (path) this.notify(cockpit.format(_("Created the switch $0."), this.service.switchName(path)), "success");
    }

    async remove(path) {
        const sw = this.service.switches.get(path);
        if (!sw) return;
        const users = [...(this._users().get(path) ?? [])];
        const answer = await openConfirmDialog({
            title: _("Delete virtual switch"),
            text: users.length
                ? cockpit.format(_("Delete the switch $0? These virtual machines have adapters on it: $1."), sw.Name, users.join(", "))
                : cockpit.format(_("Delete the switch $0?"), sw.Name),
            submitLabel: _("Delete"),
        });
        if (!answer) return;
        this.showProblem(null);
        try {
            await this.service.callObject(path, SWITCH_INTERFACE, "Delete");
            this.notify(cockpit.format(_("Deleted the switch $0."), sw.Name), "success");
        } catch (error) {
            // InvalidState names the VMs whose adapters still use it.
            this.showProblem(cockpit.format(_("Deleting $0 failed: $1"), sw.Name, errorMessage(error)));
        }
    }
}

/** New-VMSwitch. Resolves to the new switch's path, or null when cancelled. */
export function openCreateSwitchDialog(service) {
    const name = new Field(_("Name"), textInput({ required: true, "aria-required": "true" }));
    const typeSelect = h("select", { class: "form-control" }, SWITCH_TYPES.map(type => h("option", { value: type.value }, type.label)));
    const type = new Field(_("Type"), typeSelect);
    const address = new Field(_("Address (CIDR, optional)"), textInput({ placeholder: "192.168.100.1/24" }),
        { help: _("The host's address on the switch; the virtual machines get addresses by DHCP. Empty: the first free 192.168.N.1/24.") });
    const iface = new Field(_("Host network interface"), textInput({ placeholder: "eth1" }),
        { help: _("The switch bridges this interface; its addresses move to the bridge.") });
    const sync = () => {
        address.hidden = !["Internal", "NAT"].includes(typeSelect.value);
        iface.hidden = typeSelect.value !== "External";
    };
    typeSelect.addEventListener("change", sync);
    sync();
    const fields = [name, type, address, iface];
    const places = [
        [["Address", "CIDR", "address"], address],
        [["Interface", "interface", "NIC"], iface],
        [[/name/i], name],
        [["type", "Type"], type],
    ];
    return new Promise(resolve => {
        const handle = openDialog({
            title: _("New virtual switch"),
            body: h("div", {}, fields.map(field => field.element)),
            submitLabel: _("Create"),
            run: async ({ showProblem }) => {
                for (const field of fields) field.setError(null);
                const options = {};
                if (!address.hidden && address.control.value.trim()) options.Address = ["s", address.control.value.trim()];
                if (!iface.hidden) options.Interface = ["s", iface.control.value.trim()];
                try {
                    const path = await service.createSwitch(name.control.value, typeSelect.value, options);
                    resolve(path);
                    return true;
                } catch (error) {
                    if (error?.name === ErrorName.alreadyExists) {
                        name.setError(errorMessage(error));
                        name.control.focus();
                    } else if (!placeServiceError(error, places)) {
                        showProblem(errorMessage(error));
                    }
                    return false;
                }
            },
        });
        handle.dialog.dataset.dialog = "create-switch";
        handle.dialog.addEventListener("close", () => resolve(null));
        name.control.focus();
    });
}

// MARK: SANs

export class SANsView extends ObjectView {
    constructor(service, { notify }) {
        super({
            id: "sans-view", title: _("Virtual SANs"),
            columns: [_("Name"), _("Type"), _("Active"), _("Portal"), _("Target"), _("LUNs")],
            emptyText: _("No virtual SANs. Create one with Host.CreateSAN (see the README)."),
        });
        this.service = service;
        this.notify = notify;
    }

    update() {
        const sans = [...this.service.sans].map(([path, props]) => ({ path, ...props })).sort(byName);
        const unsupported = this.service.host && !("SANs" in this.service.host)
            ? _("This vmms service does not offer virtual SANs yet.") : null;
        this.render(sans, san => h("tr", { class: "san-row", dataset: { name: san.Name ?? "", path: san.path, active: String(!!san.Active) } },
            h("th", { scope: "row", class: "san-name" }, san.Name ?? ""),
            h("td", {}, san.Type || "-"),
            h("td", { class: "san-active" }, yesNo(san.Active)),
            h("td", { class: "path" }, san.Portal || "-"),
            h("td", { class: "path" }, san.Target || "-"),
            h("td", { class: "san-luns" }, (san.LUNs ?? []).length === 0 ? "-"
                : h("ul", { class: "lun-list", "aria-label": cockpit.format(_("LUNs of $0"), san.Name ?? "") },
                    san.LUNs.map(([lun, source, capacity]) => h("li", { dataset: { lun, source } },
                        h("span", { class: "lun-name" }, lun), " ", h("span", { class: "field-help" }, capacity > 0 ? bytes(capacity) : ""))))),
            h("td", {}, h("button", {
                type: "button", class: "btn btn-secondary", dataset: { action: "refresh-san" },
                "aria-label": cockpit.format(_("Refresh $0"), san.Name ?? ""),
                onclick: event => this.refresh(san.path, event.currentTarget),
            }, _("Refresh")))), unsupported);
    }

    async refresh(path, button) {
        const name = this.service.sans.get(path)?.Name ?? path;
        this.showProblem(null);
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
        try {
            await this.service.callObject(path, SAN_INTERFACE, "Refresh");
            this.notify(cockpit.format(_("Refreshed $0."), name), "success");
        } catch (error) {
            this.showProblem(cockpit.format(_("Refreshing $0 failed: $1"), name, errorMessage(error)));
        } finally {
            if (button.isConnected) {
                button.disabled = false;
                button.removeAttribute("aria-busy");
            }
        }
    }
}
