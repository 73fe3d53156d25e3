// Small helpers shared by the pages: the API call, DOM building (text only: never innerHTML with
// data, so a camera or user name cannot inject markup), times, expression colours, toasts.

// Who is logged in (set by app.js from GET /api/me): {name, role, via, aggregate_only, bucket_seconds}.
export const session = { me: null };

export class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : "";
}

// fetch + JSON; state-changing requests echo the CSRF cookie in X-CSRF-Token (the server checks it).
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("lrfer_csrf");
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  if (res.status === 401 && path !== "/api/login") {
    window.dispatchEvent(new CustomEvent("lrfer:logged-out"));
  }
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).detail || detail; } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, detail);
  }
  return raw ? res : res.json();
}

// el("button", {class: "x", onclick: f}, "text", child...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export const COLORS = {
  angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#2ca02c",
  sad: "#1f77b4", surprise: "#ff7f0e", neutral: "#7f7f7f", contempt: "#e377c2",
};
export const color = (c) => COLORS[c] || "#17becf";

export function when(t) {
  if (t === null || t === undefined) return "never";
  return new Date(t * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
}

export function ago(t) {
  if (!t) return "never";
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return when(t);
}

export function duration(s) {
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// A horizontal stacked bar of counts per expression, with a text legend (the bar alone says nothing to a screen reader).
export function moodBar(counts) {
  const entries = Object.entries(counts || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((s, [, n]) => s + n, 0);
  const label = total ? entries.map(([c, n]) => `${c} ${n}`).join(", ") : "no face now";
  const bar = el("div", { class: "moodbar", role: "img", "aria-label": `Moods now: ${label}` },
    entries.map(([c, n]) => el("span", { style: { width: `${(100 * n) / total}%`, background: color(c) }, title: `${c}: ${n}` })));
  const legend = el("div", { class: "legend" }, total ? entries.map(([c, n]) => el("span", {}, el("i", { style: { background: color(c) } }), `${c} ${n}`)) : "no face now");
  return el("div", {}, bar, legend);
}

export function badge(state, extra = "") {
  return el("span", { class: `badge ${state} ${extra}`.trim() }, state);
}

export function toast(text, bad = false) {
  const box = document.getElementById("toasts");
  const t = el("div", { class: bad ? "toast bad" : "toast" }, text);
  box.append(t);
  // at most three at once: a burst of actions must not cover a small screen (the oldest go first)
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

// A row of buttons of which one is pressed (a range, a filter): ``items`` are [value, label] pairs;
// a click presses its button and calls onPick(value).
export function choiceButtons(items, current, onPick) {
  const buttons = items.map(([value, label]) => el("button", { type: "button", class: "secondary", "aria-pressed": value === current ? "true" : "false",
    onclick: (e) => { for (const b of buttons) b.setAttribute("aria-pressed", b === e.currentTarget ? "true" : "false"); onPick(value); } }, label));
  return buttons;
}

// Run an async action from a button: disabled while it runs, errors shown as a toast.
export async function act(button, fn) {
  if (button) button.disabled = true;
  try { return await fn(); } catch (err) { toast(err.message || String(err), true); return undefined; } finally { if (button) button.disabled = false; }
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  if (input.type === "checkbox" || input.type === "radio") return el("div", { class: "check" }, input, el("label", { for: id, style: { margin: 0 } }, label));
  return el("div", {}, el("label", { for: id }, label), input);
}

// A modal asking for text; resolves to the text, or null when cancelled. With ``choices``
// ([[value, label], ...], the first one checked) it also asks to pick one, and resolves to
// { text, choice }.
export function ask(title, { label = "Note", placeholder = "", submit = "Save", multiline = true, choices = null, legend = "" } = {}) {
  return new Promise((resolve) => {
    const input = multiline ? el("textarea", { rows: 3, placeholder, maxlength: 2000 }) : el("input", { placeholder });
    const name = `c-${Math.random().toString(36).slice(2, 9)}`;
    const radios = (choices || []).map(([value], i) => { const r = el("input", { type: "radio", name, value }); r.checked = i === 0; return r; });
    const picked = choices ? el("fieldset", {}, el("legend", {}, legend), radios.map((r, i) => field(choices[i][1], r))) : null;
    const dlg = el("dialog", { "aria-label": title });
    const done = (value) => { dlg.close(); dlg.remove(); resolve(value); };
    const answer = () => (choices ? { text: input.value, choice: radios.find((r) => r.checked).value } : input.value);
    dlg.append(el("form", { method: "dialog", onsubmit: (e) => { e.preventDefault(); done(answer()); } },
      el("h2", {}, title), picked, field(label, input),
      el("div", { class: "row", style: { marginTop: "1rem" } },
        el("button", { type: "submit" }, submit), el("button", { type: "button", class: "secondary", onclick: () => done(null) }, "Cancel"))));
    dlg.addEventListener("cancel", () => done(null));
    document.body.append(dlg);
    dlg.showModal();
    input.focus();
  });
}

export function show(title, ...content) {
  const dlg = el("dialog", { "aria-label": title });
  dlg.append(el("h2", {}, title), ...content, el("div", { class: "row", style: { marginTop: "1rem" } },
    el("button", { type: "button", onclick: () => { dlg.close(); dlg.remove(); } }, "Close")));
  document.body.append(dlg);
  dlg.showModal();
}
