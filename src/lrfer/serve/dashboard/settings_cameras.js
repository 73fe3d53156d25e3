// Settings > Cameras: add and edit cameras, and draw privacy masks and zones on a snapshot by
// clicking (or tapping) the points of a polygon. Coordinates are fractions of the frame (0..1).
import { act, api, clear, el, field, toast } from "./ui.js";

const FIELDS = [
  ["id", "Id (a-z, 0-9, - and _)", "text"], ["name", "Name", "text"], ["url", "Source (rtsp://, http(s)://, a video file, webcam:N)", "text"],
  ["site", "Site", "text"], ["fps", "Frames analysed per second", "number"], ["min_face", "Smallest face analysed (px)", "number"],
];

function polygonEditor(camera, shapes) {
  // shapes: {masks: [[[x, y], ...]], zones: [{name, polygon}]}: edited in place
  const img = el("img", { alt: "Camera snapshot to draw on (masked areas are black)" });
  const canvas = el("canvas", { "aria-hidden": "true" });
  const status = el("p", { class: "muted", "aria-live": "polite" });
  const kind = el("select", {}, el("option", { value: "mask" }, "Privacy mask (never analysed)"), el("option", { value: "zone" }, "Zone"));
  const zoneName = el("input", { placeholder: "e.g. sofa", maxlength: 64 });
  const list = el("ul");
  let current = [];

  function draw() {
    const w = (canvas.width = img.clientWidth || 640), h = (canvas.height = img.clientHeight || 480);
    const g = canvas.getContext("2d");
    g.clearRect(0, 0, w, h);
    const poly = (pts, stroke, fill, close = true) => {
      if (!pts.length) return;
      g.beginPath();
      pts.forEach(([x, y], i) => (i ? g.lineTo(x * w, y * h) : g.moveTo(x * w, y * h)));
      if (close) g.closePath();
      g.lineWidth = 3; g.strokeStyle = stroke; g.stroke();
      if (fill) { g.fillStyle = fill; g.fill(); }
      for (const [x, y] of pts) { g.beginPath(); g.arc(x * w, y * h, 6, 0, 2 * Math.PI); g.fillStyle = stroke; g.fill(); }
    };
    shapes.masks.forEach((m) => poly(m, "#ff4d4f", "rgba(0,0,0,0.6)"));
    shapes.zones.forEach((z) => poly(z.polygon, "#4dabf7", "rgba(77,171,247,0.2)"));
    poly(current, "#ffd43b", null, false);
    clear(list,
      shapes.masks.map((m, i) => el("li", {}, `Mask ${i + 1} (${m.length} points) `, el("button", { type: "button", class: "secondary", onclick: () => { shapes.masks.splice(i, 1); draw(); } }, "Remove"))),
      shapes.zones.map((z, i) => el("li", {}, `Zone “${z.name}” (${z.polygon.length} points) `, el("button", { type: "button", class: "secondary", onclick: () => { shapes.zones.splice(i, 1); draw(); } }, "Remove"))));
    status.textContent = current.length ? `${current.length} points: tap more, then Finish.` : "Tap the picture to add the points of a polygon.";
  }

  canvas.addEventListener("pointerdown", (e) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)), y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
    current.push([Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
    draw();
  });
  const finish = el("button", { type: "button", onclick: () => {
    if (current.length < 3) return toast("A polygon needs at least 3 points.", true);
    if (kind.value === "zone") {
      const name = zoneName.value.trim();
      if (!name) return toast("Name the zone first.", true);
      shapes.zones.push({ name, polygon: current });
    } else shapes.masks.push(current);
    current = [];
    draw();
  } }, "Finish polygon");
  const undo = el("button", { type: "button", class: "secondary", onclick: () => { current.pop(); draw(); } }, "Undo point");
  img.addEventListener("load", draw);
  window.addEventListener("resize", draw);
  api(`/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg`, { raw: true })
    .then(async (res) => { img.src = URL.createObjectURL(await res.blob()); })
    .catch(() => { status.textContent = "No snapshot yet: save the camera and come back once it runs. You can still draw on the blank frame."; draw(); });
  return el("div", {}, el("h3", {}, "Privacy masks and zones"),
    el("div", { class: "form-grid" }, field("Draw", kind), field("Zone name", zoneName)),
    el("div", { class: "editor" }, img, canvas), status, el("div", { class: "row" }, finish, undo), list);
}

