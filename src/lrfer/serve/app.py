"""The HTTP side of ``lrfer serve``: ``create_app(service)`` builds the FastAPI app (API, metrics,
dashboard), ``make_server`` the uvicorn server that runs it and stops cleanly.

Every error answers one line of JSON (``{"detail": "..."}``); an unexpected exception is logged
with its traceback and answers a one-line 500, never the traceback. ``app.state.server_errors``
counts those 500s (the tests assert it stays 0).
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import signal
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import LrferError
from . import api_alerts, api_auth, api_cameras, api_data, api_ingest, api_system
from .api_system import Metrics
from .auth import LoginLimiter

log = logging.getLogger(__name__)

DASHBOARD = Path(__file__).resolve().parent / "dashboard"
# Plotly injects its own <style> elements, hence 'unsafe-inline' for styles only; no script from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
_SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def one_line(text: Any) -> str:
    s = text if isinstance(text, str) else str(text)
    return " ".join(s.split())[:500]


class _Guard:
    """The ASGI layer around the routes: request metrics, security headers, and the last word on
    exceptions (the handlers above answer the expected ones)."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status, started = time.perf_counter(), 500, False
        path = scope.get("path", "")

        async def send_wrapped(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                headers = MutableHeaders(scope=message)
                for k, v in _SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
                if not path.startswith("/docs"):  # Swagger UI loads from FastAPI's CDN
                    headers.setdefault("content-security-policy", CSP)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapped)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), path)
            status = 500
            if not started:
                await JSONResponse({"detail": "internal error (the server's log has the details)"}, status_code=500)(scope, receive, send_wrapped)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            # an event stream lasts as long as the dashboard stays open: counted, kept out of the latencies
            seconds = None if route == "/api/events" else time.perf_counter() - t0
            self.state.metrics.observe(scope.get("method", ""), route, status, seconds)
            if status == 500:
                self.state.server_errors += 1
                self.state.metrics.server_errors.inc()


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.detail)
    return JSONResponse({"detail": one_line(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    """The first problem, one line naming the parameter; the input itself is never echoed."""
    errors = exc.errors()
    e = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in e.get("loc", ())]
    where = ".".join(loc[1:]) or (loc[0] if loc else "request")
    kind = f" ({loc[0]})" if len(loc) > 1 else ""
    more = f" ({len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return JSONResponse({"detail": one_line(f"{where}{kind}: {e.get('msg', 'invalid')}{more}")}, status_code=422)


async def _database_down(request: Request, exc: sa.exc.DBAPIError) -> Response:
    """The database is unreachable (PostgreSQL restarting): 503, so a worker retries its batch later."""
    if not exc.connection_invalidated and not isinstance(exc, sa.exc.OperationalError):
        raise exc  # a bug, not an outage: the guard logs it and answers 500
    log.warning("%s %s: database unavailable (%s)", request.method, request.url.path, one_line(exc.orig)[:200])
    return JSONResponse({"detail": "database unavailable: try again shortly"}, status_code=503, headers={"Retry-After": "5"})


async def _lrfer_error(request: Request, exc: LrferError) -> Response:
    return JSONResponse({"detail": one_line(str(exc))}, status_code=400)


def _plotly_js() -> Path:
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


def _add_dashboard(app: FastAPI) -> None:
    index = DASHBOARD / "index.html"
    plotly = _plotly_js()
    # found, not imported: the package's own code (a doc generator for other frameworks) is not needed
    swagger = Path(importlib.util.find_spec("swagger_ui").submodule_search_locations[0]) / "static"

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        # the page itself holds no data: it asks the API, which checks the session
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/swagger/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> FileResponse:
        # /docs's Swagger UI 5 (OpenAPI 3.1), from the installed swagger-ui-py: the two files it needs, nothing else
        if name not in ("swagger-ui-bundle.js", "swagger-ui.css"):
            raise StarletteHTTPException(404, f"no such file: {name}")
        media = "text/javascript" if name.endswith(".js") else "text/css"
        return FileResponse(swagger / name, media_type=media, headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=DASHBOARD), name="static")


def create_app(service, *, secure_cookies: bool = False, limiter: LoginLimiter | None = None) -> FastAPI:
    """The API, ``/metrics`` and the dashboard around a running :class:`~lrfer.serve.service.Service`.

    ``secure_cookies``: mark the session cookie Secure even when the request looks like plain http
    (behind a TLS proxy that does not send X-Forwarded-Proto)."""
    app = FastAPI(
        title="lrfer serve",
        summary="Facial-expression monitoring of camera feeds: mood timelines, alerts, and the API behind the dashboard.",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by api_system behind a login
    )
    app.state.service = service
    app.state.secure_cookies = secure_cookies
    app.state.limiter = limiter or LoginLimiter()
    app.state.metrics = Metrics(service)
    app.state.server_errors = 0
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(LrferError, _lrfer_error)
    app.add_exception_handler(sa.exc.DBAPIError, _database_down)
    for module in (api_system, api_auth, api_cameras, api_data, api_alerts, api_ingest):
        app.include_router(module.router)
    _add_dashboard(app)
    app.add_middleware(_Guard, state=app.state)
    return app


class Server(uvicorn.Server):
    """uvicorn's server that ends the live event streams first when asked to stop (else it would
    wait for every open dashboard's SSE response to end), so SIGTERM and ``stop()`` finish."""

    def __init__(self, config: uvicorn.Config, hub):
        super().__init__(config)
        self.hub = hub

    def handle_exit(self, sig, frame) -> None:
        # Not uvicorn's own: it records the signal and raises it again once the server is down,
        # which kills the process (SIGTERM's default action) before the runner has stopped the
        # cameras and written the recorder's queue. Here the runner stops everything and returns.
        self.hub.close()
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: do not wait for open requests
        self.should_exit = True

    def stop(self) -> None:
        self.hub.close()
        self.should_exit = True


def make_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, **kwargs) -> Server:
    """A :class:`Server` for ``app`` (``kwargs`` go to ``uvicorn.Config``: ``log_level``, ``proxy_headers``...)."""
    kwargs.setdefault("log_level", "warning")
    kwargs.setdefault("timeout_graceful_shutdown", 10)
    config = uvicorn.Config(app, host=host, port=port, **kwargs)
    return Server(config, app.state.service.hub)
