// Entry point: routes between the list and a VM's page, shows the page-wide states
// (loading, not authorized, service not running) and carries out actions with feedback.
//
// Routes (cockpit.location, so the shell's URL and history follow):
//   /               host summary and VM list
//   /vm/<uuid>      one VM (its adapters, checkpoints, export and move with the job's progress)
//   /switches       virtual switches
//   /sans           virtual SANs

import { h, fill, frameScheduler } from "./dom.js";
import { VMMSService, Status, vmPathForUUID, errorMessage } from "./service.js";
import { VMList } from "./vm-list.js";
import { VMPage } from "./vm-page.js";
import { HostSummary } from "./host-summary.js";
import { SwitchesView, SANsView } from "./host-resources.js";
import { openCreateDialog, openDeleteDialog, Field, textInput } from "./dialogs.js";
import { runForEach, powerCall, deleteCall } from "./actions.js";

const _ = cockpit.gettext;

class App {
    constructor(root) {
        this.service = new VMMSService();
        this.notifications = h("div", { class: "notifications", "aria-live": "polite" });
        this.banner = h("div", { class: "banner", hidden: true, role: "status" });
        this.stateScreen = h("div", { class: "state-screen", hidden: true });
        this.list = new VMList(this.service, {
            open: path => this.open(path),
            create: () => this.create(),
            power: (action, paths) => this.power(action, paths),
            remove: paths => this.remove(paths),
        });
        this.summary = new HostSummary(this.service, { onState: state => this.list.setStateFilter(state) });
        this.listView = h("div", { class: "list-view" },
            h("header", { class: "page-header" }, h("h1", { id: "page-title" }, _("Virtual machines")),
              h("div", { class: "toolbar-end" }, this.list.createButton)),
            this.summary.element, this.list.element);
        this.page = new VMPage(this.service, { back: () => cockpit.location.go([]), remove: paths => this.remove(paths) });
        const notify = (text, kind) => this.notify(text, kind);
        this.switchesView = new SwitchesView(this.service, { notify });
        this.sansView = new SANsView(this.service, { notify });
        this.tabs = [
            { route: [], label: _("Virtual machines"), id: "list" },
            { route: ["switches"], label: _("Virtual switches"), id: "switches" },
            { route: ["sans"], label: _("Virtual SANs"), id: "sans" },
        ].map(tab => ({ ...tab, link: h("a", { href: "#/" + tab.route.join("/"), class: "view-tab", dataset: { view: tab.id },
                                              onclick: event => { event.preventDefault(); cockpit.location.go(tab.route); } }, tab.label) }));
        this.tabBar = h("nav", { class: "view-tabs", "aria-label": _("Views") }, h("ul", {}, this.tabs.map(tab => h("li", {}, tab.link))));
        this.main = h("main", { class: "main", "aria-busy": "true" }, this.banner, this.stateScreen, this.tabBar, this.listView,
                      this.switchesView.element, this.sansView.element, this.page.element);
        fill(root, this.notifications, this.main);

        this.schedule = frameScheduler(() => this.render());
        this.service.addEventListener("status", () => this.schedule());
        this.service.addEventListener("host", () => this.schedule());
        this.service.addEventListener("vms", () => { this.list.update(); this.schedule(); });
        for (const kind of ["switches", "checkpoints", "jobs", "sans"]) this.service.addEventListener(kind, () => this.schedule());
        cockpit.addEventListener("locationchanged", () => this.schedule());
        this.groups = [];
        cockpit.user().then(user => { this.groups = user.groups ?? []; this.stateKey = null; this.schedule(); }, () => {});
        window.setInterval(() => this.tick(), 1000);
        this.render();
    }

