// Modal dialogs: a general one (native <dialog>: focus stays inside, Escape closes, the
// opener gets focus back), form fields with inline errors, and the Create and Delete
// dialogs. Validation is the service's: the dialogs only turn text into numbers, send the
// call, and put the D-Bus error's message next to the field it names.

import { h, uid } from "./dom.js";
import { MiB, wholeNumber, decimalNumber } from "./format.js";
import { ErrorName, errorMessage } from "./service.js";

const _ = cockpit.gettext;

/**
 * Opens a modal dialog. `run` is called on submit; while it runs the buttons are disabled.
 * It resolves true to close the dialog; false keeps it open (it has shown its own errors);
 * a rejection shows the error's message at the top of the dialog.
 */
export function openDialog({ title, body, submitLabel, danger = false, run, wide = false }) {
    const opener = document.activeElement;
    const titleId = uid("dialog-title");
    const problemId = uid("dialog-problem");
    const problem = h("div", { class: "dialog-problem", id: problemId, role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: danger ? "btn btn-danger" : "btn btn-primary" }, submitLabel);
    const cancel = h("button", { type: "button", class: "btn btn-secondary", onclick: () => close() }, _("Cancel"));
    const form = h("form", { class: "dialog-form", novalidate: true },
        h("header", {}, h("h2", { id: titleId }, title)),
        h("div", { class: "dialog-body" }, body),
        problem,
        h("footer", {}, submit, cancel));
    const dialog = h("dialog", { class: wide ? "vmms-dialog wide" : "vmms-dialog", "aria-labelledby": titleId }, form);
    let busy = false;

    function showProblem(message) {
        problem.textContent = message;
        problem.hidden = !message;
    }
    function setBusy(value) {
        busy = value;
        submit.disabled = value;
        cancel.disabled = value;
        form.setAttribute("aria-busy", String(value));
    }
    function close() {
        if (dialog.open) dialog.close();
    }

    form.addEventListener("submit", async event => {
        event.preventDefault();
        if (busy) return;
        showProblem("");
        setBusy(true);
        let done = false;
        try {
            done = await run({ showProblem });
        } catch (error) {
            showProblem(errorMessage(error));
        } finally {
            setBusy(false);
        }
        if (done) close();
    });
    // Escape while a call runs would hide the outcome of the call.
    dialog.addEventListener("cancel", event => { if (busy) event.preventDefault(); });
    dialog.addEventListener("close", () => {
        dialog.remove();
        if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
    });
    document.body.append(dialog);
    dialog.showModal();
    return { dialog, close, showProblem };
}

