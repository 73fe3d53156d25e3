"""The API of a real ``lrfer serve`` (uvicorn on loopback, a real Service) on SQLite and on a real
PostgreSQL: who may call what, bad input, the alert lifecycle, ingest idempotency, and no 500."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

from lrfer.serve.auth import LoginLimiter, require_admin, require_user, require_worker
from lrfer.serve.config import Camera, Reminders, ServeConfig
from lrfer.serve.records import AlertEvent

from ._live import PASSWORDS, REPO, LiveServer

T0 = 1_700_000_000.0
# Routes that answer without a login (the dashboard's page and scripts hold no data).
PUBLIC = {("GET", "/api/health"), ("POST", "/api/login"), ("GET", "/"), ("GET", "/static/plotly.min.js"), ("GET", "/static/swagger/{name}")}
ADMIN_ONLY = {
    ("POST", "/api/cameras"),
    ("PUT", "/api/cameras/{camera_id}"),
    ("DELETE", "/api/cameras/{camera_id}"),
    ("GET", "/api/export.csv"),
    ("DELETE", "/api/observations"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("PUT", "/api/users/{username}"),
    ("DELETE", "/api/users/{username}"),
    ("GET", "/api/tokens"),
    ("POST", "/api/tokens"),
    ("DELETE", "/api/tokens/{token_id}"),
    ("GET", "/api/audit"),
    ("POST", "/api/rules"),
    ("PUT", "/api/rules/{name}"),
    ("DELETE", "/api/rules/{name}"),
}
WORKER_ONLY = {("POST", "/api/ingest")}
PATH_VALUES = {"camera_id": "lounge", "alert_id": "1", "username": "carol", "token_id": "1", "name": "swagger-ui.css"}


def _config(db: str, data_dir: str, **privacy) -> ServeConfig:
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir, cfg.server.max_upload_mb = db, data_dir, 0.5
    cfg.privacy = cfg.privacy.model_copy(update=privacy)
    # the file camera runs for the snapshot test; rules stay at their defaults (no alert from 5 s of video)
    cfg.cameras = [Camera(id="lounge", name="Lounge", url=str(REPO / "examples" / "far_scene.mp4"), loop=True, fps=2)]
    cfg.reminders = Reminders(minutes=0.05, times=2)  # every 3 s, twice: the reminder test waits seconds, not minutes
    return cfg


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    """One running service per database for the module's tests (each test leaves it as it found it)."""
    tmp = tmp_path_factory.mktemp(f"api-{request.param}")
    if request.param == "sqlite":
        db, cleanup = f"sqlite:///{tmp / 'lrfer.sqlite3'}", None
    else:
        cleanup = request.getfixturevalue("postgres").database()
        db = cleanup.__enter__()
    srv = LiveServer(_config(db, str(tmp))).start()
    try:
        srv.add_user("alice", "admin")
        srv.add_user("bob", "staff")
        srv.admin, srv.staff, srv.anon = srv.login("alice"), srv.login("bob"), srv.client()
        yield srv
    finally:
        for c in ("admin", "staff", "anon"):
            getattr(srv, c, httpx.Client()).close()
        srv.stop()
        if cleanup is not None:
            cleanup.__exit__(None, None, None)
    assert srv.app.state.server_errors == 0


@pytest.fixture(autouse=True)
def no_500(request):
    """No request of any test answers 500 (the app's guard counts them)."""
    if "site" not in request.fixturenames:
        yield
        return
    site = request.getfixturevalue("site")
    before = site.app.state.server_errors
    yield
    assert site.app.state.server_errors == before, "a request answered 500 (see the log)"


def _roles(route: APIRoute) -> set:
    calls, todo = set(), [route.dependant]
    while todo:
        d = todo.pop()
        calls.add(d.call)
        todo.extend(d.dependencies)
    return calls & {require_user, require_admin, require_worker}


