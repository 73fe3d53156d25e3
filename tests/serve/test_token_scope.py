"""Scoped worker tokens against a real ``lrfer serve`` (uvicorn on loopback) on SQLite and on a real
PostgreSQL: a token made for a site or a list of cameras writes those only; a batch naming another
camera is refused whole (403 naming it, audited, nothing stored); the worker token reads nothing;
tokens made before scopes existed keep writing anything. Then the worker's side: RemoteSink parks a
refused camera and sends the rest, and ``lrfer worker`` with a token for none of its cameras stops
with one line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid

import pytest

from lrfer.errors import LrferError
from lrfer.serve.config import Camera, ServeConfig
from lrfer.serve.records import Observation
from lrfer.serve.remote import RemoteSink, run_worker

from ._live import REPO, LiveServer
from ._util import wait_for

T0 = 1_700_000_000.0
SCENE_VIDEO = str(REPO / "examples" / "far_scene.mp4")


def _obs(camera: str, track: str = "run-1", i: int = 0) -> dict:
    return {"camera_id": camera, "track_key": track, "zone": "", "start": T0 + 5 * i, "seconds": 5.0, "frames": 10, "certain": 8,
            "probs": {"sad": 0.2, "happy": 0.7, "neutral": 0.1}, "face_px": 24.0, "score": 0.9}  # fmt: skip


def _batch(*cameras: str, buckets: int = 2) -> dict:
    obs = [_obs(c, i=i) for c in cameras for i in range(buckets)]
    status = [{"camera_id": c, "state": "live", "since": T0, "fps": 2.0, "faces_now": 1, "frames": 40} for c in cameras]
    return {"batch_id": uuid.uuid4().hex, "observations": obs, "status": status}


def _count(srv: LiveServer, camera: str) -> int:
    return len(list(srv.service.store.export_observations(camera, 0, 2e10)))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def srv(request, tmp_path_factory):
    """One running service per database, with no camera of its own running (the tests push theirs)."""
    tmp = tmp_path_factory.mktemp(f"scope-{request.param}")
    if request.param == "sqlite":
        db, cleanup = f"sqlite:///{tmp / 'lrfer.sqlite3'}", None
    else:
        cleanup = request.getfixturevalue("postgres").database()
        db = cleanup.__enter__()
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir = db, str(tmp)
    server = LiveServer(cfg).start()
    try:
        server.add_user("alice", "admin")
        server.admin = server.login("alice")
        yield server
    finally:
        server.admin.close()
        server.stop()
        if cleanup is not None:
            cleanup.__exit__(None, None, None)
    assert server.app.state.server_errors == 0


def _token(srv: LiveServer, **body) -> str:
    r = srv.admin.post("/api/tokens", json={"role": "worker", **body})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_a_site_token_writes_its_site_only(srv):
    tag = uuid.uuid4().hex[:6]
    site_b, hall, entrance = f"site-b-{tag}", f"hall-{tag}", f"entrance-{tag}"
    srv.admin.post("/api/cameras", json={"id": hall, "url": "rtsp://10.0.0.9/hall", "enabled": False}).raise_for_status()  # the main site's
    token = _token(srv, name=f"b-worker-{tag}", site=site_b)
    with srv.bearer(token) as w:
        r = w.post("/api/ingest", json=_batch(entrance))
        assert r.status_code == 200 and r.json() == {"accepted": 2, "duplicate": False}
        cam = srv.service.store.get_camera(entrance)
        assert cam["site"] == site_b and cam["url"] == f"remote://{site_b}"  # a new camera is registered under the token's site

        mixed = _batch(entrance, hall)
        r = w.post("/api/ingest", json=mixed)
        assert r.status_code == 403, r.text
        detail = r.json()["detail"]
        assert r.json()["cameras"] == [hall] and hall in detail and f"site '{site_b}'" in detail and "\n" not in detail
        assert _count(srv, entrance) == 2 and _count(srv, hall) == 0  # refused whole: not even the allowed camera's part
        assert srv.service.statuses().get(hall) is None or srv.service.statuses()[hall].state != "live"
        # nothing of it was recorded, not even its batch id: the allowed part alone, under the same id, is stored
        alone = {**mixed, "observations": [o for o in mixed["observations"] if o["camera_id"] == entrance], "status": []}
        assert w.post("/api/ingest", json=alone).json() == {"accepted": 2, "duplicate": False}

    refused = [a for a in srv.service.store.list_audit(50) if a["action"] == "ingest.refused" and a["target"] == hall]
    assert len(refused) == 1 and refused[0]["actor"] == f"token:b-worker-{tag}"
    assert refused[0]["detail"]["batch_id"] == mixed["batch_id"] and refused[0]["detail"]["cameras"] == [hall] and refused[0]["detail"]["observations"] == 4
    assert 'lrfer_ingest_batches_total{result="refused"}' in srv.admin.get("/metrics").text


def test_a_camera_list_token_writes_those_cameras_only(srv):
    tag = uuid.uuid4().hex[:6]
    door, yard, other = f"door-{tag}", f"yard-{tag}", f"other-{tag}"
    token = _token(srv, name=f"door-only-{tag}", cameras=[door, yard])
    both = _token(srv, name=f"both-{tag}", site=f"s-{tag}", cameras=[door])
    with srv.bearer(token) as w, srv.bearer(both) as b:
        assert w.post("/api/ingest", json=_batch(door, yard)).json()["accepted"] == 4
        assert srv.service.store.get_camera(door)["site"] == f"door-only-{tag}"  # no site in its scope: the token's name, as before
        r = w.post("/api/ingest", json=_batch(other, door))
        assert r.status_code == 403 and r.json()["cameras"] == [other]
        r = w.post("/api/ingest", json={**_batch(door), "observations": []} | {"status": [{"camera_id": other, "state": "live", "since": T0}]})
        assert r.status_code == 403 and r.json()["cameras"] == [other]  # a status alone is writing too
        assert srv.service.store.get_camera(other) is None  # a refused batch registers no camera either
        # site and cameras together: the camera is listed, but it lives at another site
        r = b.post("/api/ingest", json=_batch(door))
        assert r.status_code == 403 and r.json()["cameras"] == [door] and "and cameras" in r.json()["detail"]
    assert _count(srv, door) == 2 and _count(srv, other) == 0


def test_a_worker_token_reads_and_administers_nothing(srv):
    token = _token(srv, name="reader?", cameras=["lounge"])
    with srv.bearer(token) as w:
        for method, path in (("GET", "/api/cameras"), ("GET", "/api/timeline"), ("GET", "/api/alerts"), ("GET", "/api/export.csv"),
                             ("GET", "/metrics"), ("GET", "/api/events"), ("GET", "/api/me"), ("GET", "/api/tokens"),
                             ("POST", "/api/tokens"), ("POST", "/api/cameras"), ("DELETE", "/api/observations"), ("POST", "/api/analyze")):  # fmt: skip
            r = w.request(method, path, params={"start": "0", "end": "1"}, json={"name": "x", "role": "admin"} if method == "POST" else None)
            assert r.status_code == 403 and "worker" in r.json()["detail"], f"{method} {path} -> {r.status_code} {r.text}"


def test_tokens_of_old_stay_unscoped(srv):
    old, _ = srv.add_token("worker", name="old-site")  # made as before: no site, no cameras
    listed = {t["id"]: t for t in srv.admin.get("/api/tokens").json()}
    assert [(t["site"], t["cameras"]) for t in listed.values() if t["name"] == "old-site"] == [(None, None)]
    with srv.bearer(old) as w:
        tag = uuid.uuid4().hex[:6]
        assert w.post("/api/ingest", json=_batch(f"a-{tag}", f"b-{tag}")).json()["accepted"] == 4


def test_token_scope_is_validated_in_one_line(srv):
    for body, key in (({"name": "x", "role": "integration", "site": "b"}, "worker tokens only"),
                      ({"name": "x", "cameras": []}, "cameras"), ({"name": "x", "cameras": ["Bad Id"]}, "cameras[0]"),
                      ({"name": "x", "site": "a/b"}, "site"), ({"name": "x", "cameras": "door"}, "cameras")):  # fmt: skip
        r = srv.admin.post("/api/tokens", json=body)
        assert r.status_code == 422, body
        assert r.json()["detail"].startswith("token: ") and key in r.json()["detail"] and "\n" not in r.json()["detail"], r.json()
    r = srv.admin.post("/api/tokens", json={"name": "scoped", "site": "site c", "cameras": ["door", "door", "attic"]})
    assert r.status_code == 201 and r.json()["site"] == "site c" and r.json()["cameras"] == ["attic", "door"]
    listed = srv.admin.get("/api/tokens").text
    assert r.json()["token"] not in listed and "hash" not in listed
    (added,) = [a for a in srv.service.store.list_audit(20) if a["action"] == "token.add" and a["target"] == "scoped"]
    assert added["detail"]["site"] == "site c" and added["detail"]["cameras"] == ["attic", "door"]


# --------------------------------------------------------------------------------- the worker
def test_remote_sink_parks_a_refused_camera_and_sends_the_rest(srv, tmp_path, caplog):
    tag = uuid.uuid4().hex[:6]
    mine, theirs = f"mine-{tag}", f"theirs-{tag}"
    token = _token(srv, name=f"w-{tag}", cameras=[mine])
    sink = RemoteSink(srv.url, token, tmp_path, flush_seconds=0.05)
    try:
        with caplog.at_level(logging.DEBUG, logger="lrfer.serve.remote"):
            sink([Observation.from_json(_obs(mine, i=i)) for i in range(3)] + [Observation.from_json(_obs(theirs, i=i)) for i in range(2)])
            assert wait_for(lambda: _count(srv, mine) == 3 and not sink.pending())
            assert sink.parked.keys() == {theirs}
            sink([Observation.from_json(_obs(mine, "run-2")), Observation.from_json(_obs(theirs, "run-2"))])  # the parked camera's are dropped
            assert wait_for(lambda: _count(srv, mine) == 4 and not sink.pending())
    finally:
        sink.close()
    assert _count(srv, theirs) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and theirs in errors[0] and "parked" in errors[0] and "may not write" in errors[0]
    refusals = [a for a in srv.service.store.list_audit(100) if a["action"] == "ingest.refused" and a["target"] == theirs]
    assert len(refusals) == 1  # asked once, never again
    (kept,) = [json.loads(p.read_text()) for p in (tmp_path / "rejected").glob("*.json")]  # its part, kept for a human
    assert {o["camera_id"] for o in kept["observations"]} == {theirs} and len(kept["observations"]) == 2


def test_a_403_naming_no_camera_is_rejected_like_a_401(srv, tmp_path, caplog):
    staff_token, _ = srv.add_token("staff")  # not a worker's: 403 "worker tokens only"
    sink = RemoteSink(srv.url, staff_token, tmp_path, flush_seconds=0.05)
    try:
        with caplog.at_level(logging.ERROR, logger="lrfer.serve.remote"):
            sink([Observation.from_json(_obs("cam1"))])
            assert wait_for(lambda: list((tmp_path / "rejected").glob("*.json")))
    finally:
        sink.close()
    assert sink.parked == {} and sink.rejected == 1 and "403" in caplog.text and "worker tokens only" in caplog.text


def test_run_worker_goes_on_with_the_cameras_it_may_write(srv, tmp_path, recognizer):
    tag = uuid.uuid4().hex[:6]
    mine, theirs = f"lobby-{tag}", f"office-{tag}"
    token = _token(srv, name=f"rw-{tag}", cameras=[mine])
    cams = [Camera(id=mine, url=SCENE_VIDEO, fps=5), Camera(id=theirs, url=SCENE_VIDEO, fps=5)]
    run_worker(srv.url, token, cams, spool_dir=tmp_path, speed=0, flush_seconds=0.05, bucket_seconds=3600, recognizer=lambda: recognizer)
    assert _count(srv, mine) == 3 and _count(srv, theirs) == 0
    assert srv.service.statuses()[mine].state == "finished"
    with pytest.raises(LrferError, match="refuses this token for every camera"):
        run_worker(srv.url, token, cams[1:], spool_dir=tmp_path / "2", speed=0, flush_seconds=0.05, bucket_seconds=3600, recognizer=lambda: recognizer)


def test_lrfer_worker_with_a_token_for_none_of_its_cameras_says_so_and_stops(tmp_path):
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir = f"sqlite:///{tmp_path / 'lrfer.sqlite3'}", str(tmp_path)
    srv = LiveServer(cfg).start()
    try:
        srv.add_user("alice", "admin")
        admin = srv.login("alice")
        token = admin.post("/api/tokens", json={"name": "site-b", "role": "worker", "cameras": ["entrance"]}).json()["token"]
        admin.close()
        cmd = [sys.executable, "-c", "from lrfer.cli import main; raise SystemExit(main())", "worker", "--server", srv.url, "--token", token,
               "--camera", f"lounge={SCENE_VIDEO}", "--spool", str(tmp_path / "spool")]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("lrfer: error: the server refuses this token for every camera here (lounge)") and "Settings > API tokens" in last
        said = [line for line in done.stderr.splitlines() if "refuses camera lounge" in line]
        assert len(said) == 1 and "parked" in said[0] and "may not write camera lounge" in said[0]
        assert _count(srv, "lounge") == 0 and srv.service.store.get_camera("lounge") is None
    finally:
        srv.stop()
