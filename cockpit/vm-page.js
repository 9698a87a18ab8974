// One VM: its state and power actions, and its settings (Set-VMProcessor, Set-VMMemory,
// Set-VMFirmware, Add-/Remove-VMHardDiskDrive, Rename-VM, notes, automatic start), each a
// small form with its own Apply button and the service's error inline. Values follow the
// service live, except in a form the user has started editing.
//
// Network adapters (Add-/Remove-VMNetworkAdapter), the checkpoint tree (Checkpoint-VM,
// Restore-/Rename-/Remove-VMCheckpoint) and Export-VM / Move-VMStorage with the job's
// progress have cards of their own too.

import { h, fill, setText, uid } from "./dom.js";
import { bytes, percent, uptime, stateLabel, stateClass, MiB, decimalNumber } from "./format.js";
import { POWER_ACTIONS, REBOOT, allowed, powerCall, defaultCheckpointName } from "./actions.js";
import { Field, checkbox, numberInput, textInput, parseWhole, placeServiceError, openConfirmDialog } from "./dialogs.js";
import { vardict, errorMessage, ErrorName, CHECKPOINT_INTERFACE } from "./service.js";
import { openDialog } from "./dialogs.js";
import { JobList, openJobDialog } from "./jobs.js";

const _ = cockpit.gettext;

export class VMPage {
    /** handlers: {back(), remove(paths)} */
    constructor(service, handlers) {
        this.service = service;
        this.handlers = handlers;
        this.path = null;
        this.cards = [];
        this.element = h("section", { class: "vm-page", "aria-labelledby": "vm-page-title" });
    }

    /** Shows the VM at `path` (rebuilding the page when it is another VM). */
    show(path) {
        if (path !== this.path) {
            this.path = path;
            this._build();
        }
        this.update();
    }

    update() {
        const vm = this.service.vms.get(this.path);
        if (!vm) {
            this._gone();
            return;
        }
        if (this.missing) this._build();
        setText(this.title, vm.Name ?? "");
        setText(this.crumb, vm.Name ?? "");
        this.stateDot.className = stateClass(vm.State);
        setText(this.stateText, stateLabel(vm.State));
        this.element.dataset.state = vm.State ?? "";
        for (const { action, button } of this.actionButtons) button.disabled = this.busy || !allowed(action, vm.State);
        this.deleteButton.disabled = this.busy;
        for (const card of this.cards) card.update(vm);
    }

    /** Moves the focus to the heading, so screen readers start reading the new view there. */
    focus() {
        const heading = this.element.querySelector("h1");
        if (!heading) return;
        heading.tabIndex = -1;
        heading.focus({ preventScroll: true });
    }

    tick() {
        const vm = this.service.vms.get(this.path);
        if (vm && this.uptimeCell) setText(this.uptimeCell, uptime(vm.StartTime, Date.now() / 1000));
    }

    _gone() {
        this.missing = true;
        fill(this.element,
            this._breadcrumb(_("Not found")),
            h("div", { class: "empty-state", dataset: { state: "vm-gone" } },
                h("h1", { id: "vm-page-title" }, _("This virtual machine no longer exists")),
                h("p", {}, _("It was deleted, or you may no longer read it.")),
                h("button", { type: "button", class: "btn btn-primary", onclick: () => this.handlers.back() },
                  _("Back to the list"))));
    }

    _breadcrumb(current) {
        this.crumb = h("li", { "aria-current": "page" }, current);
        return h("nav", { class: "breadcrumb", "aria-label": _("Breadcrumb") },
            h("ol", {}, h("li", {}, h("button", { type: "button", class: "link", onclick: () => this.handlers.back() },
                                       _("Virtual machines"))), this.crumb));
    }

    _build() {
        this.missing = false;
        this.busy = false;
        const path = this.path;
        this.title = h("h1", { id: "vm-page-title" });
        this.stateDot = h("span", { "aria-hidden": "true" });
        this.stateText = h("span");
        this.actionProblem = h("p", { class: "inline-problem", role: "alert", hidden: true });
        this.actionButtons = [...POWER_ACTIONS, REBOOT].map(action => ({
            action,
            button: h("button", { type: "button", class: "btn btn-secondary", dataset: { action: action.id },
                                  onclick: () => this._power(action) }, action.label),
        }));
        this.deleteButton = h("button", { type: "button", class: "btn btn-danger-secondary", dataset: { action: "delete" },
                                          onclick: () => this.handlers.remove([path]) }, _("Delete…"));
        const header = h("header", { class: "vm-page-header" },
            h("div", { class: "vm-page-heading" }, this.title,
              h("span", { class: "vm-state-cell vm-page-state", "aria-live": "polite" }, this.stateDot, this.stateText)),
            h("div", { class: "toolbar-group", role: "group", "aria-label": _("Power") },
              this.actionButtons.map(entry => entry.button), this.deleteButton),
            this.actionProblem);

        this.cards = [
            this._summaryCard(),
            this._processorCard(),
            this._memoryCard(),
            this._firmwareCard(),
            this._disksCard(),
            this._adaptersCard(),
            this._checkpointsCard(),
            this._exportMoveCard(),
            this._generalCard(),
        ];
        fill(this.element, this._breadcrumb(""), header,
             h("div", { class: "cards" }, this.cards.map(card => card.element)));
    }