/** A labelled form field with a slot for its inline error. */
export class Field {
    constructor(label, control, { help } = {}) {
        this.control = control;
        if (!control.id) control.id = uid("field");
        this.error = h("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
        const helpText = help ? h("p", { class: "field-help", id: `${control.id}-help` }, help) : null;
        control.setAttribute("aria-describedby", [helpText?.id, this.error.id].filter(Boolean).join(" "));
        this.element = h("div", { class: "form-field" },
            h("label", { for: control.id }, label), control, helpText, this.error);
    }

    setError(message) {
        this.error.textContent = message ?? "";
        this.error.hidden = !message;
        if (message) {
            this.error.setAttribute("role", "alert");
            this.control.setAttribute("aria-invalid", "true");
        } else {
            this.error.removeAttribute("role");
            this.control.removeAttribute("aria-invalid");
        }
    }

    get hidden() {
        return this.element.hidden;
    }

    set hidden(value) {
        this.element.hidden = value;
    }
}

export function textInput(attributes = {}) {
    return h("input", { type: "text", class: "form-control", autocomplete: "off", spellcheck: "false", ...attributes });
}

export function numberInput(value, attributes = {}) {
    return h("input", { type: "text", inputmode: "numeric", class: "form-control narrow", value, ...attributes });
}

export function checkbox(label, checked, attributes = {}) {
    const input = h("input", { type: "checkbox", checked, ...attributes });
    return { input, element: h("label", { class: "check" }, input, h("span", {}, label)) };
}

/**
 * Shows a service error on the field it is about: the service's messages name the setting
 * ("MemoryStartupBytes must be at least 32 MiB", "the VM name …"). Returns true when a
 * field took it.
 */
export function placeServiceError(error, fields) {
    const message = errorMessage(error);
    for (const [keys, field] of fields) {
        if (field.element.hidden) continue;
        if (keys.some(key => key instanceof RegExp ? key.test(message) : message.includes(key))) {
            field.setError(message);
            field.control.focus();
            return true;
        }
    }
    return false;
}

/** Parses a field as a whole number; shows an error (and returns null) when it is not one. */
export function parseWhole(field, what) {
    const value = wholeNumber(field.control.value);
    if (value === null) field.setError(cockpit.format(_("$0 must be a whole number."), what));
    return value;
}

// MARK: Create

/** New-VM: Hyper-V's wizard in one dialog. Resolves once created (or cancelled). */
export function openCreateDialog(service) {
    const host = service.host ?? {};
    const name = new Field(_("Name"), textInput({ required: true, "aria-required": "true" }));

    const gen1 = h("input", { type: "radio", name: "generation", value: "1" });
    const gen2 = h("input", { type: "radio", name: "generation", value: "2", checked: true });
    const generationGroup = h("fieldset", { class: "form-field radios" },
        h("legend", {}, _("Generation")),
        h("label", { class: "check" }, gen1, h("span", {}, _("Generation 1 (BIOS)"))),
        h("label", { class: "check" }, gen2, h("span", {}, _("Generation 2 (UEFI)"))));

    const secureBoot = checkbox(_("Secure Boot"), host.SecureBootAvailable !== false);
    const secureBootRow = h("div", { class: "form-field" }, secureBoot.element,
        host.SecureBootAvailable === false ? h("p", { class: "field-help" }, _("No Secure Boot firmware (ovmf) on this host.")) : null);

    const processors = new Field(_("Virtual processors"), numberInput("1"));
    const memory = new Field(_("Startup memory (MiB)"), numberInput("1024"));
    const dynamic = checkbox(_("Dynamic memory"), false);
    const minimum = new Field(_("Minimum memory (MiB)"), numberInput("512"));
    const maximum = new Field(_("Maximum memory (MiB)"), numberInput("4096"));

    const diskChoice = h("select", { class: "form-control" },
        h("option", { value: "none" }, _("No hard disk")),
        h("option", { value: "new", selected: true }, _("New virtual hard disk")),
        h("option", { value: "existing" }, _("Existing image")));
    const disk = new Field(_("Hard disk"), diskChoice);
    const diskSize = new Field(_("Size (GiB)"), numberInput("20"),
        { help: cockpit.format(_("A qcow2 image in $0"), host.VirtualHardDiskPath ?? _("the host's virtual hard disk folder")) });
    const diskPath = new Field(_("Image path"), textInput({ placeholder: host.VirtualHardDiskPath ?? "" }));
    const media = new Field(_("Installation media (ISO, optional)"), textInput());
    const notes = new Field(_("Notes"), h("textarea", { class: "form-control", rows: 2 }));
    const start = checkbox(_("Start the virtual machine after creating it"), false);

    function sync() {
        const gen = gen1.checked ? 1 : 2;
        secureBootRow.hidden = gen !== 2;
        minimum.hidden = maximum.hidden = !dynamic.input.checked;
        diskSize.hidden = diskChoice.value !== "new";
        diskPath.hidden = diskChoice.value !== "existing";
    }
    for (const control of [gen1, gen2, dynamic.input, diskChoice]) control.addEventListener("change", sync);
    sync();

    const fields = [name, processors, memory, minimum, maximum, disk, diskSize, diskPath, media, notes];
    const errorPlaces = [
        [[/VM name/i, ErrorName.alreadyExists, "name is taken", "already exists"], name],
        [["ProcessorCount"], processors],
        [["MemoryMinimumBytes"], minimum],
        [["MemoryMaximumBytes"], maximum],
        [["MemoryStartupBytes"], memory],
        [["NewDiskSizeBytes"], diskSize],
        [["DiskPath"], diskPath],
        [["InstallMedia"], media],
        [["Notes"], notes],
    ];

    const full = element => { element.classList.add("full"); return element; };
    const body = h("div", { class: "form-grid" },
        full(name.element), generationGroup, secureBootRow, processors.element, memory.element,
        full(h("div", { class: "form-field" }, dynamic.element)), minimum.element, maximum.element,
        disk.element, diskSize.element, diskPath.element, full(media.element), full(notes.element),
        full(h("div", { class: "form-field" }, start.element)));

    return new Promise(resolve => {
        const handle = openDialog({
            title: _("New virtual machine"),
            body,
            submitLabel: _("Create"),
            wide: true,
            run: async ({ showProblem }) => {
                for (const field of fields) field.setError(null);
                const settings = collect();
                if (!settings) return false;
                try {
                    const path = await service.createVM(name.control.value, settings);
                    resolve(path);
                    return true;
                } catch (error) {
                    // AlreadyExists names no setting: it is about the name.
                    if (error?.name === ErrorName.alreadyExists) {
                        name.setError(errorMessage(error));
                        name.control.focus();
                    } else if (!placeServiceError(error, errorPlaces)) {
                        showProblem(errorMessage(error));
                    }
                    return false;
                }
            },
        });
        handle.dialog.addEventListener("close", () => resolve(null));
        handle.dialog.dataset.dialog = "create-vm";
        name.control.focus();
    });

    /** The a{sv} settings from the form, or null after marking fields that hold no number. */
    function collect() {
        const gen = gen1.checked ? 1 : 2;
        const count = parseWhole(processors, _("The number of processors"));
        const startup = parseWhole(memory, _("Startup memory"));
        let low, high, size;
        if (dynamic.input.checked) {
            low = parseWhole(minimum, _("Minimum memory"));
            high = parseWhole(maximum, _("Maximum memory"));
        }
        if (diskChoice.value === "new") {
            const gib = decimalNumber(diskSize.control.value);
            if (gib === null) diskSize.setError(_("The size must be a number."));
            else size = Math.round(gib * 1024) * MiB;
        }
        if (count === null || startup === null || low === null || high === null ||
            (diskChoice.value === "new" && size === undefined)) return null;
        const settings = {
            Generation: ["u", gen],
            ProcessorCount: ["u", count],
            MemoryStartupBytes: ["t", startup * MiB],
        };
        if (gen === 2) settings.SecureBoot = ["b", secureBoot.input.checked];
        if (dynamic.input.checked) {
            settings.DynamicMemory = ["b", true];
            settings.MemoryMinimumBytes = ["t", low * MiB];
            settings.MemoryMaximumBytes = ["t", high * MiB];
        }
        if (diskChoice.value === "new") settings.NewDiskSizeBytes = ["t", size];
        if (diskChoice.value === "existing") settings.DiskPath = ["s", diskPath.control.value.trim()];
        if (media.control.value.trim()) settings.InstallMedia = ["s", media.control.value.trim()];
        if (notes.control.value) settings.Notes = ["s", notes.control.value];
        if (start.input.checked) settings.Start = ["b", true];
        return settings;
    }
}

// MARK: Delete

/** Remove-VM for one or several VMs. `vms` is [{path, Name, State}]. Resolves to the
 *  options chosen, or null when cancelled. */
export function openDeleteDialog(vms) {
    const running = vms.filter(vm => !["Off", "Saved", "Crashed"].includes(vm.State));
    const names = vms.map(vm => vm.Name);
    const disks = checkbox(_("Also delete their disk images in the host's virtual hard disk folder"), false);
    const force = checkbox(cockpit.format(cockpit.ngettext("Turn off the running virtual machine first",
                                                           "Turn off the $0 running virtual machines first", running.length),
                                          running.length), running.length > 0);
    const shown = names.slice(0, 10);
    const body = h("div", {},
        h("p", {}, vms.length === 1
            ? cockpit.format(_("Delete the virtual machine $0? Its definition, saved state and UEFI variables are removed."), names[0])
            : cockpit.format(_("Delete these $0 virtual machines? Their definitions, saved states and UEFI variables are removed."), vms.length)),
        vms.length > 1 ? h("ul", { class: "name-list" }, shown.map(n => h("li", {}, n)),
                           names.length > shown.length ? h("li", {}, cockpit.format(_("and $0 more"), names.length - shown.length)) : null) : null,
        h("div", { class: "form-field" }, disks.element),
        running.length > 0 ? h("div", { class: "form-field" }, force.element) : null);
    return new Promise(resolve => {
        let chosen = null;
        const handle = openDialog({
            title: vms.length === 1 ? _("Delete virtual machine") : _("Delete virtual machines"),
            body,
            submitLabel: _("Delete"),
            danger: true,
            run: async () => {
                chosen = { deleteDisks: disks.input.checked, force: running.length > 0 && force.input.checked };
                return true;
            },
        });
        handle.dialog.dataset.dialog = "delete-vm";
        handle.dialog.addEventListener("close", () => resolve(chosen));
    });
}

/** A yes/no question (removing a disk). Resolves to the checkbox states or null. */
export function openConfirmDialog({ title, text, submitLabel, checks = [] }) {
    const boxes = checks.map(label => checkbox(label, false));
    return new Promise(resolve => {
        let chosen = null;
        const handle = openDialog({
            title,
            body: h("div", {}, h("p", {}, text), boxes.map(box => h("div", { class: "form-field" }, box.element))),
            submitLabel,
            danger: true,
            run: async () => {
                chosen = boxes.map(box => box.input.checked);
                return true;
            },
        });
        handle.dialog.addEventListener("close", () => resolve(chosen));
    });
}
