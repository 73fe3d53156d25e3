// How big the faces a camera sees are (GET /api/cameras/{id}/faces, the last 24 hours): the share of
// frames per size band, and advice when most are too small for alerts to be timely. For whoever
// places the cameras: a far camera sees faces its alerts cannot rely on.
import { api, clear, el } from "./ui.js";

const BAND_COLORS = ["#c92a2a", "#e67700", "#2f9e44", "#1971c2"]; // too small to count, small, fair, good

function drawBands(node, data) {
  if (!window.Plotly) { clear(node, el("p", { class: "error" }, "The chart library did not load.")); return; }
  const traces = data.bands.map((b, i) => ({
    type: "bar", orientation: "h", name: b.label, y: ["faces"], x: [b.share === null ? 0 : 100 * b.share],
    marker: { color: BAND_COLORS[i % BAND_COLORS.length] },
    hovertemplate: `${b.label}: %{x:.0f}% of frames` + (b.certain_share === null ? "" : `, ${Math.round(100 * b.certain_share)}% of them evidence`) + "<extra></extra>",
  }));
  const layout = {
    barmode: "stack", height: 130, margin: { l: 8, r: 8, t: 4, b: 24 }, showlegend: true, legend: { orientation: "h", y: -0.6 },
    xaxis: { range: [0, 100], fixedrange: true, ticksuffix: "%" }, yaxis: { visible: false, fixedrange: true },
    paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
  };
  window.Plotly.react(node, traces, layout, { displayModeBar: false, responsive: true });
}

export function faceSizesCard(cameraId) {
  const chart = el("div", { id: "face-sizes", role: "img", "aria-label": "Share of frames by face size, last 24 hours" });
  const note = el("p", { class: "muted", id: "face-sizes-note" });
  const advice = el("p", { class: "advice", id: "face-advice", hidden: true });
  const node = el("div", { class: "card", "aria-labelledby": "faces-title" }, el("h2", { id: "faces-title" }, "Face sizes (last 24 h)"), chart, advice, note);

  async function load() {
    const data = await api(`/api/cameras/${encodeURIComponent(cameraId)}/faces`);
    chart.dataset.frames = String(data.frames);
    if (!data.frames) { clear(chart); note.textContent = "No face seen in the last 24 hours."; advice.hidden = true; return; }
    drawBands(chart, data);
    advice.textContent = data.advice || "";
    advice.hidden = !data.advice;
    note.textContent = `${Math.round(100 * data.small_share)}% of frames show faces under ${data.small_px} px, where expressions are read least reliably; `
      + `under ${data.bands[0].max_px} px a face never counts.`;
  }
  return { node, load, purge: () => { if (window.Plotly) window.Plotly.purge(chart); } };
}
