// A small DOM builder: text always goes in as text (never parsed as HTML), so nothing the API answers
// can inject markup or script.

/**
 * h builds an element: h("a", {href: "/x", class: "y", onclick: fn}, "text", child, …). Attributes
 * that are null, undefined or false are left out; children that are null or false too.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "hidden" || k === "disabled" || k === "required") el[k] = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** ago says how long ago a time was, in words; the exact local time goes in the title. */
export function timeAgo(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  const t = new Date(iso);
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  const text = s < 60 ? `${Math.max(0, s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago`
    : s < 86400 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
  return h("time", { datetime: t.toISOString(), title: t.toLocaleString() }, text);
}

export function localTime(ms) {
  return new Date(ms).toLocaleString();
}

export function statusBadge(status, enabled = true) {
  const s = !enabled ? "disabled" : status || "unknown";
  return h("span", { class: "status " + s }, s);
}

export function labelTags(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h("span", { class: "muted" }, "none");
  return entries.map(([k, v]) => h("span", { class: "tag" }, `${k}=${v}`));
}
