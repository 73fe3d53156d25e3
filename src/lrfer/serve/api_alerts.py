"""Alerts: the list, and their lifecycle (open -> acknowledged, with a note -> resolved); the rules that raise them."""

from __future__ import annotations

import time
from typing import Literal, Optional

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from .api_common import JSONBody, OptionalBody, audit, known_camera, service, validate_model, with_iso
from .auth import Admin, Principal, User
from .config import Rule
from .records import ALERT_VERDICTS

router = APIRouter()
ALERT_TIMES = ("opened_at", "acknowledged_at", "resolved_at")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)
    verdict: Optional[Literal[ALERT_VERDICTS]] = Field(None, description="was the alert right: real distress, or a false alarm")


def public_alert(row: dict) -> dict:
    return with_iso(row, ALERT_TIMES)


@router.get("/api/alerts", tags=["alerts"])
def list_alerts(
    request: Request,
    _: User,
    state: Optional[Literal["open", "acknowledged", "resolved"]] = None,
    camera: Optional[str] = None,
    limit: int = 100,
) -> list[dict]:
    """The newest alerts first; filter by ``state`` and ``camera``."""
    cam = known_camera(request, camera)
    rows = service(request).store.list_alerts(state=state, camera_id=cam, limit=max(1, min(limit, 1000)))
    return [public_alert(r) for r in rows]


@router.get("/api/alerts/summary", tags=["alerts"])
def alerts_summary(request: Request, _: User, days: float = 7.0, camera: Optional[str] = None) -> dict:
    """How often the alerts of the last ``days`` were right, by staff's verdicts: in all, and per
    camera and rule. ``false_alarm_share`` is over the judged alerts (None when none is)."""
    if not 0 < days <= 366:
        raise HTTPException(400, "days must be above 0 and at most 366")
    cam = known_camera(request, camera)
    since = time.time() - days * 86400
    rows = service(request).store.alert_verdicts(since, camera_id=cam)
    groups: dict[tuple[str, str], dict] = {}
    for r in rows:
        g = groups.setdefault((r["camera_id"], r["rule"]), {"camera_id": r["camera_id"], "rule": r["rule"], **_counts()})
        g[r["verdict"] or "not_judged"] += r["n"]
        g["alerts"] += r["n"]
    total = _counts()
    for g in groups.values():
        for k in total:
            total[k] += g[k]
    judged = total["real"] + total["false_alarm"]
    return {"days": days, "since": since, **total, "false_alarm_share": total["false_alarm"] / judged if judged else None,
            "by_rule": sorted(groups.values(), key=lambda g: (g["camera_id"], g["rule"]))}


def _counts() -> dict[str, int]:
    return {"alerts": 0, **dict.fromkeys(ALERT_VERDICTS, 0), "not_judged": 0}


@router.get("/api/alerts/{alert_id}", tags=["alerts"])
def get_alert(request: Request, _: User, alert_id: int) -> dict:
    row = service(request).store.get_alert(alert_id)
    if row is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    return public_alert(row)


def _change(request: Request, alert_id: int, body: Optional[dict], who: Principal, action: str) -> dict:
    said = validate_model(NoteIn, body if body is not None else {}, "alert")
    svc = service(request)
    if svc.store.get_alert(alert_id) is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    change = svc.store.acknowledge_alert if action == "acknowledged" else svc.store.resolve_alert
    row = change(alert_id, who.name, said.note, said.verdict)
    if row is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    if said.verdict == "false_alarm":
        svc.false_alarm(row)  # the person's face at that share is fine: their rules ask for more
    detail = {k: v for k, v in (("note", said.note[:200]), ("verdict", said.verdict)) if v}
    audit(request, f"alert.{action.removesuffix('d')}", str(alert_id), detail or None)
    row = public_alert(row)
    svc.alert_changed(f"alert.{action}", row)  # to the dashboards (SSE), webhooks and MQTT
    return row


@router.post("/api/alerts/{alert_id}/acknowledge", tags=["alerts"])
def acknowledge(request: Request, who: User, alert_id: int, body: OptionalBody = None) -> dict:
    """Someone has seen the alert and is on it: ``{"note": "...", "verdict": "real" | "false_alarm"}`` (both optional)."""
    return _change(request, alert_id, body, who, "acknowledged")


@router.post("/api/alerts/{alert_id}/resolve", tags=["alerts"])
def resolve(request: Request, who: User, alert_id: int, body: OptionalBody = None) -> dict:
    """The matter is closed (optional ``{"note": "...", "verdict": "real" | "false_alarm"}``: was it right?)."""
    return _change(request, alert_id, body, who, "resolved")


@router.get("/api/rules", tags=["rules"])
def list_rules(request: Request, _: User) -> list[dict]:
    """The alert rules, each with its ``source``: ``config`` (the file: edit it there) or ``dashboard``."""
    return [{**r.model_dump(), "source": src} for r, src in service(request).rules()]


def _editable(request: Request, name: str, *, exists: bool) -> None:
    sources = {r.name: src for r, src in service(request).rules()}
    if sources.get(name) == "config":
        raise HTTPException(409, f"rule '{name}' is defined in the config file: change it there (lrfer.toml, [[rules]]) and restart")
    if exists and name not in sources:
        raise HTTPException(404, f"unknown rule '{name}'")
    if not exists and name in sources:
        raise HTTPException(409, f"rule '{name}' exists: edit it with PUT /api/rules/{name}")


@router.post("/api/rules", tags=["rules"], status_code=201)
def add_rule(request: Request, who: Admin, body: JSONBody) -> dict:
    """A new alert rule (the keys of a ``[[rules]]`` table); it applies from the next observation."""
    rule = validate_model(Rule, body, "rule")
    _editable(request, rule.name, exists=False)
    service(request).put_rule(rule)
    audit(request, "rule.add", rule.name, rule.model_dump())
    return {**rule.model_dump(), "source": "dashboard"}


@router.put("/api/rules/{name}", tags=["rules"])
def edit_rule(request: Request, who: Admin, name: str, body: JSONBody) -> dict:
    rule = validate_model(Rule, {**body, "name": name} if isinstance(body, dict) else body, "rule")
    _editable(request, name, exists=True)
    service(request).put_rule(rule)
    audit(request, "rule.edit", name, rule.model_dump())
    return {**rule.model_dump(), "source": "dashboard"}


@router.delete("/api/rules/{name}", tags=["rules"])
def delete_rule(request: Request, who: Admin, name: str) -> dict:
    _editable(request, name, exists=True)
    service(request).delete_rule(name)
    audit(request, "rule.delete", name)
    return {"deleted": name}
