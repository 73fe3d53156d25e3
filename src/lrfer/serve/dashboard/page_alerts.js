// Alerts: newest first, filtered by state; acknowledge (with a note) and resolve. Live via SSE.
import { act, ago, api, ask, badge, choiceButtons, clear, el, toast, when } from "./ui.js";

const FILTERS = [["open", "Open"], ["acknowledged", "Acknowledged"], ["resolved", "Resolved"], ["", "All"]];
// Was it right? Staff's verdicts show a site how far it can trust its alerts (GET /api/alerts/summary).
const VERDICTS = [["", "Not sure (yet)"], ["real", "Real: the person was distressed"], ["false_alarm", "False alarm: the person was fine"]];
const VERDICT_TEXT = { real: "real", false_alarm: "false alarm" };

function judged(title, label, placeholder, submit) {
  return ask(title, { label, placeholder, submit, choices: VERDICTS, legend: "Was it right?" });
}

function said(answer) {
  return answer.choice ? { note: answer.text, verdict: answer.choice } : { note: answer.text };
}

function evidence(ev) {
  const parts = [];
  if (typeof ev.share === "number") parts.push(`share ${(100 * ev.share).toFixed(0)}%`);
  if (typeof ev.baseline === "number") parts.push(`baseline ${(100 * ev.baseline).toFixed(0)}%`);
  if (ev.observations !== undefined) parts.push(`${ev.observations} observations`);
  if (ev.minutes !== undefined) parts.push(`over ${ev.minutes} min`);
  return parts.join(" · ");
}

function card(a, reload) {
  const ack = el("button", { type: "button", class: "ack", onclick: async (e) => {
    const answer = await judged(`Acknowledge alert ${a.id}`, "Note (what you did)", "e.g. sat with her, she is fine", "Acknowledge");
    if (answer === null) return;
    await act(e.target, async () => { await api(`/api/alerts/${a.id}/acknowledge`, { method: "POST", body: said(answer) }); toast("Acknowledged"); await reload(); });
  } }, "Acknowledge");
  const resolve = el("button", { type: "button", class: "secondary resolve", onclick: async (e) => {
    const answer = await judged(`Resolve alert ${a.id}`, "Note (optional)", "", "Resolve");
    if (answer === null) return;
    await act(e.target, async () => { await api(`/api/alerts/${a.id}/resolve`, { method: "POST", body: said(answer) }); toast("Resolved"); await reload(); });
  } }, "Resolve");
  const who = [];
  if (a.acknowledged_by) who.push(`acknowledged by ${a.acknowledged_by} ${ago(a.acknowledged_at)}`);
  if (a.resolved_by) who.push(`resolved by ${a.resolved_by} ${ago(a.resolved_at)}`);
  if (a.verdict) who.push(`judged ${VERDICT_TEXT[a.verdict] || a.verdict}`);
  if (a.reminders) who.push(`sent again ${a.reminders}×`);
  return el("article", { class: "card alert-card", dataset: { alert: String(a.id), state: a.state }, "aria-label": `Alert ${a.id}, ${a.state}` },
    el("div", {},
      el("p", {}, badge(a.state), " ", el("strong", {}, a.message || a.rule)),
      el("p", { class: "muted" }, `${a.camera_id}${a.zone ? ` · zone ${a.zone}` : ""}${a.track_key ? ` · track ${a.track_key}` : ""} · rule ${a.rule} · ${when(a.opened_at)}`),
      evidence(a.evidence || {}) ? el("p", { class: "muted" }, evidence(a.evidence)) : null,
      who.length ? el("p", {}, who.join(" · ")) : null,
      a.note ? el("p", { class: "note" }, `Note: ${a.note}`) : null),
    el("div", { class: "actions" }, a.state === "open" ? ack : null, a.state !== "resolved" ? resolve : null));
}

export async function alertsPage(main) {
  let state = "open";
  const list = el("div", { class: "list", id: "alerts", "aria-live": "polite" });
  const buttons = choiceButtons(FILTERS, state, (key) => { state = key; reload(); });
  const trust = el("p", { class: "muted", id: "alert-trust", "aria-live": "polite" });
  clear(main, el("h1", {}, "Alerts"), trust, el("div", { class: "row", role: "group", "aria-label": "Show", style: { marginBottom: "1rem" } }, buttons), list);

  // Answers can come back out of order (a live update's reload, then a filter's): only the
  // latest question's answer is drawn, or the "Acknowledged" view could show the open list.
  let asked = 0;
  async function reload() {
    const filter = state, seq = ++asked;
    const rows = await api(`/api/alerts?limit=200${filter ? `&state=${filter}` : ""}`);
    if (seq !== asked) return;
    clear(list, rows.length ? rows.map((a) => card(a, reload)) : el("p", { class: "muted" }, filter === "open" ? "No open alert." : "No alert."));
    const s = await api("/api/alerts/summary?days=7");
    if (seq !== asked) return;
    trust.textContent = `Last 7 days: ${s.alerts} alert${s.alerts === 1 ? "" : "s"} · ${s.real} real · ${s.false_alarm} false alarm${s.false_alarm === 1 ? "" : "s"} · ${s.not_judged} not judged`;
  }

  await reload();
  const onAlert = () => reload().catch(() => {});
  window.addEventListener("lrfer:alert", onAlert);
  return () => window.removeEventListener("lrfer:alert", onAlert);
}
