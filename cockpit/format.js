// How values are shown. Amounts in binary units, as `free -h` and Hyper-V Manager do.

const _ = cockpit.gettext;

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 67108864 → "64 MiB", 1610612736 → "1.5 GiB". */
export function bytes(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "-";
    let unit = 0;
    let amount = value;
    while (amount >= 1024 && unit < UNITS.length - 1) {
        amount /= 1024;
        unit += 1;
    }
    const digits = amount >= 100 || Number.isInteger(amount) ? 0 : 1;
    return `${amount.toFixed(digits).replace(/\.0$/, "")} ${UNITS[unit]}`;
}

/** A property the service does not offer yet (CPUUsage, StartTime) shows as "-". */
export function percent(value) {
    return typeof value === "number" ? `${value} %` : "-";
}

/** Seconds since `startTime` (Unix seconds) as "2 d 03:04:05" / "03:04:05"; "-" when the
 *  VM is not running (0) or the service does not say. */
export function uptime(startTime, nowSeconds) {
    if (typeof startTime !== "number" || startTime <= 0) return "-";
    let seconds = Math.max(0, Math.floor(nowSeconds - startTime));
    const days = Math.floor(seconds / 86400);
    seconds -= days * 86400;
    const clock = [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60]
        .map(n => String(n).padStart(2, "0")).join(":");
    return days > 0 ? `${days} d ${clock}` : clock;
}

/** The VM states of the API, in the order the summary lists them. */
export const STATES = ["Running", "Starting", "Paused", "Saving", "Saved", "Stopping", "Off", "Crashed"];

const STATE_LABELS = {
    Off: _("Off"),
    Starting: _("Starting"),
    Running: _("Running"),
    Paused: _("Paused"),
    Saving: _("Saving"),
    Saved: _("Saved"),
    Stopping: _("Stopping"),
    Crashed: _("Crashed"),
};

export function stateLabel(state) {
    return STATE_LABELS[state] ?? state ?? "-";
}

/** CSS class for the state's colour dot. */
export function stateClass(state) {
    return `vm-state vm-state-${String(state ?? "unknown").toLowerCase()}`;
}

/** A whole number from a form field, or null. */
export function wholeNumber(text) {
    const trimmed = String(text).trim();
    if (!/^\d+$/.test(trimmed)) return null;
    const value = Number(trimmed);
    return Number.isSafeInteger(value) ? value : null;
}

/** A non-negative decimal number from a form field, or null. */
export function decimalNumber(text) {
    const trimmed = String(text).trim().replace(",", ".");
    if (!/^\d+(\.\d+)?$/.test(trimmed)) return null;
    const value = Number(trimmed);
    return Number.isFinite(value) ? value : null;
}