def _flat(routes):
    """The routes, with those of included routers (FastAPI >= 0.16x keeps them inside an included-router
    object; the routers here have no prefix, so their paths are the app's)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield r


def _endpoints(app):
    for r in _flat(app.routes):
        if isinstance(r, Mount):
            assert r.path == "/static", f"unexpected mount {r.path}"
            continue
        assert isinstance(r, (APIRoute, Route)), r
        for method in sorted(r.methods - {"HEAD"}):
            yield method, r.path, r


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    url = re.sub(r"{(\w+)}", lambda m: PATH_VALUES[m.group(1)], path)
    params = {"start": "0", "end": "1", "camera": "lounge"} if "observations" in path or "tracks" in path else None
    return client.request(method, url, params=params, json={} if method in ("POST", "PUT") else None)


def test_every_route_refuses_anonymous_and_wrong_roles(site):
    worker, _ = site.add_token("worker")
    scoped = site.admin.post("/api/tokens", json={"name": "scoped", "role": "worker", "site": "b", "cameras": ["lounge"]}).json()["token"]
    integration, _ = site.add_token("integration")
    seen = set()
    with site.bearer(worker) as w, site.bearer(scoped) as ws, site.bearer(integration) as integ:
        for method, path, route in _endpoints(site.app):
            seen.add((method, path))
            if (method, path) in PUBLIC:
                continue
            roles = _roles(route) if isinstance(route, APIRoute) else set()
            assert roles, f"{method} {path} has no require_* dependency"
            assert (require_admin in roles) == ((method, path) in ADMIN_ONLY), f"{method} {path}: admin-only is {require_admin in roles}"
            assert (require_worker in roles) == ((method, path) in WORKER_ONLY), f"{method} {path}"
            r = _call(site.anon, method, path)
            assert r.status_code == 401, f"anonymous {method} {path} -> {r.status_code} {r.text}"
            assert r.json()["detail"] and "\n" not in r.json()["detail"]
            if (method, path) in ADMIN_ONLY | WORKER_ONLY:
                for who, client in (("staff", site.staff), ("integration", integ)):
                    r = _call(client, method, path)
                    assert r.status_code == 403, f"{who} {method} {path} -> {r.status_code} {r.text}"
            if (method, path) not in WORKER_ONLY:
                for who, client in (("worker", w), ("scoped worker", ws)):
                    r = _call(client, method, path)
                    assert r.status_code == 403, f"{who} token {method} {path} -> {r.status_code} {r.text}"
    assert PUBLIC | ADMIN_ONLY | WORKER_ONLY <= seen  # the lists name real routes
    assert site.anon.get("/api/health").status_code == 200
    assert site.anon.get("/docs").status_code == 401 and site.staff.get("/openapi.json").status_code == 200


def test_session_cookie_and_csrf(site):
    c = site.client()
    r = c.post("/api/login", json={"username": "bob", "password": PASSWORDS["bob"]})
    cookies = "\n".join(r.headers.get_list("set-cookie"))
    session = next(line for line in r.headers.get_list("set-cookie") if line.startswith("lrfer_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict") and "Path=/" in session
    assert "Secure" not in cookies  # plain http on loopback; https (or the proxy's X-Forwarded-Proto) turns it on
    alert = site.service.store.add_alert(AlertEvent("lounge", "", None, "distress", T0, "csrf test"))
    # a cookie alone cannot change anything: another site's form could send the cookie, never the header
    r = c.post(f"/api/alerts/{alert['id']}/acknowledge", json={"note": "x"})
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    assert site.service.store.get_alert(alert["id"])["state"] == "open"
    c.headers["X-CSRF-Token"] = c.cookies["lrfer_csrf"]
    assert c.post(f"/api/alerts/{alert['id']}/resolve", json={"note": "csrf ok"}).status_code == 200
    assert c.post("/api/logout").status_code == 200
    assert c.get("/api/me").status_code == 401  # the session is gone from the database, not just the cookie
    c.close()


def test_login_rate_limit(site):
    site.app.state.limiter = LoginLimiter(max_failures=5, window=300)
    try:
        with site.client() as c:
            for _ in range(5):
                assert c.post("/api/login", json={"username": "bob", "password": "wrong-guess"}).status_code == 401
            r = c.post("/api/login", json={"username": "bob", "password": PASSWORDS["bob"]})
            assert r.status_code == 429 and 0 < int(r.headers["Retry-After"]) <= 300
            assert "try again" in r.json()["detail"]
            # the same IP is limited for every name (guessing across accounts)
            assert c.post("/api/login", json={"username": "alice", "password": PASSWORDS["alice"]}).status_code == 429
        actions = [a["action"] for a in site.service.store.list_audit(20)]
        assert actions.count("login.failed") >= 5
    finally:
        site.app.state.limiter = LoginLimiter()


def test_revoked_token_refused_at_once(site):
    r = site.admin.post("/api/tokens", json={"name": "grafana", "role": "integration"})
    assert r.status_code == 201
    token, token_id = r.json()["token"], r.json()["id"]
    with site.bearer(token) as c:
        assert c.get("/api/cameras").status_code == 200
        assert c.post("/api/alerts/999999/acknowledge", json={}).status_code == 404  # bearer: no CSRF header needed
        listed = site.admin.get("/api/tokens").text
        assert token not in listed and "hash" not in listed
        assert site.admin.delete(f"/api/tokens/{token_id}").status_code == 200
        r = c.get("/api/cameras")
        assert r.status_code == 401
    assert site.admin.delete(f"/api/tokens/{token_id}").status_code == 404


def test_password_never_returned_or_logged(site, caplog):
    caplog.set_level(logging.DEBUG)
    secrets_ = ["carol-First-pass-1", "carol-Second-pass-2", "carol-Wrong-pass-3"]
    bodies = []
    r = site.admin.post("/api/users", json={"username": "carol", "password": secrets_[0], "role": "staff"})
    assert r.status_code == 201
    bodies.append(r.text)
    r = site.admin.post("/api/users", json={"username": "dave", "password": "short", "role": "staff"})
    assert r.status_code == 422 and "too short" in r.json()["detail"]
    bodies.append(r.text)
    bodies.append(site.admin.post("/api/users", json={"username": "dave", "password": 987654321987}).text)
    with site.client() as c:
        bodies.append(c.post("/api/login", json={"username": "carol", "password": secrets_[2]}).text)
        c.post("/api/login", json={"username": "typed-a-Password-here", "password": "x"})  # not recorded anywhere
        r = c.post("/api/login", json={"username": "carol", "password": secrets_[0]})
        assert r.status_code == 200
        bodies.append(r.text)
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        bodies.append(c.get("/api/me").text)
        r = site.admin.put("/api/users/carol", json={"password": secrets_[1]})
        assert r.status_code == 200
        bodies.append(r.text)
        assert c.get("/api/me").status_code == 401  # a new password ends the old sessions
    token = site.admin.post("/api/tokens", json={"name": "t", "role": "worker"}).json()["token"]
    for path in ("/api/users", "/api/audit?limit=1000", "/api/tokens"):
        bodies.append(site.admin.get(path).text)
    text = "\n".join(bodies)
    for s in secrets_ + ["987654321987"]:
        assert s not in text, f"{s} in a response"
        assert s not in caplog.text, f"{s} in the log"
    assert "$argon2" not in text and token not in caplog.text
    assert "typed-a-Password-here" not in text + caplog.text
    assert site.admin.delete("/api/users/carol").status_code == 200


def test_admins_cannot_lock_themselves_out(site):
    for r in (
        site.admin.delete("/api/users/alice"),
        site.admin.put("/api/users/alice", json={"disabled": True}),
        site.admin.put("/api/users/alice", json={"role": "staff"}),
    ):
        assert r.status_code == 409 and r.json()["detail"]
    assert site.admin.put("/api/users/alice", json={"role": "owner"}).status_code == 422
    assert site.admin.delete("/api/users/nobody").status_code == 404
    assert site.admin.get("/api/me").json()["role"] == "admin"


def test_bad_input_answers_one_line(site):
    big = b"\xff" * (600 * 1024)  # above max_upload_mb = 0.5
    r = site.staff.post("/api/analyze", files={"image": ("big.jpg", big, "image/jpeg")})
    assert r.status_code == 413 and "max_upload_mb" in r.json()["detail"]

    def chunks():  # no Content-Length: refused while reading
        for _ in range(20):
            yield b"\0" * 65536

    r = site.staff.post("/api/analyze", content=chunks(), headers={"Content-Type": "image/png"})
    assert r.status_code == 413
    r = site.staff.post("/api/analyze", files={"image": ("x.png", b"\x89PNG\r\n\x1a\n not really", "image/png")})
    assert r.status_code == 400 and r.json()["detail"].startswith("image: ") and "\n" not in r.json()["detail"]
    assert site.staff.post("/api/analyze", content=b"", headers={"Content-Type": "image/png"}).status_code == 400
    r = site.staff.post("/api/analyze", files={"image": open(REPO / "examples" / "far_scene.png", "rb")})
    assert r.status_code == 200 and r.json()["width"] == 640 and len(r.json()["faces"]) >= 1
    assert set(r.json()["faces"][0]["probabilities"]) >= {"happy", "sad", "neutral"}

    for path in ("/api/cameras/nope", "/api/cameras/nope/status", "/api/cameras/nope/snapshot.jpg", "/api/timeline?camera=nope", "/api/alerts/424242"):
        r = site.staff.get(path)
        assert r.status_code == 404 and r.json()["detail"], path
    assert site.staff.post("/api/alerts/424242/acknowledge", json={"note": "?"}).status_code == 404
    assert site.admin.put("/api/cameras/nope", json={"url": "x"}).status_code == 404
    for body, key in (({"id": "cam2", "url": "x.mp4", "fps": -2}, "fps"), ({"id": "cam2", "url": "x.mp4", "colour": 1}, "colour"),
                      ({"id": "Bad Id", "url": "x.mp4"}, "id"), ({"id": "cam2"}, "url"),
                      ({"id": "cam2", "url": "x", "masks": [[[0, 0], [2, 0], [0, 1]]]}, "masks")):  # fmt: skip
        r = site.admin.post("/api/cameras", json=body)
        assert r.status_code == 422, body
        detail = r.json()["detail"]
        assert detail.startswith(f"camera: {key}") and "\n" not in detail, detail
    assert site.admin.post("/api/cameras", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422
    r = site.staff.get("/api/timeline", params={"start": "yesterday"})
    assert r.status_code == 422 and r.json()["detail"].startswith("start:")
    assert site.staff.get("/api/timeline", params={"start": "10", "end": "5"}).status_code == 422
    assert site.staff.get("/api/timeline", params={"start": "0", "end": "86400", "bucket": "1"}).status_code == 422
    assert site.staff.get("/api/alerts", params={"state": "lost"}).status_code == 422
    assert site.staff.get("/api/nowhere").status_code == 404


def _batch(camera: str, tracks: int, buckets: int, t0: float = T0) -> dict:
    obs = []
    for k in range(tracks):
        for i in range(buckets):
            sad = 0.8 if k == 0 else 0.1
            obs.append({"camera_id": camera, "track_key": f"run-{k}", "zone": "", "start": t0 + 5 * i, "seconds": 5.0, "frames": 10, "certain": 8,
                        "probs": {"sad": sad, "happy": 0.9 - sad, "neutral": 0.1}, "face_px": 24.0, "score": 0.9})  # fmt: skip
    status = [{"camera_id": camera, "state": "live", "since": t0, "fps": 2.0, "faces_now": tracks, "frames": 100}]
    return {"batch_id": uuid.uuid4().hex, "observations": obs, "status": status}


def test_ingest_is_idempotent_and_feeds_the_views(site):
    worker, _ = site.add_token("worker")
    cam = f"remote-{uuid.uuid4().hex[:6]}"
    site.admin.post("/api/cameras", json={"id": cam, "url": "rtsp://user:pw123@10.0.0.9/stream", "enabled": False}).raise_for_status()
    batch = _batch(cam, tracks=3, buckets=12)
    with site.bearer(worker) as w:
        r1, r2 = w.post("/api/ingest", json=batch), w.post("/api/ingest", json=batch)
        assert r1.json() == {"accepted": 36, "duplicate": False} and r2.json() == {"accepted": 0, "duplicate": True}
        bad = {**batch, "batch_id": uuid.uuid4().hex, "observations": [{**batch["observations"][0], "frames": -1}]}
        r = w.post("/api/ingest", json=bad)
        assert r.status_code == 422 and r.json()["detail"].startswith("batch: observations[0].frames")
        assert w.post("/api/ingest", content=b"[", headers={"Content-Type": "application/json"}).status_code == 400
    csv_text = site.admin.get("/api/export.csv", params={"camera": cam, "start": T0 - 10, "end": T0 + 3600}).text
    lines = csv_text.strip().splitlines()
    assert len(lines) == 1 + 36 and "p_sad" in lines[0] and "start_iso" in lines[0]
    assert site.staff.get(f"/api/cameras/{cam}").json()["url"] == "rtsp://user:***@10.0.0.9/stream"
    assert site.admin.get(f"/api/cameras/{cam}").json()["url"].endswith("pw123@10.0.0.9/stream")
    assert site.staff.get(f"/api/cameras/{cam}/status").json()["state"] == "live"

    tl = site.staff.get("/api/timeline", params={"camera": cam, "start": T0, "end": T0 + 60, "bucket": 5}).json()
    assert len(tl["points"]) == 12 and tl["points"][0]["tracks"] == 3 and tl["points"][0]["time"].endswith("Z")
    assert tl["points"][0]["shares"]["sad"] == pytest.approx((0.8 + 0.1 + 0.1) / 3, abs=1e-3)
    tracks = site.staff.get("/api/tracks", params={"camera": cam, "start": T0, "end": T0 + 60}).json()
    assert len(tracks) == 3 and max(t["seconds"].get("sad", 0) for t in tracks) == pytest.approx(60.0)

    r = site.admin.delete("/api/observations", params={"camera": cam, "start": T0, "end": T0 + 30})
    assert r.json()["deleted"] == 18
    tl = site.staff.get("/api/timeline", params={"camera": cam, "start": T0, "end": T0 + 60, "bucket": 5}).json()
    assert len(tl["points"]) == 6
    assert site.admin.delete(f"/api/cameras/{cam}").status_code == 200
    actions = {(a["action"], a["target"]) for a in site.admin.get("/api/audit").json()}
    assert {("camera.add", cam), ("observations.delete", cam), ("export", cam), ("camera.delete", cam)} <= actions


def test_mood_through_the_day_folds_days_onto_local_hours(site):
    """GET /api/profile: two Mondays' 08:00 UTC observations are Berlin's 09:00 (UTC+1 in winter),
    over both days; a bad zone or day is one line, an unknown camera 404."""
    worker, _ = site.add_token("worker")
    cam = f"day-{uuid.uuid4().hex[:6]}"
    site.admin.post("/api/cameras", json={"id": cam, "url": "rtsp://10.0.0.9/stream", "enabled": False}).raise_for_status()
    monday = 1_767_600_000.0  # 2026-01-05 08:00 UTC
    with site.bearer(worker) as w:
        for day in (0, 7):
            w.post("/api/ingest", json=_batch(cam, tracks=3, buckets=12, t0=monday + day * 86400)).raise_for_status()
    q = {"camera": cam, "start": monday - 86400, "end": monday + 9 * 86400, "tz": "Europe/Berlin"}
    prof = site.staff.get("/api/profile", params=q).json()
    h9 = prof["hours"][9]
    assert len(prof["hours"]) == 24 and prof["tz"] == "Europe/Berlin" and prof["camera"] == cam
    assert h9["days"] == 2 and h9["tracks"] == 3 and h9["certain"] == 2 * 3 * 12 * 8
    assert h9["shares"]["sad"] == pytest.approx((0.8 + 0.1 + 0.1) / 3, abs=1e-3)
    assert all(h["shares"]["sad"] is None for h in prof["hours"] if h["hour"] != 9)
    assert site.staff.get("/api/profile", params={**q, "days": "tue,wed"}).json()["hours"][9]["days"] == 0
    r = site.staff.get("/api/profile", params={**q, "tz": "Mars/Olympus"})
    assert r.status_code == 422 and r.json()["detail"].startswith("tz: unknown time zone 'Mars/Olympus'")
    r = site.staff.get("/api/profile", params={**q, "days": "funday"})
    assert r.status_code == 422 and r.json()["detail"].startswith("days: unknown day funday")
    assert site.staff.get("/api/profile", params={"camera": "nope"}).status_code == 404
    assert site.anon.get("/api/profile").status_code == 401
    assert site.admin.delete(f"/api/cameras/{cam}").status_code == 200


def test_face_sizes_say_how_big_the_faces_a_camera_sees_are(site):
    """GET /api/cameras/{id}/faces: frames per size band, counted by the database, and the advice
    when most faces are small."""
    worker, _ = site.add_token("worker")
    cam = f"far-{uuid.uuid4().hex[:6]}"
    site.admin.post("/api/cameras", json={"id": cam, "url": "rtsp://10.0.0.9/stream", "enabled": False}).raise_for_status()
    batch = _batch(cam, tracks=3, buckets=4)
    for ob in batch["observations"]:  # tracks of 14, 20 and 40 px faces; the 14 px one never certain
        ob["face_px"] = {"run-0": 14.0, "run-1": 20.0, "run-2": 40.0}[ob["track_key"]]
        ob["certain"] = 0 if ob["face_px"] < 16 else ob["certain"]
        ob["probs"] = None if ob["face_px"] < 16 else ob["probs"]
    with site.bearer(worker) as w:
        w.post("/api/ingest", json=batch).raise_for_status()
    got = site.staff.get(f"/api/cameras/{cam}/faces", params={"start": T0, "end": T0 + 60}).json()
    bands = {b["label"]: b for b in got["bands"]}
    assert list(bands) == ["under 16 px", "16-23 px", "24-35 px", "36 px and over"] and got["frames"] == 120
    assert bands["under 16 px"]["share"] == pytest.approx(1 / 3, abs=1e-3) and bands["under 16 px"]["certain_share"] == 0
    assert bands["16-23 px"]["tracks"] == 1 and bands["16-23 px"]["certain_share"] == pytest.approx(0.8)
    assert bands["24-35 px"]["frames"] == 0 and bands["24-35 px"]["share"] == 0 and bands["36 px and over"]["frames"] == 40
    assert got["small_share"] == pytest.approx(2 / 3, abs=1e-3) and got["small_px"] == 24 and "under 24 px" in got["advice"]
    empty = site.staff.get(f"/api/cameras/{cam}/faces", params={"start": T0 + 3600, "end": T0 + 7200}).json()
    assert empty["frames"] == 0 and empty["advice"] is None and empty["small_share"] is None
    assert site.staff.get("/api/cameras/nope/faces").status_code == 404
    assert site.anon.get(f"/api/cameras/{cam}/faces").status_code == 401
    assert site.admin.delete(f"/api/cameras/{cam}").status_code == 200


def test_alert_lifecycle_and_live_events(site):
    alert = site.service.store.add_alert(AlertEvent("lounge", "", "run-1", "distress", T0, "resident looked distressed for 2 min", {"share": 0.7}))
    got: list = []

    def listen(ready: threading.Event):
        c = site.login("bob")
        try:
            with c.stream("GET", "/api/events") as r:
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                for line in r.iter_lines():
                    if line.startswith(": connected"):
                        ready.set()
                    if line.startswith("data:") and '"alert.acknowledged"' in line:
                        got.append(json.loads(line[5:]))
                        return
        finally:
            c.close()

    ready = threading.Event()
    t = threading.Thread(target=listen, args=(ready,), daemon=True)
    t.start()
    assert ready.wait(10)
    r = site.staff.post(f"/api/alerts/{alert['id']}/acknowledge", json={"note": "sat with her, she is fine"})
    assert r.status_code == 200
    t.join(10)
    assert got and got[0]["alert"]["id"] == alert["id"]
    row = site.admin.get(f"/api/alerts/{alert['id']}").json()
    assert row["state"] == "acknowledged" and row["acknowledged_by"] == "bob" and row["note"] == "sat with her, she is fine"
    assert row["opened_at_iso"].endswith("Z")
    assert [a["id"] for a in site.staff.get("/api/alerts", params={"state": "acknowledged", "camera": "lounge"}).json()].count(alert["id"]) == 1
    assert site.staff.post(f"/api/alerts/{alert['id']}/resolve").json()["state"] == "resolved"
    assert site.staff.post(f"/api/alerts/{alert['id']}/acknowledge", json={"note": "x" * 3000}).status_code == 422
    assert ("alert.acknowledge", str(alert["id"])) in {(a["action"], a["target"]) for a in site.admin.get("/api/audit").json()}


def test_an_alert_nobody_acknowledges_is_sent_again(site):
    """An open alert is sent again every ``reminders.minutes`` (3 s here), ``times`` times (2), to the
    live dashboards (SSE) as to webhooks and MQTT; an acknowledged one is not."""
    store = site.service.store
    waiting = store.add_alert(AlertEvent("lounge", "", "r-1", "distress", time.time(), "looked distressed", {"share": 0.8}))
    seen = store.add_alert(AlertEvent("lounge", "", "r-2", "distress", time.time(), "looked distressed", {"share": 0.8}))
    assert site.staff.post(f"/api/alerts/{seen['id']}/acknowledge", json={}).status_code == 200
    reminders: list = []
    c = site.login("bob")
    try:
        with c.stream("GET", "/api/events", timeout=20) as r:
            deadline = time.monotonic() + 15
            for line in r.iter_lines():
                if line.startswith("data:") and '"alert.reminder"' in line:
                    alert = json.loads(line[5:])["alert"]
                    if alert["id"] in (waiting["id"], seen["id"]):
                        reminders.append((alert["id"], alert["reminders"]))
                if len(reminders) == 2 or time.monotonic() > deadline:
                    break
    finally:
        c.close()
    assert reminders == [(waiting["id"], 1), (waiting["id"], 2)]
    time.sleep(4)  # a third interval: no third reminder
    row = site.staff.get(f"/api/alerts/{waiting['id']}").json()
    assert row["reminders"] == 2 and row["state"] == "open"
    assert site.staff.get(f"/api/alerts/{seen['id']}").json()["reminders"] == 0
    site.staff.post(f"/api/alerts/{waiting['id']}/resolve", json={})
    # while its camera is muted, an open alert is not sent again
    quiet = store.add_alert(AlertEvent("lounge", "", "r-3", "distress", time.time() - 3600, "looked distressed", {"share": 0.8}))
    site.service.engine.mute("lounge", time.time() + 60)
    try:
        assert quiet["id"] not in [a["id"] for a in site.service.remind(time.time())]
    finally:
        site.service.engine.mute("lounge", None)
    site.staff.post(f"/api/alerts/{quiet['id']}/resolve", json={})


def test_staff_mute_a_camera_for_a_while(site):
    r = site.staff.post("/api/cameras/lounge/mute", json={"minutes": 30, "note": "music in the lounge"})
    assert r.status_code == 200 and r.json()["by"] == "bob" and r.json()["until_iso"].endswith("Z")
    until = r.json()["until"]
    assert 29 * 60 < until - time.time() <= 30 * 60
    cam = site.staff.get("/api/cameras/lounge").json()
    assert cam["muted"] == {"until": until, "by": "bob", "note": "music in the lounge", "until_iso": r.json()["until_iso"]}
    assert site.service.engine._muted["lounge"] == until  # the rules see it at once
    assert site.service.store.active_mutes(time.time())["lounge"]["until"] == until  # and a restart keeps it
    assert site.staff.post("/api/cameras/lounge/mute", json={"minutes": 0}).status_code == 422
    assert site.staff.post("/api/cameras/lounge/mute", json={"minutes": 60, "why": "x"}).status_code == 422
    assert site.staff.post("/api/cameras/nowhere/mute", json={}).status_code == 404
    assert site.anon.post("/api/cameras/lounge/mute", json={}).status_code == 401
    assert site.staff.delete("/api/cameras/lounge/mute").json() == {"unmuted": "lounge"}
    assert site.staff.delete("/api/cameras/lounge/mute").status_code == 404  # not muted
    assert "lounge" not in site.service.engine._muted and site.staff.get("/api/cameras/lounge").json()["muted"] is None
    actions = [(a["action"], a["target"]) for a in site.admin.get("/api/audit").json()]
    assert ("camera.mute", "lounge") in actions and ("camera.unmute", "lounge") in actions


def test_staff_verdicts_say_how_often_alerts_are_right(site):
    """Acknowledging or resolving may say whether the alert was right; the summary and /metrics count it."""
    now = time.time()
    before = site.staff.get("/api/alerts/summary", params={"camera": "lounge"}).json()
    ids = [site.service.store.add_alert(AlertEvent("lounge", "", f"v-{i}", "distress", now - 60 * i, "looked distressed", {"share": 0.8}))["id"] for i in range(3)]
    old = site.service.store.add_alert(AlertEvent("lounge", "", "v-old", "distress", now - 30 * 86400, "a month ago", {}))["id"]
    assert site.staff.post(f"/api/alerts/{ids[0]}/acknowledge", json={"note": "she was crying", "verdict": "real"}).json()["verdict"] == "real"
    r = site.staff.post(f"/api/alerts/{ids[1]}/resolve", json={"verdict": "false_alarm"}).json()
    assert r["state"] == "resolved" and r["verdict"] == "false_alarm"
    site.staff.post(f"/api/alerts/{old}/resolve", json={"verdict": "false_alarm"})  # outside the week: not counted
    assert site.staff.post(f"/api/alerts/{ids[2]}/resolve", json={"verdict": "maybe"}).status_code == 422
    assert site.staff.get(f"/api/alerts/{ids[2]}").json()["state"] == "open"  # the bad request changed nothing
    after = site.staff.get("/api/alerts/summary", params={"camera": "lounge"}).json()
    delta = {k: after[k] - before[k] for k in ("alerts", "real", "false_alarm", "not_judged")}
    assert delta == {"alerts": 3, "real": 1, "false_alarm": 1, "not_judged": 1}
    assert 0 < after["false_alarm_share"] < 1
    rule = next(g for g in after["by_rule"] if g["rule"] == "distress")
    assert rule["camera_id"] == "lounge" and rule["alerts"] >= 3
    assert site.staff.get("/api/alerts/summary", params={"days": 0}).status_code == 400
    assert site.staff.get("/api/alerts/summary", params={"camera": "nowhere"}).status_code == 404
    audit = {(a["action"], a["target"]): a for a in site.admin.get("/api/audit").json()}
    assert "false_alarm" in json.dumps(audit[("alert.resolve", str(ids[1]))])
    integration, _ = site.add_token("integration")
    with site.bearer(integration) as c:
        assert 'lrfer_alerts_verdict{camera="lounge",rule="distress",verdict="false_alarm"}' in c.get("/metrics").text


def test_metrics_health_and_snapshot(site):
    integration, _ = site.add_token("integration")
    with site.bearer(integration) as c:
        text = c.get("/metrics").text
        assert c.get("/api/ready").json() == {"ok": True, "database": "up"}
    assert 'lrfer_camera_state{camera="lounge",state=' in text and "lrfer_alerts_open" in text
    assert re.search(r'lrfer_http_requests_total\{method="GET",route="/api/cameras",status="200"\} [1-9]', text)
    assert "lrfer_http_request_seconds_bucket" in text
    # the file camera analyses frames; its snapshot is blurred, even for an admin asking ?blur=0 (privacy.blur_snapshots)
    for _ in range(200):
        r = site.staff.get("/api/cameras/lounge/snapshot.jpg")
        if r.status_code == 200:
            break
        threading.Event().wait(0.1)
    assert r.status_code == 200 and r.content[:2] == b"\xff\xd8" and r.headers["X-Lrfer-Blurred"] == "1"
    assert r.headers["Cache-Control"] == "no-store"
    assert site.admin.get("/api/cameras/lounge/snapshot.jpg", params={"blur": 0}).headers["X-Lrfer-Blurred"] == "1"
    r = site.anon.get("/")
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]


def test_aggregate_only_hides_people(tmp_path):
    cfg = _config(f"sqlite:///{tmp_path / 'shop.sqlite3'}", str(tmp_path), aggregate_only=True, min_people=3, blur_snapshots=False)
    cfg.cameras = []
    srv = LiveServer(cfg).start()
    try:
        srv.add_user("alice", "admin")
        worker, _ = srv.add_token("worker")
        srv.service.store.put_camera(Camera(id="till", url="rtsp://shop/till", enabled=False))
        with srv.bearer(worker) as w:
            w.post("/api/ingest", json=_batch("till", tracks=2, buckets=2)).raise_for_status()
            w.post("/api/ingest", json=_batch("till", tracks=4, buckets=2, t0=T0 + 60)).raise_for_status()
            w.post("/api/ingest", json=_batch("till", tracks=2, buckets=2, t0=T0 + 3600)).raise_for_status()  # the next hour: 2 people
        a = srv.login("alice")
        try:
            tl = a.get("/api/timeline", params={"camera": "till", "start": T0, "end": T0 + 120, "bucket": 5}).json()
            shown = {p["t"] - T0: p["shares"]["sad"] for p in tl["points"]}
            assert shown[0] is None and shown[5] is None and shown[60] is not None and tl["aggregate_only"] is True
            hours = a.get("/api/profile", params={"camera": "till", "start": T0 - 7200, "end": T0 + 7200}).json()["hours"]
            seen = [h for h in hours if h["frames"]]
            assert len(seen) == 2 and all(h["hidden"] and h["shares"]["sad"] is None for h in seen if h["tracks"] < 3)
            assert any(h["shares"]["sad"] is not None for h in seen)  # the hour with 4 people is shown
            for path in ("/api/tracks?camera=till", "/api/export.csv?camera=till"):
                r = a.get(path)
                assert r.status_code == 403 and "aggregate-only" in r.json()["detail"]
            assert a.get("/api/me").json()["aggregate_only"] is True
        finally:
            a.close()
        assert srv.app.state.server_errors == 0
    finally:
        srv.stop()


def test_rules_made_on_the_dashboard(site):
    """Rules of the config file are read-only here; rules made through the API are stored, used by
    the alert engine at once, editable and deletable, and every change is audited."""
    listed = site.admin.get("/api/rules").json()
    assert listed and all(r["source"] == "config" for r in listed)
    in_file = listed[0]["name"]
    assert site.admin.put(f"/api/rules/{in_file}", json={"threshold": 0.5}).status_code == 409
    assert site.admin.post("/api/rules", json={"name": in_file}).status_code == 409
    bad = site.admin.post("/api/rules", json={"name": "lounge-calm", "threshold": 2})
    assert bad.status_code == 422 and "threshold" in bad.json()["detail"]
    r = site.admin.post("/api/rules", json={"name": "lounge-calm", "scope": "zone", "expressions": ["sad"], "threshold": 0.6, "cameras": ["lounge"]})
    assert r.status_code == 201 and r.json()["source"] == "dashboard"
    assert "lounge-calm" in {rule.name for rule in site.service.engine.rules}  # in force at once
    assert site.admin.put("/api/rules/lounge-calm", json={"scope": "zone", "expressions": ["sad", "fear"], "threshold": 0.65}).json()["threshold"] == 0.65
    assert {r["name"]: r for r in site.admin.get("/api/rules").json()}["lounge-calm"]["expressions"] == ["sad", "fear"]
    assert site.admin.put("/api/rules/nope", json={}).status_code == 404
    assert site.admin.delete("/api/rules/lounge-calm").json() == {"deleted": "lounge-calm"}
    assert "lounge-calm" not in {rule.name for rule in site.service.engine.rules}
    assert "lounge-calm" not in {r["name"] for r in site.admin.get("/api/rules").json()}
    actions = [a["action"] for a in site.admin.get("/api/audit").json()]
    assert {"rule.add", "rule.edit", "rule.delete"} <= set(actions)
