// Mood through the day: each expression's share per hour of the day over the last weeks, in the
// browser's time zone (GET /api/profile), as stacked bars: a shop sees when its customers are calm.
import { api, choiceButtons, clear, color, el } from "./ui.js";

const SPANS = [{ label: "Last 7 days", days: 7 }, { label: "Last 28 days", days: 28 }];
const DAYS = [["", "Every day"], ["weekdays", "Monday to Friday"], ["weekend", "Weekend"]];
const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

function drawProfile(node, data) {
  if (!window.Plotly) { clear(node, el("p", { class: "error" }, "The chart library did not load.")); return; }
  const x = data.hours.map((h) => `${String(h.hour).padStart(2, "0")}:00`);
  const traces = data.classes.map((c) => ({
    type: "bar", name: c, x, marker: { color: color(c) },
    y: data.hours.map((h) => (h.shares[c] === null || h.shares[c] === undefined ? null : 100 * h.shares[c])),
    customdata: data.hours.map((h) => h.days),
    hovertemplate: `${c}: %{y:.0f}% (over %{customdata} days)<extra></extra>`,
  }));
  const layout = {
    barmode: "stack", bargap: 0.15, margin: { l: 48, r: 12, t: 12, b: 40 }, height: 300, hovermode: "x unified",
    yaxis: { title: { text: "share of faces (%)" }, range: [0, 100], fixedrange: true },
    xaxis: { title: { text: `hour of the day (${data.tz})` }, fixedrange: true, type: "category" },
    legend: { orientation: "h", y: -0.25 }, paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
  };
  window.Plotly.react(node, traces, layout, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d", "zoom2d", "pan2d"] });
}

// The section and its loader; the camera page calls load() when it loads its timeline.
export function profileSection(cameraId, zone = () => "") {
  let span = SPANS[1];
  let days = "";
  const chart = el("div", { class: "chart", id: "profile", role: "img", "aria-label": "Mood through the day: share of each expression per hour of the day" });
  const note = el("p", { class: "muted", id: "profile-note" });
  const spanButtons = choiceButtons(SPANS.map((s) => [s, s.label]), span, (s) => { span = s; load(); });
  const which = el("select", { class: "inline", "aria-label": "Days of the week", onchange: (e) => { days = e.target.value; load(); } },
    DAYS.map(([value, label]) => el("option", { value }, label)));
  const node = el("section", { class: "card", style: { marginTop: "1rem" }, "aria-labelledby": "profile-title" },
    el("div", { class: "row" }, el("h2", { id: "profile-title", style: { margin: 0 } }, "Through the day"),
      el("div", { class: "row", role: "group", "aria-label": "Days" }, spanButtons, which)),
    chart, note);

  let asked = 0;
  async function load() {
    const seq = ++asked;
    const end = Date.now() / 1000;
    const q = new URLSearchParams({ camera: cameraId, start: String(end - span.days * 86400), end: String(end), tz: TZ, days });
    if (zone()) q.set("zone", zone());
    const data = await api(`/api/profile?${q}`);
    if (seq !== asked) return;
    drawProfile(chart, data);
    const shown = data.hours.filter((h) => h.certain && !h.hidden);
    const hidden = data.hours.filter((h) => h.hidden).length;
    chart.dataset.hours = String(shown.length);
    chart.dataset.zone = zone();
    const most = Math.max(0, ...shown.map((h) => h.days));
    const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
    note.textContent = (shown.length ? `${plural(shown.length, "hour", "hours")} of the day with faces, over up to ${plural(most, "day", "days")}` : "No face in this range yet")
      + (zone() ? ` · zone “${zone()}”` : "") + (hidden ? ` · ${hidden} hidden (fewer than ${data.min_people} people)` : "")
      + ` · times in ${data.tz} · only faces big and sure enough count`;
  }
  return { node, load, purge: () => { if (window.Plotly) window.Plotly.purge(chart); } };
}
