// Tiny DOM builder. Text always goes in through textContent / text nodes — never innerHTML —
// so portal data (badge titles, codes, server messages) is shown literally, whatever it contains.

/**
 * h("button", {class: "button", type: "button", onclick: fn}, "Label", childNode, [more])
 * Props: `class`, `text`, `dataset` ({…}), `on<event>` (listener), `aria-*`/other attributes
 * (true → empty attribute; false/null/undefined → left out). No `style` attribute: the page's CSP
 * forbids inline styles, use classes.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let counter = 0;
/** A page-unique id for label/aria wiring. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** An element that is read by screen readers but not shown. */
export function srOnly(text) {
  return h("span", { class: "sr-only" }, text);
}
