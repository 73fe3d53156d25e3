"""What the API's routers share: the service from a request, the audit call, times in and out,
one-line validation errors and a request body read under a size limit."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Iterable, Optional

from fastapi import Body, HTTPException, Request
from pydantic import ValidationError

from .auth import Principal, client_ip
from .config import one_line

#: The most points a timeline answers with (a week of 5 s buckets would be 120 960).
MAX_POINTS = 5000
MAX_RANGE_DAYS = 400
_ROUND_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

#: A JSON body validated in the route (so a 422 names the key in one line, as the config does).
JSONBody = Annotated[Any, Body()]
OptionalBody = Annotated[Optional[dict], Body()]


def service(request: Request):
    return request.app.state.service


def principal(request: Request) -> Optional[Principal]:
    return getattr(request.state, "principal", None)


def audit(request: Request, action: str, target: str = "", detail: Optional[dict] = None, *, actor: Optional[str] = None) -> None:
    """Record a state-changing request in the audit log (who, what, on what, from where)."""
    who = actor if actor is not None else (principal(request).name if principal(request) else "anonymous")
    service(request).store.audit(who, action, target, detail or {}, client_ip(request))


def iso(t: Optional[float]) -> Optional[str]:
    """Epoch seconds as ISO 8601 (UTC), None as None."""
    if t is None:
        return None
    return datetime.fromtimestamp(float(t), timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def with_iso(row: dict, keys: Iterable[str]) -> dict:
    """``row`` with ``<key>_iso`` added for each epoch-seconds key present."""
    out = dict(row)
    for k in keys:
        if k in row:
            out[f"{k}_iso"] = iso(row[k])
    return out


def parse_time(value: Optional[str], name: str, default: float) -> float:
    """A query's time: epoch seconds or ISO 8601 (naive means UTC); 422 naming the key otherwise."""
    if value is None or value == "":
        return default
    try:
        t = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPException(422, f"{name}: not a time (got {value[:40]!r}): give epoch seconds or ISO 8601") from None
        t = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    if not math.isfinite(t):
        raise HTTPException(422, f"{name}: not a finite time") from None
    return t


def time_range(start: Optional[str], end: Optional[str], now: float, default_seconds: float = 3600.0) -> tuple[float, float]:
    t1 = parse_time(end, "end", now)
    t0 = parse_time(start, "start", t1 - default_seconds)
    if t0 >= t1:
        raise HTTPException(422, "start: must be before end")
    if t1 - t0 > MAX_RANGE_DAYS * 86400:
        raise HTTPException(422, f"start: the range is longer than {MAX_RANGE_DAYS} days")
    return t0, t1


def pick_bucket(bucket: Optional[int], span: float, base: int) -> int:
    """The bucket asked for, or one that gives at most ~300 points: a multiple of the stored ``base``,
    rounded up to whole minutes or hours when that long (the store answers those from its rollups)."""
    if bucket is None:
        b = max(1, math.ceil(span / 300 / base)) * base
        if b < 60:
            return b
        return next((n for n in _ROUND_BUCKETS if n >= b), math.ceil(b / 86400) * 86400)
    if bucket < 1:
        raise HTTPException(422, "bucket: must be at least 1 second")
    if span / bucket > MAX_POINTS:
        raise HTTPException(422, f"bucket: {bucket} s gives more than {MAX_POINTS} points over this range (use at least {math.ceil(span / MAX_POINTS)})")
    return bucket


def validate_model(model: type, data: Any, source: str):
    """A pydantic model from request data, or 422 with one line naming the key."""
    if not isinstance(data, dict):
        raise HTTPException(422, f"{source}: expected a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        loc = err.errors()[0]["loc"]
        if any("password" in str(part) for part in loc):  # never echo a password back
            raise HTTPException(422, f"{source}: password: {err.errors()[0]['msg']}") from None
        raise HTTPException(422, one_line(err, source).what) from None


def known_camera(request: Request, camera_id: Optional[str]) -> Optional[str]:
    """``camera_id`` when the store or a worker knows it (or None when not given); 404 otherwise."""
    if camera_id is None or camera_id == "":
        return None
    svc = service(request)
    if svc.store.get_camera(camera_id) is None and camera_id not in svc.statuses():
        raise HTTPException(404, f"unknown camera '{camera_id}'")
    return camera_id


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body is {int(declared)} bytes, above the limit of {limit} bytes (server.max_upload_mb)")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"request body is above the limit of {limit} bytes (server.max_upload_mb)")
    return bytes(body)
