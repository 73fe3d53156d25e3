"""Health, readiness, Prometheus metrics, the live event stream and the OpenAPI pages."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .api_common import service
from .auth import User
from .events import sse_comment, sse_message

log = logging.getLogger(__name__)
router = APIRouter()

STATES = ("starting", "live", "reconnecting", "stopped", "error", "finished", "remote")
HEARTBEAT_SECONDS = 15.0
#: the window of the verdict gauge: a week, long enough for a rate, short enough to follow a change
VERDICT_DAYS = 7


class _ServiceCollector:
    """Camera and alert gauges read at scrape time (nothing to keep in step)."""

    def __init__(self, svc):
        self.svc = svc

    def collect(self):
        fps = GaugeMetricFamily("lrfer_camera_fps", "Frames analysed per second, recent", labels=["camera"])
        faces = GaugeMetricFamily("lrfer_camera_faces", "Faces in the camera's last analysed frame", labels=["camera"])
        frames = CounterMetricFamily("lrfer_camera_frames", "Frames analysed since the camera's worker started", labels=["camera"])
        state = GaugeMetricFamily("lrfer_camera_state", "1 for the camera's current state", labels=["camera", "state"])
        for cid, st in sorted(self.svc.statuses().items()):
            fps.add_metric([cid], float(st.fps))
            faces.add_metric([cid], float(st.faces_now))
            frames.add_metric([cid], float(st.frames))
            for s in STATES:
                state.add_metric([cid, s], 1.0 if st.state == s else 0.0)
        yield from (fps, faces, frames, state)
        try:
            n_open = len(self.svc.store.list_alerts(state="open", limit=100_000))
            judged = self.svc.store.alert_verdicts(time.time() - VERDICT_DAYS * 86400)
        except Exception:  # a database outage must not break the scrape of everything else
            log.warning("metrics: could not count open alerts", exc_info=True)
            return
        yield GaugeMetricFamily("lrfer_alerts_open", "Alerts open (not acknowledged nor resolved)", value=float(n_open))
        verdicts = GaugeMetricFamily("lrfer_alerts_verdict", f"Alerts opened in the last {VERDICT_DAYS} days, by staff's verdict",
                                     labels=["camera", "rule", "verdict"])  # fmt: skip
        for r in judged:  # one row per (camera, rule, verdict) already: the store groups them
            verdicts.add_metric([r["camera_id"], r["rule"], r["verdict"] or "not_judged"], float(r["n"]))
        yield verdicts


class Metrics:
    """The app's own Prometheus registry (one per app, so tests and two apps in one process never clash)."""

    def __init__(self, svc):
        self.registry = CollectorRegistry()
        self.requests = Counter("lrfer_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("lrfer_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry)
        self.ingest_batches = Counter("lrfer_ingest_batches", "Batches pushed by remote workers", ["result"], registry=self.registry)
        self.ingest_observations = Counter("lrfer_ingest_observations", "Observations accepted from remote workers", registry=self.registry)
        self.server_errors = Counter("lrfer_http_server_errors", "Requests that failed inside the server (answered 500)", registry=self.registry)
        self.registry.register(_ServiceCollector(svc))

    def observe(self, method: str, route: str, status: int, seconds: Optional[float]) -> None:
        self.requests.labels(method, route, str(status)).inc()
        if seconds is not None:
            self.latency.labels(method, route).observe(seconds)


@router.get("/api/health", tags=["system"])
def health() -> dict:
    """Liveness: the process answers (no login needed)."""
    return {"ok": True, "time": time.time()}


@router.get("/api/ready", tags=["system"])
def ready(request: Request, _: User) -> JSONResponse:
    """Readiness: the database answers."""
    try:
        ok = bool(service(request).store.ping())
    except Exception:
        log.warning("readiness: database ping failed", exc_info=True)
        ok = False
    return JSONResponse({"ok": ok, "database": "up" if ok else "down"}, status_code=200 if ok else 503)


@router.get("/metrics", tags=["system"], response_class=Response)
def metrics(request: Request, _: User) -> Response:
    """Prometheus text format (scrape with an integration token as a bearer token)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/events", tags=["system"])
async def events(request: Request, _: User) -> StreamingResponse:
    """Server-Sent Events: ``alert``, ``status`` and ``bucket`` as they happen."""
    hub = service(request).hub

    async def stream():
        with hub.subscribe() as sub:
            yield "retry: 3000\n" + sse_comment("connected")
            while True:
                try:
                    item = await sub.get(timeout=HEARTBEAT_SECONDS)
                except StopAsyncIteration:
                    return
                if item is None:
                    if await request.is_disconnected():
                        return
                    yield sse_comment()
                    continue
                yield sse_message(*item)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # nginx: pass events through at once
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request, _: User) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
def docs(request: Request, _: User) -> FileResponse:
    """Swagger UI, served from the installed swagger-ui-bundle (no CDN); its start-up script is a
    file, not inline, so the strict Content-Security-Policy holds here too."""
    return FileResponse(Path(__file__).resolve().parent / "dashboard" / "apidocs.html", headers={"Cache-Control": "no-cache"})
