// One camera: the mood timeline (stacked shares of each expression, Plotly), its tracks with the time
// spent in each expression (not in aggregate-only mode), and the live snapshot (faces blurred).
import { faceSizesCard } from "./faces.js";
import { profileSection } from "./profile.js";
import { act, ago, api, ask, badge, choiceButtons, clear, color, duration, el, moodBar, session, toast, when } from "./ui.js";

const RANGES = [
  { key: "10min", label: "Last 10 min", seconds: 600, bucket: null },
  { key: "hour", label: "Last hour", seconds: 3600, bucket: null },
  { key: "day", label: "Last day", seconds: 86400, bucket: 300 },
  { key: "week", label: "Last week", seconds: 7 * 86400, bucket: 3600 },
];
const SNAPSHOT_MS = 3000;
const MUTE_FOR = [["60", "1 hour"], ["30", "30 minutes"], ["120", "2 hours"], ["240", "4 hours"]];

// Staff silence a camera's alerts while they know why (music in the lounge, a visit); it ends by itself.
function muteBox(cam, redraw) {
  const m = cam.muted;
  const path = `/api/cameras/${encodeURIComponent(cam.id)}/mute`;
  if (m) {
    const until = new Date(m.until * 1000).toLocaleTimeString([], { timeStyle: "short" });
    return el("p", { id: "mute", class: "row" }, badge("muted"), `Alerts muted until ${until} by ${m.by}${m.note ? `: ${m.note}` : ""}`,
      el("button", { type: "button", class: "secondary", onclick: (e) => act(e.target, async () => {
        await api(path, { method: "DELETE" }); toast("Alerts on again"); await redraw();
      }) }, "Unmute"));
  }
  return el("p", { id: "mute" }, el("button", { type: "button", class: "secondary", onclick: async (e) => {
    const answer = await ask(`Mute the alerts of ${cam.name || cam.id}`, { label: "Why (for the others)", placeholder: "e.g. music in the lounge",
      submit: "Mute", choices: MUTE_FOR, legend: "For", multiline: false });
    if (answer === null) return;
    await act(e.target, async () => {
      await api(path, { method: "POST", body: { minutes: Number(answer.choice), note: answer.text } }); toast("Alerts muted"); await redraw();
    });
  } }, "Mute alerts…"));
}

function drawChart(node, data) {
  if (!window.Plotly) { clear(node, el("p", { class: "error" }, "The chart library did not load.")); return; }
  const x = data.points.map((p) => new Date(p.t * 1000));
  const traces = data.classes.map((c) => ({
    type: "scatter", mode: data.points.length < 30 ? "lines+markers" : "lines", stackgroup: "moods", name: c, x, // markers: a few buckets stay visible
    y: data.points.map((p) => (p.shares[c] === null || p.shares[c] === undefined ? null : 100 * p.shares[c])),
    line: { width: 0.5, color: color(c) }, fillcolor: color(c),
    hovertemplate: `${c}: %{y:.0f}%<extra></extra>`,
  }));
  const layout = {
    margin: { l: 48, r: 12, t: 12, b: 40 }, height: 360, hovermode: "x unified",
    yaxis: { title: { text: "share of faces (%)" }, range: [0, 100], fixedrange: true },
    xaxis: { type: "date", range: [new Date(data.start * 1000), new Date(data.end * 1000)] },
    legend: { orientation: "h", y: -0.15 }, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
  };
  window.Plotly.react(node, traces, layout, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
}

function tracksTable(tracks) {
  if (!tracks.length) return el("p", { class: "muted" }, "No track in this range.");
  const rows = tracks.map((t) => {
    const secs = Object.entries(t.seconds || {}).sort((a, b) => b[1] - a[1]);
    return el("tr", {},
      el("td", {}, t.track_key), el("td", {}, when(t.first_seen)), el("td", {}, duration(t.last_seen - t.first_seen)),
      el("td", {}, `${t.face_px} px`),
      el("td", {}, secs.length ? secs.map(([c, s]) => el("span", { class: "legend" }, el("i", { style: { background: color(c) } }), `${c} ${duration(s)}`)) : el("span", { class: "muted" }, "uncertain")));
  });
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ["Track", "First seen", "For", "Face size", "Time as top expression"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows)));
}

