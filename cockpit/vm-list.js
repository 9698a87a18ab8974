// The VM list: Get-VM's columns, live, for any number of VMs.
//
// Only the rows in view (plus a margin) are in the document; spacer rows stand in for the
// others, so 1,000 VMs cost as much as 40. It is an ARIA grid: aria-rowcount and
// aria-rowindex tell screen readers the real size and position, one row is in the tab
// order (roving tabindex), and the keyboard does what the mouse does:
//   Up/Down/Home/End/PageUp/PageDown  move        Shift+move  extend the selection
//   Space                             select      Ctrl+A      select all shown
//   Enter                             open        Escape      clear the selection
//   Delete                            delete the selected VMs (asks first)

import { h, setText, uid, frameScheduler } from "./dom.js";
import { bytes, percent, uptime, stateLabel, stateClass, STATES } from "./format.js";
import { POWER_ACTIONS, CHECKPOINT, allowed } from "./actions.js";

const _ = cockpit.gettext;

/** Must match `.vm-row { height }` in vmms.css. */
export const ROW_HEIGHT = 40;
const OVERSCAN = 10;

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const STATE_ORDER = Object.fromEntries(STATES.map((state, index) => [state, index]));

const COLUMNS = [
    { id: "name", label: _("Name"), key: vm => vm.Name ?? "", text: true },
    { id: "state", label: _("State"), key: vm => STATE_ORDER[vm.State] ?? STATES.length },
    { id: "cpu", label: _("CPU usage"), key: vm => vm.CPUUsage ?? -1 },
    { id: "memory", label: _("Assigned memory"), key: vm => vm.MemoryAssignedBytes ?? -1 },
    // A longer uptime is an earlier start.
    { id: "uptime", label: _("Uptime"), key: vm => (vm.StartTime > 0 ? -vm.StartTime : -Infinity) },
    { id: "generation", label: _("Generation"), key: vm => vm.Generation ?? 0 },
];

export class VMList {
    /**
     * @param service   VMMSService
     * @param handlers  {open(path), create(), power(action, paths), remove(paths)}
     */
    constructor(service, handlers) {
        this.service = service;
        this.handlers = handlers;
        this.filterText = "";
        this.stateFilter = "";
        this.sort = { column: "name", ascending: true };
        this.view = [];
        this.viewDirty = true;
        this.selected = new Set();
        this.anchor = null;         // where a Shift selection starts
        this.focusIndex = 0;
        this.rows = new Map();      // path → rendered <tr>
        this.marked = false;
        /** Re-renders at the next animation frame (at most once per frame). */
        this.schedule = frameScheduler(() => this.render());
        this._build();
    }

    // MARK: building

    _build() {
        const tableId = uid("vm-table");
        this.filterInput = h("input", {
            type: "search", class: "form-control", id: "vm-filter", placeholder: _("Filter by name"),
            "aria-label": _("Filter by name"), "aria-controls": tableId,
            oninput: () => { this.filterText = this.filterInput.value; this._viewChanged(); },
        });
        this.stateSelect = h("select", {
            class: "form-control", id: "vm-state-filter", "aria-label": _("Filter by state"), "aria-controls": tableId,
            onchange: () => { this.stateFilter = this.stateSelect.value; this._viewChanged(); },
        }, h("option", { value: "" }, _("All states")), STATES.map(state => h("option", { value: state }, stateLabel(state))));

        // Hyper-V Manager's set, Checkpoint included (each acts on the selected VMs it applies to).
        this.actionButtons = [...POWER_ACTIONS, CHECKPOINT].map(action => {
            const button = h("button", {
                type: "button", class: "btn btn-secondary", dataset: { action: action.id },
                onclick: () => this.handlers.power(action, this._selectedAllowing(action)),
            }, action.label);
            return { action, button };
        });
        this.deleteButton = h("button", {
            type: "button", class: "btn btn-danger-secondary", dataset: { action: "delete" },
            onclick: () => this.handlers.remove(this._selectedPaths()),
        }, _("Delete…"));
        // Placed by the app in the page header.
        this.createButton = h("button", {
            type: "button", class: "btn btn-primary", id: "vm-create", onclick: () => this.handlers.create(),
        }, _("New virtual machine"));
        this.selectionText = h("span", { class: "selection-count", "aria-live": "polite" });

        const toolbar = h("div", { class: "toolbar" },
            h("div", { class: "toolbar-group" }, this.filterInput, this.stateSelect),
            h("div", { class: "toolbar-group", role: "group", "aria-label": _("Actions on the selected virtual machines") },
                this.actionButtons.map(entry => entry.button), this.deleteButton),
            this.selectionText);

        this.selectAll = h("input", {
            type: "checkbox", "aria-label": _("Select all shown virtual machines"),
            onchange: () => this._selectAllShown(this.selectAll.checked),
        });
        this.headers = COLUMNS.map(column => {
            const button = h("button", { type: "button", class: "sort-button", onclick: () => this._sortBy(column.id) }, column.label);
            return { column, th: h("th", { scope: "col", class: `col-${column.id}` }, button) };
        });
        this.topSpacer = h("tr", { class: "spacer", "aria-hidden": "true" }, h("td", { colspan: COLUMNS.length + 1 }));
        this.bottomSpacer = h("tr", { class: "spacer", "aria-hidden": "true" }, h("td", { colspan: COLUMNS.length + 1 }));
        this.tbody = h("tbody", {}, this.topSpacer, this.bottomSpacer);
        this.thead = h("thead", {}, h("tr", { "aria-rowindex": 1 },
            h("th", { scope: "col", class: "col-select" }, this.selectAll), this.headers.map(entry => entry.th)));
        this.table = h("table", {
            class: "vm-table", id: tableId, role: "grid", "aria-multiselectable": "true",
            "aria-label": _("Virtual machines"), "aria-rowcount": 1, "aria-colcount": COLUMNS.length + 1,
        }, this.thead, this.tbody);
        this.scroller = h("div", { class: "vm-scroll", tabindex: "-1" }, this.table);
        this.emptyText = h("p", { class: "vm-empty", hidden: true });
        this.countText = h("p", { class: "vm-count", id: "vm-count", "aria-live": "polite" });
        this.element = h("section", { class: "vm-list", "aria-label": _("Virtual machines") },
            toolbar, this.scroller, this.emptyText, this.countText);

        this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
        new ResizeObserver(() => this.schedule()).observe(this.scroller);
        this.tbody.addEventListener("click", event => this._click(event));
        this.table.addEventListener("keydown", event => this._key(event));
        this.scroller.addEventListener("keydown", event => { if (event.target === this.scroller) this._key(event); });
        this.tbody.addEventListener("focusin", event => {
            const row = event.target.closest("tr.vm-row");
            if (row) this.focusIndex = this.view.indexOf(row.dataset.path);
        });
        this._updateSortHeaders();
    }

