// Small DOM helpers. Text always goes in as text nodes, never as HTML: VM names, notes and
// error messages come from other users and from libvirt.

/** h("button", {class: "primary", onclick: f}, "Start") → an element. Attributes that are
 *  null, undefined or false are left out; true becomes an empty attribute. */
export function h(tag, attributes, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes ?? {})) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "class") element.className = value;
        else if (key === "dataset") Object.assign(element.dataset, value);
        else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
        else element.setAttribute(key, value === true ? "" : String(value));
    }
    append(element, children);
    return element;
}

function append(element, children) {
    for (const child of children.flat(Infinity)) {
        if (child === null || child === undefined || child === false) continue;
        element.append(child instanceof Node ? child : String(child));
    }
}

/** Replaces the children of `element`. */
export function fill(element, ...children) {
    element.replaceChildren();
    append(element, children);
    return element;
}

/** Sets textContent only when it differs, so screen readers are not told about non-changes. */
export function setText(element, text) {
    const value = String(text);
    if (element.textContent !== value) element.textContent = value;
}

let counter = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix) {
    counter += 1;
    return `${prefix}-${counter}`;
}

/** Calls `render` at the next animation frame, however often it is asked for before that:
 *  a burst of 1,000 signals costs one render. `.now()` renders at once instead. */
export function frameScheduler(render) {
    let frame = 0;
    const schedule = () => {
        if (frame) return;
        frame = requestAnimationFrame(() => {
            frame = 0;
            render();
        });
    };
    schedule.now = () => {
        if (frame) cancelAnimationFrame(frame);
        frame = 0;
        render();
    };
    return schedule;
}
