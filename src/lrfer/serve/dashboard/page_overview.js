// The overview: one tile per camera (status, faces now, current moods, last alert), kept live by SSE.
import { ago, api, badge, clear, el, moodBar } from "./ui.js";

function tile(cam, alert) {
  const st = cam.status || { state: "stopped" };
  const lastAlert = alert
    ? el("p", { class: "last-alert" }, badge(alert.state), " ", alert.message || alert.rule, el("br"), el("span", { class: "muted" }, ago(alert.opened_at)))
    : el("p", { class: "last-alert muted" }, "No alert");
  const error = st.error ? el("p", { class: "error" }, st.error) : null;
  return el("a", { class: "card tile", href: `#/camera/${encodeURIComponent(cam.id)}`, dataset: { camera: cam.id }, "aria-label": `Camera ${cam.name || cam.id}` },
    el("div", { class: "row" }, el("h2", {}, cam.name || cam.id), badge(st.state, "camera-state"), cam.muted ? badge("muted") : null),
    el("div", { class: "row" },
      el("div", {}, el("div", { class: "stat faces-now" }, String(st.faces_now ?? 0)), el("div", { class: "muted" }, "faces now")),
      el("div", {}, el("div", { class: "stat" }, (st.fps ?? 0).toFixed(1)), el("div", { class: "muted" }, "frames/s"))),
    moodBar(st.moods_now),
    error,
    el("div", { class: "muted" }, st.state === "reconnecting" ? `reconnecting since ${ago(st.since)}` : `last frame ${ago(st.last_frame_at)}`),
    lastAlert);
}

export async function overviewPage(main) {
  const grid = el("div", { class: "grid", id: "tiles" });
  clear(main, el("h1", {}, "Cameras"), grid);
  let cameras = [];
  let lastAlerts = {};

  function draw() {
    if (!cameras.length) {
      clear(grid, el("p", { class: "muted" }, "No camera yet. An admin adds cameras under Settings."));
      return;
    }
    const sites = [...new Set(cameras.map((c) => c.site || "main"))];
    if (sites.length < 2) {
      clear(grid, cameras.map((c) => tile(c, lastAlerts[c.id])));
      return;
    }
    // Several sites (a remote worker's cameras beside the local ones): one heading and row of tiles each.
    clear(grid, sites.flatMap((site) => [
      el("h2", { class: "site" }, `Site: ${site}`),
      ...cameras.filter((c) => (c.site || "main") === site).map((c) => tile(c, lastAlerts[c.id])),
    ]));
  }

  async function load() {
    const [cams, alerts] = await Promise.all([api("/api/cameras"), api("/api/alerts?limit=200")]);
    cameras = cams;
    lastAlerts = {};
    for (const a of alerts) if (!lastAlerts[a.camera_id]) lastAlerts[a.camera_id] = a;
    draw();
  }

  await load();
  const onStatus = (e) => {
    const cam = cameras.find((c) => c.id === e.detail.camera_id);
    if (!cam) return;
    cam.status = e.detail;
    const old = grid.querySelector(`[data-camera="${CSS.escape(cam.id)}"]`);
    if (old) old.replaceWith(tile(cam, lastAlerts[cam.id]));
  };
  const onAlert = () => load().catch(() => {});
  window.addEventListener("lrfer:status", onStatus);
  window.addEventListener("lrfer:alert", onAlert);
  const timer = setInterval(() => load().catch(() => {}), 30000); // "ago" texts, and a missed event
  return () => {
    window.removeEventListener("lrfer:status", onStatus);
    window.removeEventListener("lrfer:alert", onAlert);
    clearInterval(timer);
  };
}