    // MARK: public

    /** The inventory changed (paths: the VMs concerned, or null for everything). */
    update() {
        this.viewDirty = true;
        this.schedule();
    }

    setStateFilter(state) {
        this.stateSelect.value = state;
        this.stateFilter = state;
        this._viewChanged();
        this.scroller.focus();
    }

    /** Puts the keyboard focus back into the list (on return from a VM's page). */
    focus() {
        this.schedule.now();
        (this.rows.get(this.view[this.focusIndex]) ?? this.scroller).focus({ preventScroll: true });
    }

    /** The uptime column follows the clock. */
    tick() {
        const now = Date.now() / 1000;
        for (const [path, row] of this.rows) {
            const vm = this.service.vms.get(path);
            if (vm) setText(row.parts.uptime, uptime(vm.StartTime, now));
        }
    }

    // MARK: view (filter and sort)

    _viewChanged() {
        this.viewDirty = true;
        this.scroller.scrollTop = 0;
        this.focusIndex = 0;
        this.schedule();
    }

    _computeView() {
        const text = this.filterText.trim().toLowerCase();
        const state = this.stateFilter;
        const column = COLUMNS.find(c => c.id === this.sort.column) ?? COLUMNS[0];
        const entries = [];
        for (const [path, vm] of this.service.vms) {
            if (text && !(vm.Name ?? "").toLowerCase().includes(text)) continue;
            if (state && vm.State !== state) continue;
            entries.push([column.key(vm), vm.Name ?? "", path]);
        }
        const direction = this.sort.ascending ? 1 : -1;
        entries.sort((a, b) => {
            const primary = column.text ? collator.compare(a[0], b[0]) : (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
            return direction * primary || collator.compare(a[1], b[1]) || (a[2] < b[2] ? -1 : 1);
        });
        this.view = entries.map(entry => entry[2]);
        this.viewIndex = new Map(this.view.map((path, index) => [path, index]));
        // A VM that went away or is filtered out is no longer selected: actions only ever
        // apply to rows the user can see.
        for (const path of this.selected) if (!this.viewIndex.has(path)) this.selected.delete(path);
        this.viewDirty = false;
    }

    _sortBy(columnId) {
        if (this.sort.column === columnId) this.sort.ascending = !this.sort.ascending;
        else this.sort = { column: columnId, ascending: true };
        this._updateSortHeaders();
        this.viewDirty = true;
        this.schedule();
    }

    _updateSortHeaders() {
        for (const { column, th } of this.headers) {
            if (column.id === this.sort.column) th.setAttribute("aria-sort", this.sort.ascending ? "ascending" : "descending");
            else th.removeAttribute("aria-sort");
        }
    }

    // MARK: rendering

    render() {
        if (this.viewDirty) this._computeView();
        const total = this.view.length;
        this.focusIndex = Math.min(this.focusIndex, Math.max(0, total - 1));
        this.table.setAttribute("aria-rowcount", String(total + 1));
        const headerHeight = this.thead.offsetHeight;
        const top = Math.max(0, this.scroller.scrollTop - headerHeight);
        const height = this.scroller.clientHeight;
        const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
        const last = Math.min(total, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);

        const hadFocus = this.tbody.contains(document.activeElement);
        this._setSpacer(this.topSpacer, first * ROW_HEIGHT);
        this._setSpacer(this.bottomSpacer, (total - last) * ROW_HEIGHT);

        const wanted = new Set(this.view.slice(first, last));
        for (const [path, row] of this.rows) {
            if (!wanted.has(path)) {
                row.remove();
                this.rows.delete(path);
            }
        }
        // Keyed placement: rows that stay keep their element (and focus); only misplaced
        // ones move.
        let cursor = this.topSpacer.nextSibling;
        const now = Date.now() / 1000;
        for (let index = first; index < last; index++) {
            const path = this.view[index];
            let row = this.rows.get(path);
            if (!row) {
                row = this._makeRow(path);
                this.rows.set(path, row);
            }
            this._fillRow(row, this.service.vms.get(path), index, now);
            if (row !== cursor) this.tbody.insertBefore(row, cursor);
            else cursor = cursor.nextSibling;
        }

        // Roving tabindex: the focus row, or the first one in view if it scrolled away.
        if (!this.rows.has(this.view[this.focusIndex]) && !hadFocus) {
            this.focusIndex = Math.min(Math.max(first, Math.floor(top / ROW_HEIGHT)), Math.max(0, last - 1));
        }
        const focusPath = this.view[this.focusIndex];
        for (const [path, row] of this.rows) row.tabIndex = path === focusPath ? 0 : -1;
        if (hadFocus && !this.tbody.contains(document.activeElement)) {
            const row = this.rows.get(focusPath);
            (row ?? this.scroller).focus({ preventScroll: true });
        }

        this._renderChrome(total);
        this._markComplete(total);
    }

    _setSpacer(spacer, pixels) {
        spacer.hidden = pixels === 0;
        spacer.firstChild.style.height = `${pixels}px`;
    }

    _makeRow(path) {
        const check = h("input", { type: "checkbox", tabindex: "-1" });
        const name = h("button", { type: "button", class: "link vm-name", tabindex: "-1" });
        const stateDot = h("span", { "aria-hidden": "true" });
        const stateText = h("span");
        const cells = {
            check, name, stateDot, stateText,
            cpu: h("td", { class: "col-cpu num" }),
            memory: h("td", { class: "col-memory num" }),
            uptime: h("td", { class: "col-uptime num" }),
            generation: h("td", { class: "col-generation num" }),
        };
        const row = h("tr", { class: "vm-row", dataset: { path } },
            h("td", { class: "col-select" }, check),
            h("th", { scope: "row", class: "col-name" }, name),
            h("td", { class: "col-state" }, h("span", { class: "vm-state-cell" }, stateDot, stateText)),
            cells.cpu, cells.memory, cells.uptime, cells.generation);
        row.parts = cells;
        return row;
    }

    _fillRow(row, vm, index, now) {
        const cells = row.parts;
        const name = vm.Name ?? "";
        const selected = this.selected.has(row.dataset.path);
        if (row.dataset.name !== name) {
            row.dataset.name = name;
            cells.check.setAttribute("aria-label", cockpit.format(_("Select $0"), name));
        }
        setText(cells.name, name);
        row.setAttribute("aria-rowindex", String(index + 2));
        row.setAttribute("aria-selected", String(selected));
        row.classList.toggle("selected", selected);
        cells.check.checked = selected;
        row.dataset.state = vm.State ?? "";
        cells.stateDot.className = stateClass(vm.State);
        setText(cells.stateText, stateLabel(vm.State));
        setText(cells.cpu, vm.State === "Running" ? percent(vm.CPUUsage) : "-");
        setText(cells.memory, vm.MemoryAssignedBytes > 0 ? bytes(vm.MemoryAssignedBytes) : "-");
        setText(cells.uptime, uptime(vm.StartTime, now));
        setText(cells.generation, vm.Generation ?? "-");
    }

    _renderChrome(total) {
        const all = this.service.vms.size;
        const selected = this._selectedPaths();
        this.selectAll.checked = total > 0 && selected.length === total;
        this.selectAll.indeterminate = selected.length > 0 && selected.length < total;
        this.selectAll.disabled = total === 0;
        setText(this.selectionText, selected.length > 0 ? cockpit.format(_("$0 selected"), selected.length) : "");
        for (const { action, button } of this.actionButtons) {
            const count = selected.filter(path => allowed(action, this.service.vms.get(path)?.State)).length;
            button.disabled = count === 0;
            button.title = count > 0 && count < selected.length
                ? cockpit.format(_("$0 of the $1 selected"), count, selected.length) : "";
        }
        this.deleteButton.disabled = selected.length === 0;
        this.emptyText.hidden = total > 0;
        this.scroller.hidden = total === 0;
        setText(this.emptyText, all === 0 ? _("There are no virtual machines on this host yet.")
                                          : _("No virtual machine matches the filter."));
        setText(this.countText, total === all
            ? cockpit.format(cockpit.ngettext("$0 virtual machine", "$0 virtual machines", all), all)
            : cockpit.format(_("$0 of $1 virtual machines shown"), total, all));
    }

    /** For measurements (scripts/cockpit_browser.py page_load_seconds): the first complete list
     *  after a load is marked once, with the performance timeline's clock. */
    _markComplete(total) {
        if (this.marked || this.service.status !== "ready") return;
        this.marked = true;
        performance.mark("vmms-list-complete");
        document.documentElement.dataset.vmmsList = "complete";
        document.documentElement.dataset.vmmsListCount = String(total);
    }

    // MARK: selection

    _selectedPaths() {
        return this.view.filter(path => this.selected.has(path));
    }

    _selectedAllowing(action) {
        return this._selectedPaths().filter(path => allowed(action, this.service.vms.get(path)?.State));
    }

    _selectAllShown(on) {
        this.selected = on ? new Set(this.view) : new Set();
        this.schedule();
    }

    _toggle(path) {
        if (this.selected.has(path)) this.selected.delete(path);
        else this.selected.add(path);
        this.anchor = path;
        this.schedule();
    }

    _selectRange(toIndex) {
        const from = this.viewIndex.get(this.anchor) ?? toIndex;
        const [low, high] = from < toIndex ? [from, toIndex] : [toIndex, from];
        this.selected = new Set(this.view.slice(low, high + 1));
        this.schedule();
    }

    // MARK: input

    _click(event) {
        const row = event.target.closest("tr.vm-row");
        if (!row) return;
        const path = row.dataset.path;
        const index = this.viewIndex.get(path) ?? 0;
        this.focusIndex = index;
        if (event.target === row.parts.name) {
            this.handlers.open(path);
        } else if (event.target === row.parts.check) {
            this._toggle(path);
        } else if (event.shiftKey) {
            this._selectRange(index);
        } else if (event.ctrlKey || event.metaKey) {
            this._toggle(path);
        } else {
            this.selected = new Set([path]);
            this.anchor = path;
            this.schedule();
        }
        row.focus({ preventScroll: true });
    }

    _key(event) {
        const total = this.view.length;
        if (total === 0) return;
        const page = Math.max(1, Math.floor(this.scroller.clientHeight / ROW_HEIGHT) - 1);
        const moves = {
            ArrowDown: this.focusIndex + 1, ArrowUp: this.focusIndex - 1,
            PageDown: this.focusIndex + page, PageUp: this.focusIndex - page,
            Home: 0, End: total - 1,
        };
        const path = this.view[this.focusIndex];
        if (event.key in moves) {
            event.preventDefault();
            this._moveFocus(moves[event.key], event.shiftKey);
        } else if (event.key === " " && path) {
            event.preventDefault();
            this._toggle(path);
        } else if (event.key === "Enter" && path) {
            event.preventDefault();
            this.handlers.open(path);
        } else if ((event.key === "a" || event.key === "A") && (event.ctrlKey || event.metaKey)) {
            event.preventDefault();
            this._selectAllShown(true);
        } else if (event.key === "Escape" && this.selected.size > 0) {
            event.preventDefault();
            this._selectAllShown(false);
        } else if (event.key === "Delete" && this.selected.size > 0) {
            event.preventDefault();
            this.handlers.remove(this._selectedPaths());
        }
    }

    _moveFocus(index, extend) {
        const total = this.view.length;
        const target = Math.max(0, Math.min(total - 1, index));
        if (!extend) this.anchor = this.view[target];
        this.focusIndex = target;
        // Bring the row into view, render it, then focus it.
        const headerHeight = this.thead.offsetHeight;
        const rowTop = headerHeight + target * ROW_HEIGHT;
        if (rowTop - headerHeight < this.scroller.scrollTop) this.scroller.scrollTop = rowTop - headerHeight;
        else if (rowTop + ROW_HEIGHT > this.scroller.scrollTop + this.scroller.clientHeight) {
            this.scroller.scrollTop = rowTop + ROW_HEIGHT - this.scroller.clientHeight;
        }
        if (extend) this._selectRange(target);
        this.schedule.now();
        this.rows.get(this.view[target])?.focus({ preventScroll: true });
    }
}
