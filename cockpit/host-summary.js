// The host at a glance (Windows Admin Center's summary): VMs by state, processors and memory
// against what running VMs hold, and the service's connection to libvirt. Each card is one
// entry of `cards`; the last one holds the Best Practices Analyzer's findings (CheckHealth),
// asked again at most every HEALTH_INTERVAL ms while the inventory changes.

import { h, fill, setText } from "./dom.js";
import { bytes, stateLabel, stateClass, STATES } from "./format.js";

const _ = cockpit.gettext;

const RUNNING_STATES = new Set(["Running", "Paused", "Starting", "Stopping", "Saving"]);
const HEALTH_INTERVAL = 5000;

export class HostSummary {
    /** onState(state): show only VMs in that state. */
    constructor(service, { onState }) {
        this.service = service;
        this.onState = onState;
        this.cards = [this._vmCard(), this._processorCard(), this._memoryCard(), this._hostCard(), this._healthCard()];
        this.element = h("section", { class: "host-summary", "aria-label": _("Host summary") },
            this.cards.map(card => card.element));
    }

    update() {
        const host = this.service.host;
        const vms = [...this.service.vms.values()];
        for (const card of this.cards) card.update(host, vms);
    }

    _card(title, ...content) {
        const id = `summary-${title.toLowerCase().replace(/[^a-z]+/g, "-")}`;
        return h("section", { class: "summary-card", "aria-labelledby": id }, h("h2", { id }, title), content);
    }

    _vmCard() {
        const total = h("p", { class: "big-number" });
        const list = h("ul", { class: "state-counts" });
        let shown = "";
        return {
            element: this._card(_("Virtual machines"), total, list),
            update: (_host, vms) => {
                const counts = new Map();
                for (const vm of vms) counts.set(vm.State, (counts.get(vm.State) ?? 0) + 1);
                setText(total, vms.length);
                const key = JSON.stringify([...counts]);
                if (key === shown) return;
                shown = key;
                fill(list, STATES.filter(state => counts.has(state)).map(state =>
                    h("li", {}, h("button", {
                        type: "button", class: "link state-count", dataset: { state },
                        "aria-label": cockpit.format(_("$0 $1, show only these"), counts.get(state), stateLabel(state)),
                        onclick: () => this.onState(state),
                    }, h("span", { class: stateClass(state), "aria-hidden": "true" }),
                       h("span", { class: "count" }, counts.get(state)), " ", stateLabel(state)))));
            },
        };
    }

    /**
     * Host capacity against what the VMs use: `measure(host, vms)` returns
     * {total: text, used, capacity, detail: text}.
     */
    _capacityCard(title, meterLabel, measure) {
        const total = h("p", { class: "big-number" });
        const detail = h("p", { class: "summary-detail" });
        const bar = h("span", { class: "meter-fill" });
        const meter = h("div", { class: "meter", role: "meter", "aria-label": meterLabel, "aria-valuemin": 0, "aria-valuemax": 100 }, bar);
        return {
            element: this._card(title, total, meter, detail),
            update: (host, vms) => {
                const { total: totalText, used, capacity, detail: detailText } = measure(host, vms);
                setText(total, totalText);
                setText(detail, detailText);
                const fraction = capacity ? used / capacity : 0;
                const value = Math.max(0, Math.min(1, fraction));
                bar.style.width = `${(value * 100).toFixed(1)}%`;
                meter.setAttribute("aria-valuenow", String(Math.round(value * 100)));
                meter.setAttribute("aria-valuetext", detailText);
                meter.classList.toggle("over", fraction > 1);
            },
        };
    }