export async function cameraPage(main, id) {
  let cam = await api(`/api/cameras/${encodeURIComponent(id)}`);
  const muting = el("div", { id: "mute-box" });
  async function drawMute() {
    cam = await api(`/api/cameras/${encodeURIComponent(id)}`);
    clear(muting, muteBox(cam, drawMute));
  }
  clear(muting, muteBox(cam, drawMute));
  let range = RANGES[1];
  const chart = el("div", { class: "chart", id: "timeline", role: "img", "aria-label": "Mood timeline: share of each expression over time" });
  const chartNote = el("p", { class: "muted", id: "timeline-note" });
  const statusBox = el("div", { class: "card", id: "camera-status" });
  const img = el("img", { class: "snapshot", id: "snapshot", alt: `Live view of ${cam.name || cam.id}, faces blurred` });
  const snapNote = el("p", { class: "muted" }, "Live only: snapshots are never stored.");
  const tracksBox = el("div", { id: "tracks" });
  // a camera with zones (a shop's till, a lounge's sofa corner): its charts for one zone or the whole view
  let zone = "";
  const zoneSelect = (cam.zones || []).length ? el("label", { class: "row" }, "Show",
    el("select", { class: "inline", id: "zone", onchange: (e) => { zone = e.target.value; load(); daily.load().catch(() => {}); } },
      el("option", { value: "" }, "the whole view"), cam.zones.map((z) => el("option", { value: z.name }, `zone “${z.name}”`)))) : null;
  const daily = profileSection(cam.id, () => zone);
  const faces = faceSizesCard(cam.id);
  const buttons = choiceButtons(RANGES.map((r) => [r, r.label]), range, (r) => { range = r; load(); });

  clear(main,
    el("p", {}, el("a", { href: "#/" }, "← All cameras")),
    el("h1", {}, cam.name || cam.id),
    muting,
    zoneSelect,
    el("div", { class: "split" },
      el("section", { class: "card", "aria-labelledby": "tl-title" },
        el("div", { class: "row" }, el("h2", { id: "tl-title", style: { margin: 0 } }, "Mood timeline"), el("div", { class: "row", role: "group", "aria-label": "Range" }, buttons)),
        chart, chartNote),
      el("section", { "aria-labelledby": "live-title" }, el("div", { class: "card" }, el("h2", { id: "live-title" }, "Live view"), img, snapNote), statusBox, faces.node)),
    daily.node,
    session.me.aggregate_only ? null : el("section", { class: "card", style: { marginTop: "1rem" }, "aria-labelledby": "tracks-title" }, el("h2", { id: "tracks-title" }, "People seen (anonymous tracks)"), tracksBox));

  function drawStatus(st) {
    st = st || { state: "stopped" };
    clear(statusBox, el("h2", {}, "Status"), el("p", {}, badge(st.state), " ", st.error ? el("span", { class: "error" }, st.error) : ""),
      el("p", {}, `${st.faces_now ?? 0} faces now · ${(st.fps ?? 0).toFixed(1)} frames/s · last frame ${ago(st.last_frame_at)}`), moodBar(st.moods_now));
  }

  // A live reload and a range button can be answered out of order: only the latest is drawn.
  let asked = 0;
  async function load() {
    const seq = ++asked;
    const end = Date.now() / 1000;
    const q = new URLSearchParams({ camera: cam.id, start: String(end - range.seconds), end: String(end) });
    if (range.bucket) q.set("bucket", String(range.bucket));
    if (zone) q.set("zone", zone);
    const data = await api(`/api/timeline?${q}`);
    if (seq !== asked) return;
    drawChart(chart, data);
    chart.dataset.points = String(data.points.length);
    chart.dataset.zone = zone;
    const hidden = data.points.filter((p) => p.hidden).length;
    chartNote.textContent = `${data.points.length} ${data.points.length === 1 ? "bucket" : "buckets"} of ${duration(data.bucket)}` + (zone ? ` · zone “${zone}”` : "") +
      (hidden ? ` · ${hidden} hidden (fewer than ${data.min_people} people)` : "") + " · only faces big and sure enough count";
    if (!session.me.aggregate_only) {
      const tq = new URLSearchParams({ camera: cam.id, start: q.get("start"), end: q.get("end"), limit: "50" });
      const tracks = await api(`/api/tracks?${tq}`);
      if (seq === asked) clear(tracksBox, tracksTable(tracks));
    }
  }

  let snapUrl = null;
  async function snapshot() {
    if (document.hidden) return;
    try {
      const res = await api(`/api/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg`, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      img.src = url;
      if (snapUrl) URL.revokeObjectURL(snapUrl);
      snapUrl = url;
      snapNote.textContent = `Live only: snapshots are never stored. Updated ${new Date().toLocaleTimeString()}.`;
    } catch (err) {
      snapNote.textContent = err.status === 404 ? "No picture yet (the camera is not running on this server)." : err.message;
    }
  }

  drawStatus(cam.status);
  await load();
  daily.load().catch(() => {});
  faces.load().catch(() => {});
  snapshot();
  let pending = null;
  const onBucket = (e) => {
    if (!(e.detail.cameras || []).includes(cam.id) || pending) return;
    pending = setTimeout(() => { pending = null; load().catch(() => {}); }, 1000); // at most one reload a second
  };
  const onStatus = (e) => { if (e.detail.camera_id === cam.id) drawStatus(e.detail); };
  window.addEventListener("lrfer:bucket", onBucket);
  window.addEventListener("lrfer:status", onStatus);
  const snapTimer = setInterval(snapshot, SNAPSHOT_MS);
  const loadTimer = setInterval(() => load().catch(() => {}), 60000);
  const dailyTimer = setInterval(() => { daily.load().catch(() => {}); faces.load().catch(() => {}); }, 300000); // hours move slowly
  return () => {
    window.removeEventListener("lrfer:bucket", onBucket);
    window.removeEventListener("lrfer:status", onStatus);
    clearInterval(snapTimer);
    clearInterval(loadTimer);
    clearInterval(dailyTimer);
    daily.purge();
    faces.purge();
    if (pending) clearTimeout(pending);
    if (snapUrl) URL.revokeObjectURL(snapUrl);
    if (window.Plotly) window.Plotly.purge(chart);
  };
}
