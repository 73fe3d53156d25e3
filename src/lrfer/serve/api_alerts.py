"""Alerts: the list, and their lifecycle (open -> acknowledged, with a note -> resolved)."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from .api_common import OptionalBody, audit, known_camera, service, validate_model, with_iso
from .auth import Principal, User

router = APIRouter()
ALERT_TIMES = ("opened_at", "acknowledged_at", "resolved_at")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000)


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


@router.get("/api/alerts/{alert_id}", tags=["alerts"])
def get_alert(request: Request, _: User, alert_id: int) -> dict:
    row = service(request).store.get_alert(alert_id)
    if row is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    return public_alert(row)


def _change(request: Request, alert_id: int, body: Optional[dict], who: Principal, action: str) -> dict:
    note = validate_model(NoteIn, body if body is not None else {}, "alert").note
    svc = service(request)
    if svc.store.get_alert(alert_id) is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    change = svc.store.acknowledge_alert if action == "acknowledged" else svc.store.resolve_alert
    row = change(alert_id, who.name, note)
    if row is None:
        raise HTTPException(404, f"unknown alert {alert_id}")
    audit(request, f"alert.{action.removesuffix('d')}", str(alert_id), {"note": note[:200]} if note else None)
    row = public_alert(row)
    svc.alert_changed(f"alert.{action}", row)  # to the dashboards (SSE), webhooks and MQTT
    return row


@router.post("/api/alerts/{alert_id}/acknowledge", tags=["alerts"])
def acknowledge(request: Request, who: User, alert_id: int, body: OptionalBody = None) -> dict:
    """Someone has seen the alert and is on it: ``{"note": "..."}``."""
    return _change(request, alert_id, body, who, "acknowledged")


@router.post("/api/alerts/{alert_id}/resolve", tags=["alerts"])
def resolve(request: Request, who: User, alert_id: int, body: OptionalBody = None) -> dict:
    """The matter is closed (an optional ``{"note": "..."}``)."""
    return _change(request, alert_id, body, who, "resolved")


@router.get("/api/rules", tags=["alerts"])
def list_rules(request: Request, _: User) -> list[dict]:
    """The alert rules in force (from the config file; read-only here)."""
    return [r.model_dump() for r in service(request).config.rules]
