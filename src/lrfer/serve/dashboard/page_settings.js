// Settings (admins): cameras (with masks and zones), the alert rules, users, API tokens and the audit log.
import { act, api, ask, clear, el, field, session, show, toast, when } from "./ui.js";
import { camerasTab } from "./settings_cameras.js";
import { rulesTab } from "./settings_rules.js";

function table(headers, rows) {
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows)));
}

async function usersTab(box) {
  const users = await api("/api/users");
  const name = el("input", { autocomplete: "off", required: true, maxlength: 64 });
  const pass = el("input", { type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const role = el("select", {}, el("option", { value: "staff" }, "staff"), el("option", { value: "admin" }, "admin"));
  const add = el("form", { class: "card", "aria-label": "New user" }, el("h2", {}, "New user"),
    el("div", { class: "form-grid" }, field("Username", name), field("Password (8 or more characters)", pass), field("Role", role)),
    el("button", { type: "submit" }, "Add user"));
  add.addEventListener("submit", (e) => {
    e.preventDefault();
    act(add.querySelector("button"), async () => {
      await api("/api/users", { method: "POST", body: { username: name.value.trim(), password: pass.value, role: role.value } });
      toast(`User ${name.value} added`);
      await usersTab(box);
    });
  });
  const update = (u, body, msg) => (e) => act(e.target, async () => { await api(`/api/users/${encodeURIComponent(u.username)}`, { method: "PUT", body }); toast(msg); await usersTab(box); });
  const rows = users.map((u) => el("tr", {},
    el("td", {}, u.username), el("td", {}, u.role), el("td", {}, u.disabled ? "disabled" : "active"), el("td", {}, when(u.created_at)),
    el("td", {}, u.username === session.me.name ? el("span", { class: "muted" }, "you") : el("div", { class: "row" },
      el("button", { type: "button", class: "secondary", onclick: update(u, { role: u.role === "admin" ? "staff" : "admin" }, "Role changed") }, u.role === "admin" ? "Make staff" : "Make admin"),
      el("button", { type: "button", class: "secondary", onclick: update(u, { disabled: !u.disabled }, u.disabled ? "Enabled" : "Disabled") }, u.disabled ? "Enable" : "Disable"),
      el("button", { type: "button", class: "secondary", onclick: async (e) => {
        const pw = await ask(`New password for ${u.username}`, { label: "Password (8 or more characters)", submit: "Set password", multiline: false });
        if (pw) update(u, { password: pw }, "Password changed (their sessions ended)")(e);
      } }, "Set password"),
      el("button", { type: "button", class: "danger", onclick: (e) => {
        if (confirm(`Delete user ${u.username}?`)) act(e.target, async () => { await api(`/api/users/${encodeURIComponent(u.username)}`, { method: "DELETE" }); toast("User deleted"); await usersTab(box); });
      } }, "Delete")))));
  clear(box, table(["User", "Role", "State", "Created", ""], rows), add);
}

// A worker token's scope in words ("" for the other roles, which have none).
function scopeText(t) {
  if (t.role !== "worker") return "";
  const parts = [];
  if (t.site) parts.push(`site ${t.site}`);
  if (t.cameras) parts.push(`cameras ${t.cameras.join(", ")}`);
  return parts.length ? parts.join("; ") : "any camera (unscoped)";
}

async function tokensTab(box) {
  const tokens = await api("/api/tokens");
  const name = el("input", { required: true, maxlength: 64, placeholder: "e.g. site-2 worker" });
  const role = el("select", {}, ["worker", "integration", "staff", "admin"].map((r) => el("option", { value: r }, r)));
  const site = el("input", { maxlength: 64, placeholder: "e.g. site-2", name: "site" });
  const cams = el("input", { maxlength: 4000, placeholder: "e.g. entrance, till-1", name: "cameras" });
  const scope = el("div", { class: "form-grid" }, field("Site (worker tokens)", site), field("Camera ids, comma-separated (worker tokens)", cams));
  role.addEventListener("change", () => { scope.hidden = role.value !== "worker"; });
  const add = el("form", { class: "card", "aria-label": "New API token" }, el("h2", {}, "New API token"),
    el("p", { class: "muted" }, "worker: lrfer worker pushing from another machine; integration: read access for Prometheus, Home Assistant and the like."),
    el("p", { class: "muted" }, "Scope a worker token to its site (the cameras it brings are registered there; another site's are refused) and/or to a list of camera ids: a token stolen from a worker machine then cannot write any other camera. Both left empty: any camera."),
    el("div", { class: "form-grid" }, field("Name", name), field("Role", role)), scope, el("button", { type: "submit" }, "Create token"));
  add.addEventListener("submit", (e) => {
    e.preventDefault();
    act(add.querySelector("button"), async () => {
      const body = { name: name.value.trim(), role: role.value };
      if (role.value === "worker") {
        const ids = cams.value.split(/[\s,]+/).filter(Boolean);
        if (site.value.trim()) body.site = site.value.trim();
        if (ids.length) body.cameras = ids;
      }
      const t = await api("/api/tokens", { method: "POST", body });
      show("Token created", el("p", {}, "Copy it now: it is shown only once (the server keeps only its hash)."), el("p", { class: "secret" }, t.token),
        t.role === "worker" ? el("p", { class: "muted" }, `Scope: ${scopeText(t)}`) : "");
      await tokensTab(box);
    });
  });
  const rows = tokens.map((t) => el("tr", {},
    el("td", {}, String(t.id)), el("td", {}, t.name), el("td", {}, t.role), el("td", {}, scopeText(t)), el("td", {}, t.created_by), el("td", {}, when(t.last_used)),
    el("td", {}, t.revoked_at ? `revoked ${when(t.revoked_at)}` : el("button", { type: "button", class: "danger", onclick: (e) => {
      if (confirm(`Revoke token ${t.name}? Whatever uses it stops at once.`)) act(e.target, async () => { await api(`/api/tokens/${t.id}`, { method: "DELETE" }); toast("Token revoked"); await tokensTab(box); });
    } }, "Revoke"))));
  clear(box, table(["Id", "Name", "Role", "Scope", "Created by", "Last used", ""], rows), add);
}

async function auditTab(box) {
  const rows = await api("/api/audit?limit=200");
  clear(box, table(["When", "Who", "What", "On", "From", "Detail"], rows.map((a) => el("tr", {},
    el("td", {}, when(a.at)), el("td", {}, a.actor), el("td", {}, a.action), el("td", {}, a.target), el("td", {}, a.ip),
    el("td", { class: "muted" }, Object.keys(a.detail || {}).length ? JSON.stringify(a.detail) : "")))));
}

const TABS = [["cameras", "Cameras", camerasTab], ["rules", "Rules", rulesTab], ["users", "Users", usersTab], ["tokens", "API tokens", tokensTab], ["audit", "Audit log", auditTab]];

export async function settingsPage(main, tab) {
  if (session.me.role !== "admin") {
    clear(main, el("h1", {}, "Settings"), el("p", {}, "Only admins can change settings."));
    return;
  }
  const current = TABS.find(([k]) => k === tab) || TABS[0];
  const box = el("div", { id: "settings-body" });
  clear(main, el("h1", {}, "Settings"),
    el("nav", { class: "tabs", "aria-label": "Settings" }, TABS.map(([k, label]) => el("a", { class: "button secondary", href: `#/settings/${k}`, "aria-current": k === current[0] ? "page" : undefined }, label))),
    box);
  await current[2](box);
}
