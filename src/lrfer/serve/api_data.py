"""The recorded data: mood timelines, tracks, the CSV export and deletion by camera and time range."""

from __future__ import annotations

import csv
import io
import itertools
import time
from typing import Iterator, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from .api_common import audit, iso, known_camera, pick_bucket, service, time_range, with_iso
from .auth import Admin, User
from .profile import HOUR, day_profile, parse_days

router = APIRouter()
PROFILE_DAYS = 28  # four weeks: each weekday four times
_PEEK_ROWS = 1000  # rows read before the CSV header is written: their probability columns make it


def _aggregate_only(request: Request, what: str) -> None:
    if service(request).config.privacy.aggregate_only:
        raise HTTPException(403, f"{what} is off in aggregate-only privacy mode (privacy.aggregate_only): only zone and camera shares are shown")


def hide_small_buckets(data: dict, min_people: int, key: str = "points") -> dict:
    """Aggregate-only privacy: a bucket's (or an hour's) shares are shown only when ``min_people`` tracks made them."""
    for p in data.get(key, []):
        if (p.get("tracks") or 0) < min_people:
            p["shares"] = dict.fromkeys(p.get("shares") or data.get("classes", []))
            p["hidden"] = True
    return data


def _shares(request: Request, data: dict, key: str, camera: Optional[str], zone: Optional[str], t0: float, t1: float) -> dict:
    """A timeline's or a day profile's answer: what was asked, and in aggregate-only mode the
    ``key`` entries (buckets, hours) with fewer than ``min_people`` people hidden."""
    privacy = service(request).config.privacy
    if privacy.aggregate_only:
        hide_small_buckets(data, privacy.min_people, key)
    return {**data, "camera": camera, "zone": zone or None, "start": t0, "end": t1, "start_iso": iso(t0), "end_iso": iso(t1),
            "aggregate_only": privacy.aggregate_only, "min_people": privacy.min_people if privacy.aggregate_only else None}  # fmt: skip


@router.get("/api/timeline", tags=["data"])
def timeline(
    request: Request,
    _: User,
    camera: Optional[str] = None,
    zone: Optional[str] = None,
    start: Optional[str] = None,
    end: Optional[str] = None,
    bucket: Optional[int] = None,
) -> dict:
    """Shares of each expression per time bucket, over certain faces only (``null``: no evidence).

    ``camera`` empty: every camera; ``start``/``end``: epoch seconds or ISO 8601 (default: the last
    hour); ``bucket``: seconds (default: about 300 points over the range)."""
    svc = service(request)
    cam = known_camera(request, camera)
    t0, t1 = time_range(start, end, time.time())
    b = pick_bucket(bucket, t1 - t0, svc.config.server.bucket_seconds)
    data = svc.store.timeline(cam, t0, t1, b, zone=zone or None)
    for p in data.get("points", []):
        p["time"] = iso(p["t"])
    return _shares(request, data, "points", cam, zone, t0, t1)


@router.get("/api/profile", tags=["data"])
def profile(
    request: Request,
    _: User,
    camera: Optional[str] = None,
    zone: Optional[str] = None,
    start: Optional[str] = None,
    end: Optional[str] = None,
    tz: str = "UTC",
    days: str = "",
) -> dict:
    """Mood through the day: shares of each expression per hour of the day (0-23 in ``tz``, an IANA
    zone such as Europe/Berlin), over certain faces only, from the hourly rollups of the range.

    ``camera`` empty: every camera; ``start``/``end``: epoch seconds or ISO 8601 (default: the last
    28 days); ``days``: mon ... sun comma-separated, ``weekdays``, ``weekend`` (default: all).
    Each hour has its ``tracks`` (the most people in one hour window) and the ``days`` it is over."""
    svc = service(request)
    cam = known_camera(request, camera)
    t0, t1 = time_range(start, end, time.time(), default_seconds=PROFILE_DAYS * 86400)
    try:
        where = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(422, f"tz: unknown time zone {tz!r}: give an IANA name such as Europe/Berlin or UTC") from None
    try:
        wanted = parse_days(days)
    except ValueError as err:
        raise HTTPException(422, f"days: {err}") from None
    data = day_profile(svc.store.rollup_rows(cam, zone or None, t0, t1, HOUR), where, wanted)
    return _shares(request, data, "hours", cam, zone, t0, t1)


@router.get("/api/tracks", tags=["data"])
def tracks(
    request: Request,
    _: User,
    camera: str,
    start: Optional[str] = None,
    end: Optional[str] = None,
    limit: int = 200,
) -> list[dict]:
    """Anonymous tracks seen by a camera in the range, with their seconds in each expression."""
    _aggregate_only(request, "the per-track view")
    known_camera(request, camera)
    t0, t1 = time_range(start, end, time.time())
    rows = service(request).store.tracks(camera, t0, t1, limit=max(1, min(limit, 5000)))
    return [with_iso(r, ("first_seen", "last_seen")) for r in rows]


def _flat(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}_{sub}": val for sub, val in v.items()})
        else:
            out[k] = v
    if "start" in row:
        out["start_iso"] = iso(row["start"])
    return out


def csv_lines(rows: Iterator[dict]) -> Iterator[str]:
    """CSV text, a chunk at a time: the header from the keys of the first rows, nested dicts flattened."""
    head = [_flat(r) for r in itertools.islice(rows, _PEEK_ROWS)]
    fields: list[str] = []
    for r in head:
        fields.extend(k for k in r if k not in fields)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields or ["camera_id", "track_key", "start"], extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for i, r in enumerate(itertools.chain(head, (_flat(r) for r in rows))):
        writer.writerow(r)
        if i % 500 == 499:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


@router.get("/api/export.csv", tags=["data"])
def export_csv(request: Request, _: Admin, camera: Optional[str] = None, start: Optional[str] = None, end: Optional[str] = None) -> StreamingResponse:
    """The stored observations (one row per track per bucket) as CSV, streamed (admins)."""
    _aggregate_only(request, "the per-track export")
    cam = known_camera(request, camera)
    t0, t1 = time_range(start, end, time.time(), default_seconds=86400.0)
    audit(request, "export", cam or "*", {"start": t0, "end": t1})
    rows = service(request).store.export_observations(cam, t0, t1)
    name = f"lrfer-{cam or 'all'}-{iso(t0)}.csv".replace(":", "")
    return StreamingResponse(csv_lines(iter(rows)), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.delete("/api/observations", tags=["data"])
def delete_observations(request: Request, _: Admin, start: str, end: str, camera: Optional[str] = None) -> dict:
    """Delete the observations of a camera (or all cameras) between ``start`` and ``end`` (admins)."""
    cam = known_camera(request, camera)
    t0, t1 = time_range(start, end, time.time())
    n = service(request).store.delete_observations(cam, t0, t1)
    audit(request, "observations.delete", cam or "*", {"start": t0, "end": t1, "deleted": n})
    return {"deleted": n, "camera": cam, "start": t0, "end": t1}
