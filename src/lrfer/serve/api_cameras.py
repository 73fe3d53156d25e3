"""Cameras: list, add, edit, remove (admins), their status, and the live snapshot."""

from __future__ import annotations

import time
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from .api_common import JSONBody, OptionalBody, audit, iso, known_camera, service, time_range, validate_model, with_iso
from .auth import Admin, Principal, User
from .config import Camera
from .records import CameraStatus
from .store import FACE_EDGES

router = APIRouter()
_STATUS_TIMES = ("since", "last_frame_at")
SMALL_FACE_PX = FACE_EDGES[1]  # 24: alerts come late or never below it (store.FACE_EDGES says where that is measured)


def redact_url(url: str) -> str:
    """A camera URL without its password (``rtsp://user:***@host/...``): what staff see."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.password:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _status(svc, camera_id: str) -> Optional[dict]:
    st: Optional[CameraStatus] = svc.statuses().get(camera_id)
    return with_iso(st.to_json(), _STATUS_TIMES) if st is not None else None


def _public(svc, row: dict, who: Principal, mutes: Optional[dict[str, dict]] = None) -> dict:
    if mutes is None:
        mutes = svc.store.active_mutes(time.time())
    out = with_iso(row, ("created_at", "updated_at"))
    if not who.is_admin:
        out["url"] = redact_url(out.get("url", ""))
    out["status"] = _status(svc, row["id"])
    mute = mutes.get(row["id"])
    out["muted"] = with_iso({k: mute[k] for k in ("until", "by", "note")}, ("until",)) if mute else None
    return out


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    minutes: float = Field(60.0, gt=0, le=24 * 60)
    note: str = Field("", max_length=500)


def _camera_from(body: Any, camera_id: Optional[str] = None) -> Camera:
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("created_at", "updated_at", "created_at_iso", "updated_at_iso", "status")}
        if camera_id is not None:
            if body.setdefault("id", camera_id) != camera_id:
                raise HTTPException(422, f"camera: id: does not match the URL's '{camera_id}' (a camera's id cannot change)")
    return validate_model(Camera, body, "camera")


@router.get("/api/cameras", tags=["cameras"])
def list_cameras(request: Request, who: User) -> list[dict]:
    svc = service(request)
    mutes = svc.store.active_mutes(time.time())
    return [_public(svc, row, who, mutes) for row in svc.store.list_cameras()]


@router.get("/api/cameras/{camera_id}", tags=["cameras"])
def get_camera(request: Request, who: User, camera_id: str) -> dict:
    svc = service(request)
    row = svc.store.get_camera(camera_id)
    if row is None:
        raise HTTPException(404, f"unknown camera '{camera_id}'")
    return _public(svc, row, who)


@router.post("/api/cameras", tags=["cameras"], status_code=201)
def add_camera(request: Request, who: Admin, body: JSONBody) -> dict:
    """Add a camera (the same keys as a ``[[cameras]]`` table of the config); its worker starts at once."""
    camera = _camera_from(body)
    svc = service(request)
    if svc.store.get_camera(camera.id) is not None:
        raise HTTPException(409, f"camera '{camera.id}' exists: edit it with PUT /api/cameras/{camera.id}")
    row = svc.put_camera(camera)
    audit(request, "camera.add", camera.id, {"url": redact_url(camera.url)})
    return _public(svc, row, who)


@router.put("/api/cameras/{camera_id}", tags=["cameras"])
def update_camera(request: Request, who: Admin, camera_id: str, body: JSONBody) -> dict:
    """Replace a camera's settings (its worker restarts with them)."""
    svc = service(request)
    if svc.store.get_camera(camera_id) is None:
        raise HTTPException(404, f"unknown camera '{camera_id}'")
    camera = _camera_from(body, camera_id)
    row = svc.put_camera(camera)
    audit(request, "camera.update", camera_id, {"url": redact_url(camera.url), "masks": len(camera.masks), "zones": len(camera.zones)})
    return _public(svc, row, who)


@router.delete("/api/cameras/{camera_id}", tags=["cameras"])
def delete_camera(request: Request, who: Admin, camera_id: str) -> dict:
    """Stop and remove a camera (its recorded observations stay until deleted or expired)."""
    if not service(request).delete_camera(camera_id):
        raise HTTPException(404, f"unknown camera '{camera_id}'")
    audit(request, "camera.delete", camera_id)
    return {"deleted": camera_id}