    async _power(action) {
        this.busy = true;
        this.actionProblem.hidden = true;
        this.update();
        try {
            await powerCall(this.service, action, this.path);
        } catch (error) {
            this.actionProblem.textContent = cockpit.format(_("$0 failed: $1"), action.label, errorMessage(error));
            this.actionProblem.hidden = false;
        } finally {
            this.busy = false;
            if (this.service.vms.has(this.path)) this.update();
        }
    }

    // MARK: cards

    _card(title, ...content) {
        const id = `card-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
        return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), content);
    }

    _summaryCard() {
        const values = {};
        const row = (key, label) => {
            values[key] = h("dd");
            return [h("dt", {}, label), values[key]];
        };
        const element = this._card(_("Summary"), h("dl", { class: "facts" },
            row("state", _("State")), row("generation", _("Generation")), row("cpu", _("CPU usage")),
            row("memory", _("Assigned memory")), row("uptime", _("Uptime")), row("uuid", _("UUID"))));
        this.uptimeCell = values.uptime;
        return {
            element,
            update: vm => {
                setText(values.state, stateLabel(vm.State));
                setText(values.generation, vm.Generation === 1 ? _("1 (BIOS)") : vm.Generation === 2 ? _("2 (UEFI)") : "-");
                setText(values.cpu, vm.State === "Running" ? percent(vm.CPUUsage) : "-");
                setText(values.memory, vm.MemoryAssignedBytes > 0 ? bytes(vm.MemoryAssignedBytes) : "-");
                setText(values.uptime, uptime(vm.StartTime, Date.now() / 1000));
                setText(values.uuid, vm.UUID ?? "-");
            },
        };
    }

    /**
     * A settings form: `load(vm)` fills the controls unless the user has changed them;
     * `submit()` calls the service (rejecting with its error); errors go to the field whose
     * setting the message names (`places`), else below the form.
     */
    _form({ name, fields, controls = [], load, submit, places = [], submitLabel = _("Apply"), note }) {
        const problem = h("p", { class: "inline-problem", role: "alert", hidden: true });
        const done = h("span", { class: "form-done", "aria-live": "polite" });
        const button = h("button", { type: "submit", class: "btn btn-primary" }, submitLabel);
        const form = h("form", { class: "settings-form", novalidate: true, dataset: { form: name } },
            note, fields.map(field => field.element), controls, problem, h("div", { class: "form-actions" }, button, done));
        let dirty = false;
        let lastVM = null;
        form.addEventListener("input", () => { dirty = true; setText(done, ""); });
        form.addEventListener("change", () => { dirty = true; });
        form.addEventListener("submit", async event => {
            event.preventDefault();
            for (const field of fields) field.setError(null);
            problem.hidden = true;
            setText(done, "");
            button.disabled = true;
            try {
                if (await submit() === false) return;
                dirty = false;
                setText(done, _("Saved"));
                if (lastVM) load(this.service.vms.get(this.path) ?? lastVM);
            } catch (error) {
                if (!placeServiceError(error, places)) {
                    problem.textContent = errorMessage(error);
                    problem.hidden = false;
                }
            } finally {
                button.disabled = false;
            }
        });
        return {
            form,
            update: vm => {
                lastVM = vm;
                if (!dirty) load(vm);
            },
        };
    }

    /** A settings form as a card of its own. */
    _formCard(title, options) {
        const { form, update } = this._form(options);
        return { element: this._card(title, form), update };
    }

    _processorCard() {
        const count = new Field(_("Virtual processors"), numberInput(""));
        const reserve = new Field(_("Reserve (%)"), numberInput(""), { help: _("Share of each processor set aside for this VM") });
        const maximum = new Field(_("Limit (%)"), numberInput(""), { help: _("Share of each processor this VM may use at most") });
        const weight = new Field(_("Relative weight"), numberInput(""), { help: _("Against other VMs; 100 is normal") });
        return this._formCard(_("Processor"), {
            name: "processor",
            fields: [count, reserve, maximum, weight],
            places: [[["count", "ProcessorCount", "processors"], count], [["Reserve"], reserve], [["Maximum"], maximum],
                     [["RelativeWeight", "weight"], weight]],
            load: vm => {
                count.control.value = vm.ProcessorCount ?? "";
                reserve.control.value = vm.ProcessorReserve ?? "";
                maximum.control.value = vm.ProcessorMaximum ?? "";
                weight.control.value = vm.ProcessorRelativeWeight ?? "";
            },
            submit: async () => {
                const values = [parseWhole(count, _("The number of processors")), parseWhole(reserve, _("The reserve")),
                                parseWhole(maximum, _("The limit")), parseWhole(weight, _("The weight"))];
                if (values.includes(null)) return false;
                const [n, r, m, w] = values;
                await this.service.callVM(this.path, "SetProcessor",
                                          [n, vardict({ Reserve: ["u", r], Maximum: ["u", m], RelativeWeight: ["u", w] })], "ua{sv}");
            },
        });
    }

    _memoryCard() {
        const startup = new Field(_("Startup memory (MiB)"), numberInput(""));
        const dynamic = checkbox(_("Dynamic memory"), false);
        const minimum = new Field(_("Minimum memory (MiB)"), numberInput(""));
        const maximum = new Field(_("Maximum memory (MiB)"), numberInput(""));
        const sync = () => { minimum.hidden = maximum.hidden = !dynamic.input.checked; };
        dynamic.input.addEventListener("change", sync);
        return this._formCard(_("Memory"), {
            name: "memory",
            fields: [startup],
            controls: [h("div", { class: "form-field" }, dynamic.element), minimum.element, maximum.element],
            places: [[["MinimumBytes", "minimum"], minimum], [["MaximumBytes", "maximum"], maximum], [["startup", "Startup", "bytes"], startup]],
            load: vm => {
                startup.control.value = vm.MemoryStartupBytes !== undefined ? Math.round(vm.MemoryStartupBytes / MiB) : "";
                dynamic.input.checked = !!vm.DynamicMemoryEnabled;
                minimum.control.value = vm.MemoryMinimumBytes !== undefined ? Math.round(vm.MemoryMinimumBytes / MiB) : "";
                maximum.control.value = vm.MemoryMaximumBytes !== undefined ? Math.round(vm.MemoryMaximumBytes / MiB) : "";
                sync();
            },
            submit: async () => {
                const amount = parseWhole(startup, _("Startup memory"));
                const options = { DynamicMemory: ["b", dynamic.input.checked] };
                if (dynamic.input.checked) {
                    const low = parseWhole(minimum, _("Minimum memory"));
                    const high = parseWhole(maximum, _("Maximum memory"));
                    if (low === null || high === null) return false;
                    options.MinimumBytes = ["t", low * MiB];
                    options.MaximumBytes = ["t", high * MiB];
                }
                if (amount === null) return false;
                await this.service.callVM(this.path, "SetMemory", [amount * MiB, vardict(options)], "ta{sv}");
            },
        });
    }

    _firmwareCard() {
        const secure = checkbox(_("Enable Secure Boot"), false);
        const secureRow = h("div", { class: "form-field" }, secure.element);
        const generationText = h("p", { class: "field-help" });
        const hostHint = h("p", { class: "field-help", hidden: true }, _("This host has no Secure Boot firmware (Debian package ovmf)."));
        const card = this._formCard(_("Firmware"), {
            name: "firmware",
            fields: [],
            note: generationText,
            controls: [secureRow, hostHint],
            load: vm => {
                // Generation 1 boots BIOS: nothing to set here.
                const uefi = vm.Generation === 2;
                secureRow.hidden = !uefi;
                card.element.querySelector(".form-actions").hidden = !uefi;
                secure.input.checked = !!vm.SecureBoot;
                hostHint.hidden = !uefi || this.service.host?.SecureBootAvailable !== false;
                setText(generationText, uefi
                    ? _("Generation 2: UEFI firmware. Secure Boot can be changed while the VM is off.")
                    : _("Generation 1: BIOS firmware. Secure Boot needs a generation 2 VM."));
            },
            submit: () => this.service.callVM(this.path, "SetSecureBoot", [secure.input.checked], "b"),
        });
        return card;
    }

    _disksCard() {
        const list = h("tbody");
        const table = h("table", { class: "small-table" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, _("Image")), h("th", { scope: "col" }, _("Format")),
                              h("th", { scope: "col", class: "num" }, _("Capacity")), h("th", { scope: "col" }, h("span", { class: "sr-only" }, _("Actions"))))),
            list);
        const empty = h("p", { class: "field-help" }, _("No virtual hard disks."));
        const rowProblem = h("p", { class: "inline-problem", role: "alert", hidden: true });

        const choice = h("select", { class: "form-control" },
            h("option", { value: "new" }, _("New virtual hard disk")), h("option", { value: "existing" }, _("Existing image")));
        const kind = new Field(_("Disk"), choice);
        const size = new Field(_("Size (GiB)"), numberInput("10"));
        const imagePath = new Field(_("Image path"), textInput({ placeholder: this.service.host?.VirtualHardDiskPath ?? "" }));
        const sync = () => { size.hidden = choice.value !== "new"; imagePath.hidden = choice.value !== "existing"; };
        choice.addEventListener("change", sync);
        sync();
        const add = this._form({
            name: "add-disk",
            fields: [kind, size, imagePath],
            submitLabel: _("Add hard disk"),
            places: [[["SizeBytes", "size"], size], [["Path", "path", "image"], imagePath]],
            load: () => {},
            submit: async () => {
                let options;
                if (choice.value === "new") {
                    const gib = decimalNumber(size.control.value);
                    if (gib === null) {
                        size.setError(_("The size must be a number."));
                        return false;
                    }
                    options = { SizeBytes: ["t", Math.round(gib * 1024) * MiB] };
                } else {
                    options = { Path: ["s", imagePath.control.value.trim()] };
                }
                await this.service.callVM(this.path, "AddHardDisk", [vardict(options)], "a{sv}");
            },
        });

        let shown = "";
        const element = this._card(_("Hard disks"), table, empty, rowProblem, h("h3", {}, _("Add a hard disk")), add.form);
        return {
            element,
            update: vm => {
                const disks = vm.HardDisks ?? [];
                const key = JSON.stringify(disks);
                if (key === shown) return;
                shown = key;
                table.hidden = disks.length === 0;
                empty.hidden = disks.length > 0;
                fill(list, disks.map(([diskPath, format, capacity]) => h("tr", {},
                    h("td", { class: "path" }, diskPath), h("td", {}, format || "-"),
                    h("td", { class: "num" }, capacity > 0 ? bytes(capacity) : "-"),
                    h("td", {}, h("button", {
                        type: "button", class: "btn btn-link-danger", "aria-label": cockpit.format(_("Remove $0"), diskPath),
                        onclick: () => this._removeDisk(diskPath, rowProblem),
                    }, _("Remove"))))));
            },
        };
    }

    async _removeDisk(diskPath, problem) {
        const answer = await openConfirmDialog({
            title: _("Remove hard disk"),
            text: cockpit.format(_("Detach $0 from this virtual machine?"), diskPath),
            submitLabel: _("Remove"),
            checks: [_("Also delete the image file")],
        });
        if (!answer) return;
        problem.hidden = true;
        try {
            await this.service.callVM(this.path, "RemoveHardDisk", [diskPath, vardict({ DeleteFile: ["b", answer[0]] })], "sa{sv}");
        } catch (error) {
            problem.textContent = errorMessage(error);
            problem.hidden = false;
        }
    }

    _generalCard() {
        const name = new Field(_("Name"), textInput());
        const rename = this._form({
            name: "rename",
            fields: [name],
            submitLabel: _("Rename"),
            places: [[[/name/i], name]],
            load: vm => { name.control.value = vm.Name ?? ""; },
            submit: async () => {
                const vm = this.service.vms.get(this.path);
                if (name.control.value === vm?.Name) return;
                await this.service.callVM(this.path, "Rename", [name.control.value], "s");
            },
        });

        const autostart = checkbox(_("Start automatically when the host starts"), false, { "data-setting": "autostart" });
        const autostartProblem = h("p", { class: "inline-problem", role: "alert", hidden: true });
        autostart.input.addEventListener("change", async () => {
            autostartProblem.hidden = true;
            autostart.input.disabled = true;
            try {
                await this.service.setVMProperty(this.path, "Autostart", "b", autostart.input.checked);
            } catch (error) {
                autostart.input.checked = !autostart.input.checked;
                autostartProblem.textContent = errorMessage(error);
                autostartProblem.hidden = false;
            } finally {
                autostart.input.disabled = false;
            }
        });

        const notes = new Field(_("Notes"), h("textarea", { class: "form-control", rows: 4 }));
        const notesForm = this._form({
            name: "notes",
            fields: [notes],
            submitLabel: _("Save notes"),
            places: [[["Notes", "notes"], notes]],
            load: vm => { notes.control.value = vm.Notes ?? ""; },
            submit: () => this.service.setVMProperty(this.path, "Notes", "s", notes.control.value),
        });

        const element = this._card(_("General"),
            rename.form,
            h("div", { class: "form-field" }, autostart.element), autostartProblem,
            notesForm.form);
        return {
            element,
            update: vm => {
                rename.update(vm);
                notesForm.update(vm);
                if (!autostart.input.disabled) autostart.input.checked = !!vm.Autostart;
            },
        };
    }

    // MARK: network adapters

    _adaptersCard() {
        const list = h("tbody");
        const table = h("table", { class: "small-table adapters" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, _("MAC address")), h("th", { scope: "col" }, _("Switch")),
                              h("th", { scope: "col" }, h("span", { class: "sr-only" }, _("Actions"))))),
            list);
        const empty = h("p", { class: "field-help" }, _("No network adapters."));
        const rowProblem = h("p", { class: "inline-problem", role: "alert", hidden: true });
        const switchSelect = h("select", { class: "form-control", name: "switch" });
        const switchField = new Field(_("Virtual switch"), switchSelect);
        const noSwitches = h("p", { class: "field-help", hidden: true }, _("There is no virtual switch to connect to yet."));
        const add = this._form({
            name: "add-adapter",
            fields: [switchField],
            controls: [noSwitches],
            submitLabel: _("Add network adapter"),
            places: [],
            load: () => {},
            submit: async () => {
                if (!switchSelect.value) {
                    switchField.setError(_("Choose a virtual switch."));
                    return false;
                }
                await this.service.callVM(this.path, "AddNetworkAdapter", [switchSelect.value], "o");
            },
        });
        let shown = "";
        let shownSwitches = "";
        const element = this._card(_("Network adapters"), table, empty, rowProblem, h("h3", {}, _("Add a network adapter")), add.form);
        return {
            element,
            update: vm => {
                const switches = [...this.service.switches].map(([path, sw]) => [path, sw.Name ?? path]).sort((a, b) => a[1].localeCompare(b[1]));
                const switchKey = JSON.stringify(switches);
                if (switchKey !== shownSwitches) {
                    shownSwitches = switchKey;
                    const chosen = switchSelect.value;
                    fill(switchSelect, switches.map(([path, name]) => h("option", { value: path, selected: path === chosen }, name)));
                    noSwitches.hidden = switches.length > 0;
                    add.form.querySelector("button[type=submit]").disabled = switches.length === 0;
                }
                const adapters = vm.NetworkAdapters ?? [];
                const key = JSON.stringify([adapters, switches]);
                if (key === shown) return;
                shown = key;
                table.hidden = adapters.length === 0;
                empty.hidden = adapters.length > 0;
                fill(list, adapters.map(([mac, switchPath]) => h("tr", { class: "adapter-row", dataset: { mac, switch: switchPath } },
                    h("td", { class: "mac" }, mac),
                    h("td", { class: "adapter-switch" }, switchPath === "/" ? _("Not connected") : this.service.switchName(switchPath)),
                    h("td", {}, h("button", {
                        type: "button", class: "btn btn-link-danger", dataset: { action: "remove-adapter" },
                        "aria-label": cockpit.format(_("Remove network adapter $0"), mac),
                        onclick: () => this._removeAdapter(mac, rowProblem),
                    }, _("Remove"))))));
            },
        };
    }

    async _removeAdapter(mac, problem) {
        const answer = await openConfirmDialog({
            title: _("Remove network adapter"),
            text: cockpit.format(_("Remove the network adapter $0 from this virtual machine?"), mac),
            submitLabel: _("Remove"),
        });
        if (!answer) return;
        problem.hidden = true;
        try {
            await this.service.callVM(this.path, "RemoveNetworkAdapter", [mac], "s");
        } catch (error) {
            problem.textContent = errorMessage(error);
            problem.hidden = false;
        }
    }

    // MARK: checkpoints

    /**
     * The checkpoint tree (Hyper-V Manager's Checkpoints pane): a WAI-ARIA tree with single
     * selection that follows the focus, one item in the tab order (roving tabindex), and the
     * actions on the selected checkpoint in a toolbar after it (Hyper-V's Actions pane):
     *   Up/Down      previous/next shown checkpoint     Home/End  first/last shown
     *   Right        expand; on an expanded one, its first child
     *   Left         collapse; on a collapsed one or a leaf, its parent
     *   Enter        Apply (the default action; only when the VM is Off or Saved)
     *   F2           Rename                             Delete    Delete (asks first)
     * The mouse: a click selects, the triangle folds, a double click applies.
     */
    _checkpointsCard() {
        const label = _("Checkpoints, oldest first; a child follows its parent");
        const tree = h("ul", { class: "checkpoint-tree", role: "tree", "aria-label": label, id: uid("checkpoint-tree") });
        const empty = h("p", { class: "field-help" }, _("No checkpoints."));
        const problem = h("p", { class: "inline-problem", role: "alert", hidden: true, dataset: { problem: "checkpoints" } });
        const name = new Field(_("Checkpoint name"), textInput({ name: "checkpoint-name" }),
            { help: _("Empty: the virtual machine's name and the time, as Hyper-V names them") });
        const take = this._form({
            name: "checkpoint",
            fields: [name],
            submitLabel: _("Take checkpoint"),
            places: [[[/name/i, ErrorName.alreadyExists], name]],
            load: () => {},
            submit: async () => {
                const vm = this.service.vms.get(this.path);
                const text = name.control.value.trim() || defaultCheckpointName(vm?.Name ?? "");
                await this.service.callVM(this.path, "Checkpoint", [text], "s");
                name.control.value = "";
            },
        });

        const state = { selected: null, collapsed: new Set(), items: new Map(), vmState: "" };
        const report = error => {
            problem.textContent = errorMessage(error);
            problem.hidden = false;
        };
        const run = async action => {
            problem.hidden = true;
            try {
                await action();
            } catch (error) {
                report(error);
            }
        };
        const selectedCheckpoint = () => state.items.get(state.selected)?.checkpoint ?? null;
        const canApply = () => ["Off", "Saved"].includes(state.vmState);
        const actions = {
            apply: () => { const cp = selectedCheckpoint(); if (cp && canApply()) run(() => this._applyCheckpoint(cp)); },
            rename: () => { const cp = selectedCheckpoint(); if (cp) run(() => this._renameCheckpoint(cp)); },
            remove: () => {
                const entry = state.items.get(state.selected);
                if (entry) run(() => this._deleteCheckpoint(entry.checkpoint, entry.children.length > 0));
            },
        };
        const button = (text, action, onclick, danger) => h("button", {
            type: "button", class: danger ? "btn btn-danger-secondary" : "btn btn-secondary", dataset: { action },
            "aria-controls": tree.id, onclick,
        }, text);
        const buttons = {
            apply: button(_("Apply…"), "apply-checkpoint", actions.apply),
            rename: button(_("Rename…"), "rename-checkpoint", actions.rename),
            remove: button(_("Delete…"), "delete-checkpoint", actions.remove, true),
        };
        const selectedText = h("span", { class: "selection-count", "aria-live": "polite" });
        const toolbar = h("div", { class: "toolbar-group checkpoint-toolbar", role: "group", "aria-label": _("Actions on the selected checkpoint") },
            buttons.apply, buttons.rename, buttons.remove, selectedText);

        /** The items in view order, skipping those inside a collapsed one. */
        const visible = () => [...tree.querySelectorAll("li[role=treeitem]")].filter(li => !li.parentElement.closest("li[role=treeitem][aria-expanded=false]"));
        const itemOf = path => (path ? tree.querySelector(`li[data-path="${CSS.escape(path)}"]`) : null);
        const syncChrome = () => {
            const cp = selectedCheckpoint();
            buttons.apply.disabled = !cp || !canApply();
            buttons.apply.title = cp && !canApply() ? _("A checkpoint is applied while the virtual machine is off or saved") : "";
            buttons.rename.disabled = buttons.remove.disabled = !cp;
            setText(selectedText, cp ? cockpit.format(_("Selected: $0"), cp.Name ?? "") : "");
        };
        /** Selects (and, with focus, focuses) the item; one item is in the tab order. */
        const select = (li, focus) => {
            if (!li) return;
            state.selected = li.dataset.path;
            for (const item of tree.querySelectorAll("li[role=treeitem]")) {
                const on = item === li;
                item.setAttribute("aria-selected", String(on));
                item.tabIndex = on ? 0 : -1;
            }
            syncChrome();
            if (focus) li.focus();
        };
        const setExpanded = (li, expanded) => {
            li.setAttribute("aria-expanded", String(expanded));
            if (expanded) state.collapsed.delete(li.dataset.path);
            else state.collapsed.add(li.dataset.path);
        };
        tree.addEventListener("keydown", event => {
            const li = event.target.closest("li[role=treeitem]");
            if (!li || event.altKey || event.ctrlKey || event.metaKey) return;
            const shown = visible();
            const index = shown.indexOf(li);
            const expanded = li.getAttribute("aria-expanded");
            const parent = li.parentElement.closest("li[role=treeitem]");
            let target = null;
            switch (event.key) {
            case "ArrowDown": target = shown[index + 1]; break;
            case "ArrowUp": target = shown[index - 1]; break;
            case "Home": target = shown[0]; break;
            case "End": target = shown[shown.length - 1]; break;
            case "ArrowRight":
                if (expanded === "false") setExpanded(li, true);
                else if (expanded === "true") target = li.querySelector(":scope > ul > li[role=treeitem]");
                break;
            case "ArrowLeft":
                if (expanded === "true") setExpanded(li, false);
                else target = parent;
                break;
            case "Enter": actions.apply(); break;
            case "F2": actions.rename(); break;
            case "Delete": actions.remove(); break;
            default: return;
            }
            event.preventDefault();
            if (target) select(target, true);
        });
        tree.addEventListener("click", event => {
            const li = event.target.closest("li[role=treeitem]");
            if (!li) return;
            if (event.target.closest(".checkpoint-twisty") && li.hasAttribute("aria-expanded")) {
                setExpanded(li, li.getAttribute("aria-expanded") !== "true");
            }
            select(li, true);
        });
        tree.addEventListener("dblclick", event => {
            if (event.target.closest("li[role=treeitem]") && !event.target.closest(".checkpoint-twisty")) actions.apply();
        });

        const item = ({ checkpoint: cp, children }, level, position, size) => {
            state.items.set(cp.path, { checkpoint: cp, children });
            const created = cp.CreationTime ? new Date(cp.CreationTime * 1000).toLocaleString() : "";
            const nameId = uid("checkpoint-name");
            const detailId = uid("checkpoint-detail");
            const li = h("li", {
                class: "checkpoint", role: "treeitem", dataset: { path: cp.path, name: cp.Name ?? "" },
                "aria-level": level, "aria-posinset": position, "aria-setsize": size,
                "aria-labelledby": nameId, "aria-describedby": detailId, "aria-selected": "false", tabindex: "-1",
                "aria-expanded": children.length ? String(!state.collapsed.has(cp.path)) : null,
            },
                h("div", { class: "checkpoint-line" },
                    h("span", { class: "checkpoint-twisty", "aria-hidden": "true" }),
                    h("span", { class: "checkpoint-name", id: nameId }, cp.Name ?? cp.path.split("/").pop()),
                    h("span", { class: "field-help", id: detailId }, created, cp.IncludesMemory ? cockpit.format(" · $0", _("with memory")) : "")),
                children.length
                    ? h("ul", { role: "group" }, children.map((child, i) => item(child, level + 1, i + 1, children.length)))
                    : null);
            return li;
        };

        let shown = "";
        const element = this._card(_("Checkpoints"), tree, empty, toolbar, problem, take.form);
        return {
            element,
            update: vm => {
                state.vmState = vm.State ?? "";
                const checkpoints = this.service.checkpointsOf(this.path);
                const key = JSON.stringify(checkpoints);
                if (key !== shown) {
                    shown = key;
                    tree.hidden = checkpoints.length === 0;
                    toolbar.hidden = checkpoints.length === 0;
                    empty.hidden = checkpoints.length > 0;
                    const hadFocus = tree.contains(document.activeElement);
                    state.items.clear();
                    const roots = checkpointTree(checkpoints);
                    fill(tree, roots.map((root, i) => item(root, 1, i + 1, roots.length)));
                    for (const path of state.collapsed) if (!state.items.has(path)) state.collapsed.delete(path);
                    // The selection stays where it was (a renamed checkpoint moves: then the
                    // newest one is selected, as Hyper-V selects a new checkpoint).
                    let li = itemOf(state.selected);
                    if (!li || li.parentElement.closest("li[role=treeitem][aria-expanded=false]")) {
                        li = itemOf(checkpoints[checkpoints.length - 1]?.path) ?? visible()[0] ?? null;
                        for (let up = li?.parentElement.closest("li[role=treeitem]"); up; up = up.parentElement.closest("li[role=treeitem]")) {
                            setExpanded(up, true);
                        }
                    }
                    if (li) select(li, hadFocus);
                    else state.selected = null;
                }
                syncChrome();
            },
        };
    }

    async _applyCheckpoint(cp) {
        const answer = await openConfirmDialog({
            title: _("Apply checkpoint"),
            text: cockpit.format(_("Apply the checkpoint $0? The virtual machine's current state is lost unless you take a checkpoint first. It must be off or saved."), cp.Name),
            submitLabel: _("Apply"),
        });
        if (answer) await this.service.callObject(cp.path, CHECKPOINT_INTERFACE, "Apply");
    }

    async _deleteCheckpoint(cp, hasChildren) {
        const answer = await openConfirmDialog({
            title: _("Delete checkpoint"),
            text: cockpit.format(_("Delete the checkpoint $0? Its changes are merged into its children; the disks keep working."), cp.Name),
            submitLabel: _("Delete"),
            checks: hasChildren ? [_("Also delete its child checkpoints")] : [],
        });
        if (!answer) return;
        await this.service.callObject(cp.path, CHECKPOINT_INTERFACE, "Delete", [vardict({ IncludeChildren: ["b", !!answer[0]] })], "a{sv}");
    }

    _renameCheckpoint(cp) {
        const field = new Field(_("New name"), textInput({ value: cp.Name ?? "" }));
        const handle = openDialog({
            title: _("Rename checkpoint"),
            body: field.element,
            submitLabel: _("Rename"),
            run: async () => {
                field.setError(null);
                try {
                    await this.service.callObject(cp.path, CHECKPOINT_INTERFACE, "Rename", [field.control.value], "s");
                    return true;
                } catch (error) {
                    field.setError(errorMessage(error));
                    field.control.focus();
                    return false;
                }
            },
        });
        handle.dialog.dataset.dialog = "rename-checkpoint";
        field.control.select();
    }

    // MARK: export and move

    _exportMoveCard() {
        const jobs = new JobList(this.service);
        const none = h("p", { class: "field-help" }, _("No export or move running."));
        const button = (label, action, run) => h("button", { type: "button", class: "btn btn-secondary", dataset: { action }, onclick: run }, label);
        const element = this._card(_("Export and move"),
            h("p", { class: "field-help" }, _("Export writes the VM's definition, disks and checkpoints to a folder, like Export-VM. Move moves its files to another folder on this host, also while it runs.")),
            h("div", { class: "toolbar-group" },
                button(_("Export…"), "export", () => this._transfer("Export")),
                button(_("Move…"), "move", () => this._transfer("Move"))),
            h("h3", {}, _("Jobs")), jobs.element, none);
        return {
            element,
            update: () => { none.hidden = jobs.update(this.path) > 0; },
        };
    }

    /** Export (VM.Export) or Move (VM.Move) to a directory: asks for it, then follows the job. */
    async _transfer(method) {
        const vm = this.service.vms.get(this.path);
        const exporting = method === "Export";
        const folder = new Field(exporting ? _("Export to folder") : _("Move to folder"),
            textInput({ name: "directory", placeholder: this.service.host?.VirtualMachinePath ?? "" }),
            { help: exporting ? _("A folder named after the VM is created in it.")
                             : _("A folder on this host (storage move), or the libvirt URI of another vmms host the configuration allows (live migration)") });
        let job = null;
        const handle = openDialog({
            title: cockpit.format(exporting ? _("Export $0") : _("Move $0"), vm?.Name ?? ""),
            body: folder.element,
            submitLabel: exporting ? _("Export") : _("Move"),
            run: async () => {
                folder.setError(null);
                try {
                    [job] = await this.service.callVM(this.path, method, [folder.control.value.trim(), {}], "sa{sv}");
                    return true;
                } catch (error) {
                    folder.setError(errorMessage(error));
                    folder.control.focus();
                    return false;
                }
            },
        });
        handle.dialog.dataset.dialog = exporting ? "export" : "move";
        folder.control.focus();
        await new Promise(resolve => handle.dialog.addEventListener("close", resolve));
        if (job) {
            await openJobDialog(this.service, job, cockpit.format(exporting ? _("Exporting $0") : _("Moving $0"), vm?.Name ?? ""));
        }
    }
}

/** Checkpoints (in creation order) as a forest by Parent; a parent the VM no longer lists
 *  makes its child a root. */
export function checkpointTree(checkpoints) {
    const nodes = new Map(checkpoints.map(checkpoint => [checkpoint.path, { checkpoint, children: [] }]));
    const roots = [];
    for (const node of nodes.values()) {
        const parent = nodes.get(node.checkpoint.Parent);
        if (parent && parent !== node) parent.children.push(node);
        else roots.push(node);
    }
    return roots;
}