    render() {
        const { status } = this.service;
        const showData = status === Status.ready || status === Status.delegated;
        this.main.setAttribute("aria-busy", String(status === Status.loading));
        document.documentElement.dataset.vmmsStatus = status;
        document.documentElement.dataset.vmmsProblem = this.service.problem?.name ?? "";
        this._renderBanner();
        this._renderStateScreen(showData);

        const route = cockpit.location.path;
        const vmPath = route[0] === "vm" && route[1] ? vmPathForUUID(route[1]) : null;
        const section = vmPath ? "vm" : ["switches", "sans"].includes(route[0]) ? route[0] : "list";
        this.listView.hidden = !showData || section !== "list";
        this.switchesView.element.hidden = !showData || section !== "switches";
        this.sansView.element.hidden = !showData || section !== "sans";
        this.page.element.hidden = !showData || vmPath === null;
        // Switches and SANs are host objects: a delegated user sees neither.
        this.tabBar.hidden = !showData || vmPath !== null || status === Status.delegated;
        for (const tab of this.tabs) {
            if (tab.id === section) tab.link.setAttribute("aria-current", "page");
            else tab.link.removeAttribute("aria-current");
        }
        if (!showData) return;
        this.list.createButton.hidden = status === Status.delegated;
        this.summary.element.hidden = status === Status.delegated && !this.service.host;
        if (vmPath) {
            this.page.show(vmPath);
        } else if (section === "switches") {
            this.switchesView.update();
        } else if (section === "sans") {
            this.sansView.update();
        } else {
            this.summary.update();
            this.list.schedule();
        }
        // A new view takes the focus, as a new page would: the VM's heading, or the list.
        const view = vmPath ?? section;
        if (this.shownView !== undefined && view !== this.shownView) {
            if (vmPath) this.page.focus();
            else if (section === "switches") this.switchesView.focus();
            else if (section === "sans") this.sansView.focus();
            else this.list.focus();
        }
        this.shownView = view;
    }

    tick() {
        if (!this.listView.hidden) this.list.tick();
        if (!this.page.element.hidden) this.page.tick();
    }

    _renderBanner() {
        const { status, host } = this.service;
        let content = null;
        if (status === Status.ready && host && host.Connected === false) {
            content = [h("strong", {}, _("libvirt is not reachable.")), " ",
                _("vmms reconnects by itself; until then actions fail and states may be out of date.")];
            this.banner.dataset.banner = "disconnected";
        } else if (status === Status.delegated) {
            content = [h("strong", {}, _("Only virtual machines delegated to you are shown.")), " ",
                _("You may not list all virtual machines on this host."), " ", this._openForm(true)];
            this.banner.dataset.banner = "delegated";
        }
        if (content === null) {
            if (!this.banner.hidden) fill(this.banner);
            this.banner.hidden = true;
            this.bannerKey = null;
            return;
        }
        // Rebuild only when what it says changes: the open form must keep its text and focus.
        const key = this.banner.dataset.banner;
        if (this.bannerKey !== key) {
            fill(this.banner, content);
            this.bannerKey = key;
        }
        this.banner.hidden = false;
    }

    _renderStateScreen(showData) {
        const { status, problem } = this.service;
        const key = showData ? null : `${status}\n${problem?.name}\n${problem?.message}`;
        if (key === this.stateKey) return;
        this.stateKey = key;
        this.stateScreen.hidden = showData;
        if (showData) {
            fill(this.stateScreen);
            return;
        }
        const retry = h("button", { type: "button", class: "btn btn-primary", onclick: () => this.service.load() }, _("Try again"));
        const detail = problem?.message ? h("p", { class: "problem-detail" }, problem.message) : null;
        let content;
        if (status === Status.loading) {
            content = [h("div", { class: "spinner", "aria-hidden": "true" }), h("h1", {}, _("Loading virtual machines…"))];
        } else if (status === Status.notAuthorized) {
            // Administrators are asked for their password by Cockpit's polkit agent, which
            // cockpit-bridge registers for sessions logind knows; without one, polkit says no.
            const administrator = this.groups.includes("sudo") || this.groups.includes("wheel");
            content = [
                h("h1", {}, _("You are not authorized to manage virtual machines on this host")),
                detail,
                administrator
                    ? h("p", { class: "admin-hint" }, _("As an administrator you confirm with your password, but no authentication agent answered for this session (Cockpit's polkit agent needs a session that systemd-logind tracks). Members of the group vmms-admins are never asked."))
                    : h("p", {}, _("Members of the group vmms-admins manage all virtual machines. Administrators (groups sudo and wheel) confirm with their password. An administrator can also delegate single virtual machines to you with a polkit rule.")),
                this._openForm(false),
                retry,
            ];
        } else if (status === Status.serviceDown) {
            content = [
                h("h1", {}, _("The service required to manage virtual machines is not running")),
                h("p", {}, _("Start it with “systemctl start vmms” (it also starts on demand when it is installed). This page reconnects by itself when the service comes up.")),
                detail, retry,
            ];
        } else {
            content = [h("h1", {}, _("Cannot talk to the virtual machine management service")), detail, retry];
        }
        fill(this.stateScreen, h("div", { class: "empty-state", dataset: { state: status } }, content));
    }