@router.get("/api/cameras/{camera_id}/status", tags=["cameras"])
def camera_status(request: Request, who: User, camera_id: str) -> dict:
    known_camera(request, camera_id)
    svc = service(request)
    return _status(svc, camera_id) or {"camera_id": camera_id, "state": "stopped"}


def _band_label(lo: int, hi: Optional[int]) -> str:
    if lo == 0:
        return f"under {hi} px"
    return f"{lo} px and over" if hi is None else f"{lo}-{hi - 1} px"


@router.get("/api/cameras/{camera_id}/faces", tags=["cameras"])
def face_sizes(request: Request, who: User, camera_id: str, start: Optional[str] = None, end: Optional[str] = None) -> dict:
    """How big the faces this camera sees are (default: the last 24 hours): per size band the share
    of frames, the share of them that counted as evidence, and the tracks; ``small_share``, the
    share under 24 px, where alerts come late or never (docs/serve.md); ``advice`` when most are."""
    known_camera(request, camera_id)
    t0, t1 = time_range(start, end, time.time(), default_seconds=86400)
    bands = service(request).store.face_sizes(camera_id, t0, t1)
    total = sum(b["frames"] for b in bands)
    for b in bands:
        b["label"] = _band_label(b["min_px"], b["max_px"])
        b["share"] = round(b["frames"] / total, 4) if total else None
        b["certain_share"] = round(b["certain"] / b["frames"], 4) if b["frames"] else None
    small = sum(b["frames"] for b in bands if b["max_px"] is not None and b["max_px"] <= SMALL_FACE_PX) / total if total else None
    advice = (f"Most faces this camera sees are under {SMALL_FACE_PX} px: their expressions are read least reliably, so alerts for "
              "them come late or not at all. A camera closer to where people sit, or a narrower lens, helps most.") if small is not None and small >= 0.5 else None  # fmt: skip
    return {"camera_id": camera_id, "start": t0, "end": t1, "start_iso": iso(t0), "end_iso": iso(t1), "frames": total,
            "small_px": SMALL_FACE_PX, "small_share": None if small is None else round(small, 4), "advice": advice, "bands": bands}  # fmt: skip


@router.post("/api/cameras/{camera_id}/mute", tags=["cameras"])
def mute_camera(request: Request, who: User, camera_id: str, body: OptionalBody = None) -> dict:
    """Raise no alert on the camera for a while: ``{"minutes": 60, "note": "music in the lounge"}``
    (at most a day; a new mute replaces the last). Evidence still adds up: a person still
    distressed when it ends is alerted then."""
    known_camera(request, camera_id)
    m = validate_model(MuteIn, body if body is not None else {}, "mute")
    row = service(request).mute(camera_id, m.minutes, who.name, m.note)
    audit(request, "camera.mute", camera_id, {"minutes": m.minutes, **({"note": m.note[:200]} if m.note else {})})
    return with_iso(row, ("until", "created_at"))


@router.delete("/api/cameras/{camera_id}/mute", tags=["cameras"])
def unmute_camera(request: Request, who: User, camera_id: str) -> dict:
    """Alerts again, at once."""
    known_camera(request, camera_id)
    if not service(request).unmute(camera_id):
        raise HTTPException(404, f"camera '{camera_id}' is not muted")
    audit(request, "camera.unmute", camera_id)
    return {"unmuted": camera_id}


@router.get("/api/cameras/{camera_id}/snapshot.jpg", tags=["cameras"], response_class=Response)
def snapshot(request: Request, who: User, camera_id: str, blur: int = 1) -> Response:
    """The last analysed frame as JPEG: masks black, faces blurred (an admin may ask ``?blur=0``
    when the config's privacy allows it). Live only: never written anywhere."""
    known_camera(request, camera_id)
    svc = service(request)
    privacy = svc.config.privacy
    sharp = blur == 0 and who.is_admin and not privacy.blur_snapshots and not privacy.aggregate_only
    worker = svc.worker(camera_id)
    jpeg = worker.snapshot(blur=not sharp) if worker is not None else None
    if not jpeg:
        raise HTTPException(404, f"camera '{camera_id}' has no snapshot yet (not running on this server, or no frame analysed)")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Lrfer-Blurred": "0" if sharp else "1"})
