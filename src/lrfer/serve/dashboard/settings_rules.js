// Settings > Rules: the alert rules. Those of the config file are shown read-only (the file holds
// them); rules made here are stored by the service and can be edited or removed.
import { act, api, clear, el, field, toast } from "./ui.js";

const EXPRESSIONS = ["sad", "angry", "fear", "disgust", "surprise", "neutral", "happy"];
// [key, label, input type, attributes]: what a form shows of a rule (percent fields are 0..100 on screen, 0..1 in the API)
const NUMBERS = [
  ["threshold", "Share above (%)", { min: 0, max: 100, step: 1 }, true],
  ["margin", "…and above usual by (%)", { min: 0, max: 100, step: 1 }, true],
  ["evidence", "Evidence needed (sum of share above that, cusum)", { min: 0.1, step: "any" }, false],
  ["unfamiliar_margin", "More for a face with no usual yet (%, track rules)", { min: 0, max: 100, step: 1 }, true],
  ["minutes", "Usual = before the last (minutes); window length", { min: 0.1, step: "any" }, false],
  ["min_observations", "From at least (5 s buckets of evidence)", { min: 1, step: 1 }, false],
  ["cooldown_minutes", "Then quiet for (minutes)", { min: 0, step: "any" }, false],
];
const DEFAULTS = { name: "", scope: "track", method: "cusum", expressions: ["sad", "angry", "fear", "disgust"], threshold: 0.65, margin: 0.15,
  evidence: 2, unfamiliar_margin: 0.05, minutes: 3, min_observations: 6, cooldown_minutes: 15, baseline: "own", cameras: [], zone: null, enabled: true };
// a window (and every zone rule) needs more evidence than a running sum: lrfer.serve.config.WINDOW_DEFAULTS
const WINDOW_DEFAULTS = { threshold: 0.7, min_observations: 12 };

function summary(r) {
  const over = `share of ${r.expressions.join("/")} > ${Math.round(100 * r.threshold)}%` + (r.baseline === "own" ? ` and > usual + ${Math.round(100 * r.margin)}%` : "");
  if (r.method === "cusum" && r.scope === "track") return `${over}, adding up to ${r.evidence} from ≥ ${r.min_observations} observations`;
  return `${over} over ${r.minutes} min, from ≥ ${r.min_observations} observations`;
}

function ruleForm(rule, done) {
  const isNew = !rule;
  rule = { ...DEFAULTS, ...(rule || {}) };
  const name = el("input", { value: rule.name, required: true, maxlength: 64, readonly: !isNew });
  const scope = el("select", {}, el("option", { value: "track" }, "one person (track)"), el("option", { value: "zone" }, "everyone in a zone"));
  scope.value = rule.scope;
  const baseline = el("select", {}, el("option", { value: "own" }, "their own usual expression"), el("option", { value: "none" }, "no baseline"));
  baseline.value = rule.baseline;
  const method = el("select", {}, el("option", { value: "window" }, "mean over a window"), el("option", { value: "cusum" }, "evidence adds up (cusum; track rules)"));
  method.value = rule.method;
  const nums = Object.fromEntries(NUMBERS.map(([k, , attrs, pct]) => [k, el("input", { type: "number", ...attrs, value: pct ? Math.round(100 * rule[k]) : rule[k] })]));
  if (isNew) {
    // a new rule starts from the chosen way's own defaults
    const byMethod = () => {
      const d = method.value === "window" || scope.value === "zone" ? WINDOW_DEFAULTS : DEFAULTS;
      nums.threshold.value = Math.round(100 * d.threshold);
      nums.min_observations.value = d.min_observations;
    };
    method.addEventListener("change", byMethod);
    scope.addEventListener("change", byMethod);
  }
  const boxes = EXPRESSIONS.map((x) => { const b = el("input", { type: "checkbox", value: x }); b.checked = rule.expressions.includes(x); return b; });
  const cameras = el("input", { value: rule.cameras.join(", "), placeholder: "all cameras" });
  const zone = el("input", { value: rule.zone || "", placeholder: "the whole camera" });
  const enabled = el("input", { type: "checkbox" });
  enabled.checked = rule.enabled !== false;
  const error = el("p", { class: "error", role: "alert" });
  const save = el("button", { type: "submit" }, isNew ? "Add rule" : "Save");
  const form = el("form", { class: "card", "aria-label": isNew ? "New rule" : `Edit rule ${rule.name}` },
    el("h2", {}, isNew ? "New alert rule" : `Edit ${rule.name}`),
    el("div", { class: "form-grid" }, field("Name", name), field("Watch", scope), field("Compared with", baseline), field("Decides by", method),
      ...NUMBERS.map(([k, label]) => field(label, nums[k])), field("Cameras (ids, comma-separated)", cameras), field("Zone (zone rules)", zone)),
    el("fieldset", {}, el("legend", {}, "Expressions that count"), el("div", { class: "row" }, boxes.map((b) => field(b.value, b)))),
    field("Enabled", enabled), error,
    el("div", { class: "row" }, save, el("button", { type: "button", class: "secondary", onclick: () => done() }, "Cancel")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    error.textContent = "";
    const body = { name: name.value.trim(), scope: scope.value, method: method.value, baseline: baseline.value, enabled: enabled.checked,
      expressions: boxes.filter((b) => b.checked).map((b) => b.value),
      cameras: cameras.value.split(",").map((c) => c.trim()).filter(Boolean), zone: zone.value.trim() || null };
    for (const [k, , , pct] of NUMBERS) body[k] = pct ? Number(nums[k].value) / 100 : Number(nums[k].value);
    act(save, async () => {
      try {
        await api(isNew ? "/api/rules" : `/api/rules/${encodeURIComponent(rule.name)}`, { method: isNew ? "POST" : "PUT", body });
      } catch (err) { error.textContent = err.message; return; }
      toast(isNew ? "Rule added: it applies from now on" : "Rule saved");
      done();
    });
  });
  return form;
}

export async function rulesTab(box) {
  async function render() {
    const rules = await api("/api/rules");
    const rows = rules.map((r) => el("tr", {},
      el("td", {}, r.name), el("td", {}, r.scope + (r.zone ? ` (${r.zone})` : "")), el("td", {}, summary(r)),
      el("td", {}, `${r.cooldown_minutes} min`), el("td", {}, r.cameras.length ? r.cameras.join(", ") : "all"), el("td", {}, r.enabled ? "yes" : "no"),
      el("td", {}, r.source === "config" ? el("span", { class: "muted" }, "config file") : el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", onclick: () => clear(box, ruleForm(r, render)) }, "Edit"),
        el("button", { type: "button", class: "danger", onclick: (e) => {
          if (confirm(`Delete rule ${r.name}? Its past alerts stay.`)) act(e.target, async () => { await api(`/api/rules/${encodeURIComponent(r.name)}`, { method: "DELETE" }); toast("Rule deleted"); await render(); });
        } }, "Delete")))));
    clear(box,
      el("p", { class: "muted" }, "Rules of the config file (lrfer.toml, [[rules]]) change there; rules added here are kept by the service."),
      el("div", { class: "row" }, el("button", { type: "button", onclick: () => clear(box, ruleForm(null, render)) }, "Add rule")),
      el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Name", "Scope", "Fires when", "Cooldown", "Cameras", "On", ""].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, rows))));
  }
  await render();
}
