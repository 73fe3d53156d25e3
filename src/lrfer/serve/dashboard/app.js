// The dashboard's entry: who is logged in, the hash router, and the live event stream (SSE) that
// every page listens to through window events ("lrfer:status", "lrfer:alert", "lrfer:bucket").
import { api, clear, el, field, session, toast } from "./ui.js";
import { overviewPage } from "./page_overview.js";
import { cameraPage } from "./page_camera.js";
import { alertsPage } from "./page_alerts.js";
import { settingsPage } from "./page_settings.js";

const main = document.getElementById("main");
let events = null;
let cleanup = null;

function loginPage() {
  const user = el("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off" });
  const pass = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "card login", "aria-labelledby": "login-title" },
    el("h1", { id: "login-title" }, "lrfer monitor"),
    el("p", { class: "muted" }, "Log in to see the cameras, mood timelines and alerts."),
    field("Username", user), field("Password", pass), error,
    el("button", { type: "submit" }, "Log in"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await api("/api/login", { method: "POST", body: { username: user.value.trim(), password: pass.value } });
      pass.value = "";
      await start();
      route(); // the page that was asked for (the overview when none)
    } catch (err) {
      error.textContent = err.message;
    } finally {
      button.disabled = false;
    }
  });
  clear(main, form);
  user.focus();
}

function connect() {
  if (events) events.close();
  const live = document.getElementById("live");
  events = new EventSource("/api/events");
  events.onopen = () => { live.textContent = "live"; live.classList.add("on"); };
  events.onerror = () => { live.textContent = "reconnecting"; live.classList.remove("on"); };
  for (const kind of ["status", "alert", "bucket"]) {
    events.addEventListener(kind, (e) => {
      let data = null;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      window.dispatchEvent(new CustomEvent(`lrfer:${kind}`, { detail: data }));
    });
  }
}

export async function refreshOpenCount() {
  try {
    const open = await api("/api/alerts?state=open&limit=1000");
    document.getElementById("open-count").textContent = open.length ? String(open.length) : "";
    document.title = open.length ? `(${open.length}) lrfer monitor` : "lrfer monitor";  // seen on a tab in the background too
  } catch (_) { /* shown elsewhere */ }
}

// A new alert, or one nobody has acknowledged yet (a reminder), is said on every page, not only
// on the alerts page: a nurse may have the overview open.
function announce(e) {
  const { event, alert } = e.detail || {};
  if (!alert || (event !== "alert.opened" && event !== "alert.reminder")) return;
  toast(`${event === "alert.reminder" ? "Still open" : "New alert"}: ${alert.message || alert.rule}`, true);
}

async function start() {
  session.me = await api("/api/me");
  document.querySelector(".top").hidden = false;
  document.getElementById("who").textContent = `${session.me.name} (${session.me.role})`;
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = session.me.role !== "admin";
  connect();
  refreshOpenCount();
}

function loggedOut() {
  session.me = null;
  if (events) { events.close(); events = null; }
  document.querySelector(".top").hidden = true;
  if (cleanup) { cleanup(); cleanup = null; }
  loginPage();
}

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  if (!session.me) return loginPage();
  const hash = location.hash || "#/";
  const [, page = "", arg = ""] = hash.split("/");
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.toggleAttribute("aria-current", false);
    const current = (page === "" || page === "camera") ? "overview" : page;
    if (a.dataset.nav === current) a.setAttribute("aria-current", "page");
  }
  const pages = { "": overviewPage, camera: cameraPage, alerts: alertsPage, settings: settingsPage };
  const render = pages[page] || overviewPage;
  try {
    cleanup = (await render(main, decodeURIComponent(arg))) || null;
  } catch (err) {
    if (err.status !== 401) clear(main, el("p", { class: "error", role: "alert" }, err.message));
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
window.addEventListener("lrfer:logged-out", () => { if (session.me) { toast("Your session ended: log in again.", true); loggedOut(); } });
window.addEventListener("lrfer:alert", refreshOpenCount);
window.addEventListener("lrfer:alert", announce);
document.getElementById("logout").addEventListener("click", async () => {
  try { await api("/api/logout", { method: "POST" }); } catch (_) { /* logged out anyway */ }
  loggedOut();
});

(async () => {
  try { await start(); } catch (_) { session.me = null; }
  route();
})();