    /** "Open a virtual machine by name or UUID": how a user with per-VM rights finds it. */
    _openForm(inline) {
        const field = new Field(_("Name or UUID of a virtual machine delegated to you"), textInput({ name: "vm" }));
        const form = h("form", { class: inline ? "open-form inline" : "open-form", novalidate: true },
            field.element, h("button", { type: "submit", class: "btn btn-secondary" }, _("Open")));
        form.addEventListener("submit", async event => {
            event.preventDefault();
            field.setError(null);
            try {
                const path = await this.service.openVM(field.control.value);
                this.open(path);
            } catch (error) {
                field.setError(errorMessage(error));
            }
        });
        return form;
    }

    // MARK: actions

    open(path) {
        const vm = this.service.vms.get(path);
        if (vm?.UUID) cockpit.location.go(["vm", vm.UUID]);
    }

    async create() {
        const path = await openCreateDialog(this.service);
        if (path) {
            const name = this.service.vms.get(path)?.Name;
            this.notify(name ? cockpit.format(_("Created $0."), name) : _("Created the virtual machine."), "success");
        }
    }

    async power(action, paths) {
        if (paths.length === 0) return;
        const names = new Map(paths.map(path => [path, this.service.vms.get(path)?.Name ?? path]));
        const progress = this.notify(cockpit.format(cockpit.ngettext("$0 $1…", "$0 $2 virtual machines…", paths.length),
                                                    action.verb, names.get(paths[0]), paths.length), "info", { sticky: true });
        const failures = await runForEach(paths, path => powerCall(this.service, action, path));
        progress.dismiss();
        this.reportFailures(action.label, failures, names);
        // A power action shows in the State column; a checkpoint does not, so it says so.
        const succeeded = paths.filter(path => !failures.some(failure => failure.path === path));
        if (action.done && succeeded.length > 0) this.notify(action.done(names.get(succeeded[0]), succeeded.length), "success");
    }

    async remove(paths) {
        const vms = paths.map(path => ({ path, ...this.service.vms.get(path) })).filter(vm => vm.Name !== undefined);
        if (vms.length === 0) return;
        const options = await openDeleteDialog(vms);
        if (!options) return;
        const names = new Map(vms.map(vm => [vm.path, vm.Name]));
        const failures = await runForEach(paths, path => deleteCall(this.service, path, options));
        this.reportFailures(_("Delete"), failures, names);
        if (failures.length < paths.length) {
            this.notify(cockpit.format(cockpit.ngettext("Deleted $0.", "Deleted $1 virtual machines.", paths.length - failures.length),
                                       names.get(paths.find(p => !failures.some(f => f.path === p))), paths.length - failures.length), "success");
        }
        if (cockpit.location.path[0] === "vm" && !this.service.vms.has(this.page.path)) cockpit.location.go([]);
    }

    reportFailures(what, failures, names) {
        for (const failure of failures) {
            this.notify(cockpit.format(_("$0 $1 failed: $2"), what, names.get(failure.path) ?? failure.path, failure.message), "danger");
        }
    }

    /** A dismissable message; errors stay until dismissed, others go after a few seconds. */
    notify(text, kind = "info", { sticky = kind === "danger" } = {}) {
        const close = h("button", { type: "button", class: "close", "aria-label": _("Dismiss") }, "×");
        const item = h("div", { class: `notification ${kind}`, role: kind === "danger" ? "alert" : "status" },
            h("span", { class: "notification-text" }, text), close);
        const dismiss = () => item.remove();
        close.addEventListener("click", dismiss);
        this.notifications.append(item);
        if (!sticky) window.setTimeout(dismiss, 6000);
        return { dismiss };
    }
}

const app = new App(document.getElementById("app"));
// For tests and the console only.
window.vmms = app;