function cameraForm(cam, done) {
  const isNew = !cam;
  cam = cam || { id: "", name: "", url: "", site: "main", fps: 2, loop: false, enabled: true, min_face: 0, masks: [], zones: [] };
  const inputs = {};
  const grid = el("div", { class: "form-grid" }, FIELDS.map(([k, label, type]) => {
    inputs[k] = el("input", { type, value: cam[k] ?? "", step: type === "number" ? "any" : undefined, readonly: k === "id" && !isNew, required: k === "id" || k === "url" });
    const f = field(label, inputs[k]);
    if (k === "url") f.classList.add("wide");
    return f;
  }));
  const loop = el("input", { type: "checkbox" }), enabled = el("input", { type: "checkbox" });
  loop.checked = !!cam.loop;
  enabled.checked = cam.enabled !== false;
  const shapes = { masks: (cam.masks || []).map((m) => m.map((p) => [...p])), zones: (cam.zones || []).map((z) => ({ name: z.name, polygon: z.polygon.map((p) => [...p]) })) };
  const error = el("p", { class: "error", role: "alert" });
  const save = el("button", { type: "submit" }, isNew ? "Add camera" : "Save");
  const form = el("form", { class: "card", "aria-label": isNew ? "New camera" : `Edit camera ${cam.id}` },
    el("h2", {}, isNew ? "New camera" : `Edit ${cam.name || cam.id}`), grid,
    field("Loop (video files)", loop), field("Enabled", enabled),
    isNew ? el("p", { class: "muted" }, "Masks and zones can be drawn once the camera has a picture.") : polygonEditor(cam.id, shapes),
    error, el("div", { class: "row" }, save, el("button", { type: "button", class: "secondary", onclick: () => done(false) }, "Cancel")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    error.textContent = "";
    const body = { masks: shapes.masks, zones: shapes.zones, loop: loop.checked, enabled: enabled.checked };
    for (const [k, , type] of FIELDS) body[k] = type === "number" ? Number(inputs[k].value) : inputs[k].value.trim();
    act(save, async () => {
      try {
        await api(isNew ? "/api/cameras" : `/api/cameras/${encodeURIComponent(cam.id)}`, { method: isNew ? "POST" : "PUT", body });
      } catch (err) { error.textContent = err.message; return; }
      toast(isNew ? "Camera added" : "Camera saved");
      done(true);
    });
  });
  return form;
}

export async function camerasTab(box) {
  async function render() {
    const cams = await api("/api/cameras");
    const rows = cams.map((c) => el("tr", {},
      el("td", {}, c.id), el("td", {}, c.name), el("td", { class: "muted", style: { wordBreak: "break-all" } }, c.url),
      el("td", {}, c.enabled ? (c.status ? c.status.state : "") : "disabled"),
      el("td", {}, `${c.masks.length} masks, ${c.zones.length} zones`),
      el("td", {}, el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", onclick: () => clear(box, cameraForm(c, (changed) => render())) }, "Edit"),
        el("button", { type: "button", class: "danger", onclick: (e) => {
          if (!confirm(`Remove camera ${c.id}? Its recorded data stays until deleted or expired.`)) return;
          act(e.target, async () => { await api(`/api/cameras/${encodeURIComponent(c.id)}`, { method: "DELETE" }); toast("Camera removed"); await render(); });
        } }, "Remove")))));
    clear(box,
      el("div", { class: "row" }, el("button", { type: "button", onclick: () => clear(box, cameraForm(null, () => render())) }, "Add camera")),
      el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Id", "Name", "Source", "State", "Privacy", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows))));
  }
  await render();
}