    _processorCard() {
        return this._capacityCard(_("Processors"), _("Virtual processors of running VMs per logical processor"), (host, vms) => {
            const logical = host?.LogicalProcessorCount;
            const used = vms.filter(vm => RUNNING_STATES.has(vm.State)).reduce((sum, vm) => sum + (vm.ProcessorCount ?? 0), 0);
            return {
                total: logical !== undefined ? cockpit.format(_("$0 logical"), logical) : "-",
                used,
                capacity: logical,
                detail: cockpit.format(cockpit.ngettext("$0 virtual processor in running VMs",
                                                        "$0 virtual processors in running VMs", used), used),
            };
        });
    }

    _memoryCard() {
        return this._capacityCard(_("Memory"), _("Memory assigned to running VMs"), (host, vms) => {
            const capacity = host?.MemoryCapacityBytes;
            const used = vms.reduce((sum, vm) => sum + (vm.MemoryAssignedBytes ?? 0), 0);
            return {
                total: capacity !== undefined ? bytes(capacity) : "-",
                used,
                capacity,
                detail: cockpit.format(_("$0 assigned to running VMs"), bytes(used)),
            };
        });
    }

    /** Findings as a list, Error ones first; "No problems found" for a healthy host. A
     *  change while a check runs (or within HEALTH_INTERVAL of the last) asks once more later. */
    _healthCard() {
        const status = h("p", { class: "health-status", role: "status" });
        const list = h("ul", { class: "health-findings" });
        const element = this._card(_("Health"), status, list);
        let running = false, again = false, last = 0, timer = null;
        const render = findings => {
            element.dataset.findings = findings.map(f => f.rule).join(" ");
            setText(status, findings.length === 0 ? _("No problems found")
                : cockpit.format(cockpit.ngettext("$0 finding", "$0 findings", findings.length), findings.length));
            fill(list, findings.map(f => h("li", { class: `finding finding-${f.severity.toLowerCase()}`, dataset: { rule: f.rule } },
                h("span", { class: "finding-severity" }, f.severity === "Error" ? _("Error") : f.severity === "Warning" ? _("Warning") : _("Information")),
                " ", h("span", { class: "finding-message" }, f.message))));
        };
        const check = async () => {
            if (running) { again = true; return; }
            running = true;
            last = Date.now();
            try {
                render(await this.service.checkHealth());
            } catch (error) {
                element.dataset.findings = "";
                setText(status, cockpit.format(_("Health cannot be checked: $0"), error?.message ?? String(error)));
                fill(list);
            } finally {
                running = false;
                if (again) { again = false; schedule(); }
            }
        };
        const schedule = () => {
            if (timer !== null) return;
            timer = setTimeout(() => { timer = null; check(); }, Math.max(0, last + HEALTH_INTERVAL - Date.now()));
        };
        return {
            element,
            update: host => {
                element.hidden = !host;
                if (host) schedule();
            },
        };
    }

    _hostCard() {
        const connection = h("p", { class: "connection" });
        const facts = h("dl", { class: "facts compact" });
        let shown = "";
        return {
            element: this._card(_("Host"), connection, facts),
            update: host => {
                fill(connection,
                    h("span", { class: host?.Connected ? "dot dot-ok" : "dot dot-bad", "aria-hidden": "true" }),
                    host ? (host.Connected ? cockpit.format(_("Connected to $0"), host.ConnectionURI)
                                           : cockpit.format(_("libvirt is not reachable ($0); reconnecting"), host.ConnectionURI))
                         : _("Host details are not available to you"));
                connection.dataset.connected = String(!!host?.Connected);
                const hypervisor = host?.Hypervisor === "kvm" ? _("KVM") : host?.Hypervisor === "qemu"
                    ? _("QEMU, software emulation") : host?.Hypervisor ?? "-";
                const rows = host ? [[_("Name"), host.Hostname], [_("Hypervisor"), `${hypervisor} ${host.HypervisorVersion ?? ""}`.trim()],
                                     [_("Service"), cockpit.format(_("vmms $0"), host.ServiceVersion ?? "")]] : [];
                const key = JSON.stringify(rows);
                if (key === shown) return;
                shown = key;
                fill(facts, rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value ?? "-")]));
            },
        };
    }
}
