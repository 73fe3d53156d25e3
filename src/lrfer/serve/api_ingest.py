"""Data in: one photo analysed on demand (``POST /api/analyze``) and remote workers' batches
(``POST /api/ingest``)."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Literal, Optional

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from ..files import ImageReadError, decode_image
from .api_common import audit, read_body, service, validate_model
from .auth import Principal, User, Worker
from .config import CAMERA_ID
from .records import CameraStatus, Observation

log = logging.getLogger(__name__)
router = APIRouter()

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}, "required": ["image"]}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObservationIn(_In):
    camera_id: str = Field(pattern=CAMERA_ID)
    track_key: str = Field(min_length=1, max_length=128)
    zone: str = Field("", max_length=64)
    start: float
    seconds: float = Field(gt=0, le=3600)
    frames: int = Field(ge=0)
    certain: int = Field(ge=0)
    probs: Optional[dict[str, float]] = None
    face_px: float = Field(ge=0)
    score: float


class StatusIn(_In):
    camera_id: str = Field(pattern=CAMERA_ID)
    state: Literal["starting", "live", "reconnecting", "stopped", "error", "finished"] = "starting"
    since: float
    error: str = Field("", max_length=2000)
    fps: float = 0.0
    faces_now: int = 0
    frames: int = 0
    last_frame_at: Optional[float] = None
    moods_now: dict[str, int] = Field(default_factory=dict)
    lag: float = 0.0
    width: int = 0
    height: int = 0


class IngestIn(_In):
    batch_id: str = Field(pattern=r"^[0-9A-Za-z_-]{8,64}$")
    observations: list[ObservationIn] = Field(default_factory=list, max_length=200_000)
    status: list[StatusIn] = Field(default_factory=list, max_length=1000)


def _limit(request: Request) -> int:
    return int(service(request).config.server.max_upload_mb * 1024 * 1024)


async def _upload(request: Request, body: bytes) -> bytes:
    """The image's bytes: the body itself (``Content-Type: image/...``) or a multipart form's first file."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        return body
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
    except Exception as err:  # the multipart parser's own errors (boundary, headers): the client's fault
        raise HTTPException(400, f"image: not a readable multipart form ({err.__class__.__name__})") from None
    try:
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise HTTPException(400, "image: no file in the form (send it as the field 'image')")
        return await files[0].read()
    finally:
        await form.close()


def _analyze(svc, data: bytes) -> dict:
    if not data:
        raise HTTPException(400, "image: empty upload (0 bytes)")
    try:
        rgb = np.asarray(decode_image(data, "RGB"))  # decoded in memory: the upload never touches the disk
    except ImageReadError as err:
        raise HTTPException(400, f"image: {err}") from None
    faces = svc.analyze(rgb)
    return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "faces": [dataclasses.asdict(f) for f in faces]}


@router.post("/api/analyze", tags=["data"], openapi_extra=_UPLOAD_DOC)
async def analyze(request: Request, _: User) -> dict:
    """One photo in (multipart field ``image``, or the raw body), its faces and expressions out.
    Nothing is stored. Size limit: ``server.max_upload_mb`` (413 above it)."""
    body = await read_body(request, _limit(request))
    data = await _upload(request, body)
    return await run_in_threadpool(_analyze, service(request), data)


def _out_of_scope(request: Request, who: Principal, batch: IngestIn) -> list[str]:
    """The cameras of ``batch`` that ``who`` may not write (empty: all allowed); a refusal is audited."""
    if who.site is None and who.cameras is None:
        return []  # an unscoped token, as every token made before scopes existed
    store = service(request).store
    named = sorted({o.camera_id for o in batch.observations} | {s.camera_id for s in batch.status})
    refused = []
    for cid in named:
        row = store.get_camera(cid) if who.site is not None else None
        if not who.may_write(cid, row["site"] if row else None):
            refused.append(cid)
    if refused:
        audit(request, "ingest.refused", ",".join(refused), {"batch_id": batch.batch_id, "cameras": refused, "observations": len(batch.observations), "scope": who.scope_text()})
    return refused


@router.post("/api/ingest", tags=["workers"])
async def ingest(request: Request, who: Worker) -> Response:
    """A remote worker's batch of observations and statuses; a batch id seen before is not stored again.

    A scoped worker token (a site, a list of cameras) writes only its cameras: a batch that names
    another is refused whole (403, ``"cameras"`` lists the refused ones) and nothing of it is stored."""
    body = await read_body(request, _limit(request))
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "body: not JSON") from None
    batch = validate_model(IngestIn, data, "batch")
    metrics = request.app.state.metrics
    refused = await run_in_threadpool(_out_of_scope, request, who, batch)
    if refused:
        metrics.ingest_batches.labels("refused").inc()
        what = f"camera{'s' if len(refused) > 1 else ''} {', '.join(refused)}"
        detail = f"this token ({who.name.removeprefix('token:')}) may not write {what} (its scope: {who.scope_text()}); nothing of this batch was stored"
        return JSONResponse({"detail": detail, "cameras": refused}, status_code=403)
    observations = [Observation(**o.model_dump()) for o in batch.observations]
    statuses = [CameraStatus(**s.model_dump()) for s in batch.status]
    svc = service(request)
    site = who.site or who.name.removeprefix("token:")  # where the worker runs: the token's site, else its name
    stored = await run_in_threadpool(svc.ingest, batch.batch_id, observations, statuses, site)
    metrics.ingest_batches.labels("stored" if stored else "duplicate").inc()
    if stored:
        metrics.ingest_observations.inc(len(observations))
    return JSONResponse({"accepted": len(observations) if stored else 0, "duplicate": not stored})
