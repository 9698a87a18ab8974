// Jobs (org.example.VMMS1.Job): Export and Move reply at once with a Job, whose
// PercentComplete / State / ErrorMessage follow by PropertiesChanged and which ends with its
// Completed signal. A job view shows one job live with a Cancel button; the job dialog holds
// one, and the VM page lists the jobs of its VM.

import { h, fill, setText, uid } from "./dom.js";
import { JOB_INTERFACE, errorMessage } from "./service.js";

const _ = cockpit.gettext;

const STATE_LABELS = {
    Running: _("Running"),
    Completed: _("Completed"),
    Failed: _("Failed"),
    Cancelled: _("Cancelled"),
};

export const OPERATION_LABELS = {
    Export: _("Export"),
    Move: _("Move"),
    Import: _("Import"),
};

/** One job, live: a labelled progress bar, its state and error, a Cancel button. Call
 *  `update()` when the service's jobs change; `finished` tells whether it has ended. The
 *  last values stay shown after the job has left the bus (300 s after it ended). */
export class JobView {
    constructor(service, path, { title } = {}) {
        this.service = service;
        this.path = path;
        this.last = { State: "Running", PercentComplete: 0 };
        const labelId = uid("job-label");
        this.label = h("span", { id: labelId, class: "job-label" }, title ?? path);
        this.bar = h("progress", { max: 100, value: 0, "aria-labelledby": labelId });
        this.percentText = h("span", { class: "job-percent" });
        this.stateText = h("span", { class: "job-state", "aria-live": "polite" });
        this.errorText = h("p", { class: "inline-problem job-error", role: "alert", hidden: true });
        this.cancelButton = h("button", { type: "button", class: "btn btn-secondary", dataset: { action: "cancel-job" },
                                          onclick: () => this.cancel() }, _("Cancel"));
        this.element = h("div", { class: "job", dataset: { job: path, state: "Running" } },
            h("div", { class: "job-line" }, this.label, this.percentText, this.stateText),
            this.bar, this.errorText, h("div", { class: "job-actions" }, this.cancelButton));
        this.update();
    }

    get finished() {
        return this.last.State !== "Running";
    }

    update() {
        const job = this.service.jobs.get(this.path);
        if (job) this.last = { ...job };
        const { State: state, PercentComplete: percent = 0, ErrorMessage: message } = this.last;
        this.bar.value = Math.max(0, Math.min(100, percent));
        setText(this.percentText, `${percent} %`);
        setText(this.stateText, STATE_LABELS[state] ?? state ?? "");
        this.element.dataset.state = state ?? "";
        this.element.dataset.percent = String(percent);
        setText(this.errorText, state === "Failed" || state === "Cancelled" ? (message || "") : "");
        this.errorText.hidden = !this.errorText.textContent;
        this.cancelButton.hidden = this.finished;
    }

    async cancel() {
        this.cancelButton.disabled = true;
        try {
            await this.service.callObject(this.path, JOB_INTERFACE, "Cancel");
        } catch (error) {
            // A job that has just finished cannot be cancelled: its Completed signal says how it ended.
            setText(this.errorText, errorMessage(error));
            this.errorText.hidden = false;
        } finally {
            this.cancelButton.disabled = false;
        }
    }
}

/** A dialog that follows one job until it ends; closing it leaves the job running (the VM
 *  page lists it). Resolves to the job's last state when closed. */
export function openJobDialog(service, path, title) {
    const opener = document.activeElement;
    const titleId = uid("job-dialog-title");
    const view = new JobView(service, path, { title });
    const close = h("button", { type: "button", class: "btn btn-primary", dataset: { action: "close-job" } }, _("Close"));
    const hint = h("p", { class: "field-help" }, _("Closing this dialog does not stop the job."));
    const dialog = h("dialog", { class: "vmms-dialog", "aria-labelledby": titleId, dataset: { dialog: "job" } },
        h("div", { class: "dialog-form" },
            h("header", {}, h("h2", { id: titleId }, title)),
            h("div", { class: "dialog-body" }, view.element, hint),
            h("footer", {}, close)));
    const listener = () => {
        view.update();
        hint.hidden = view.finished;
        dialog.dataset.state = view.last.State ?? "";
    };
    service.addEventListener("jobs", listener);
    service.addEventListener("job-completed", listener);
    listener();
    return new Promise(resolve => {
        close.addEventListener("click", () => dialog.close());
        dialog.addEventListener("close", () => {
            service.removeEventListener("jobs", listener);
            service.removeEventListener("job-completed", listener);
            dialog.remove();
            if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
            resolve(view.last.State);
        });
        document.body.append(dialog);
        dialog.showModal();
        (view.finished ? close : view.cancelButton).focus();
    });
}

/** The jobs of one target object (a VM), newest first, each a JobView kept across updates. */
export class JobList {
    constructor(service) {
        this.service = service;
        this.views = new Map();
        this.element = h("div", { class: "job-list", "aria-live": "off" });
    }

    update(targetPath) {
        const paths = [...this.service.jobs].filter(([, job]) => job.Target === targetPath)
            .sort(([, a], [, b]) => (b.StartTime ?? 0) - (a.StartTime ?? 0)).map(([path]) => path);
        for (const path of [...this.views.keys()]) if (!paths.includes(path)) this.views.delete(path);
        for (const path of paths) {
            const job = this.service.jobs.get(path);
            if (!this.views.has(path)) {
                this.views.set(path, new JobView(this.service, path, { title: OPERATION_LABELS[job.Operation] ?? job.Operation ?? _("Job") }));
            }
            this.views.get(path).update();
        }
        const elements = paths.map(path => this.views.get(path).element);
        if (elements.length !== this.element.children.length || elements.some((e, i) => this.element.children[i] !== e)) {
            fill(this.element, elements);
        }
        return paths.length;
    }
}
