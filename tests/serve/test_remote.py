"""RemoteSink and run_worker against a real HTTP server on loopback that records the batches."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lrfer.errors import LrferError
from lrfer.infer.recognizer import Recognizer
from lrfer.serve.config import Camera
from lrfer.serve.records import CameraStatus, Observation
from lrfer.serve.remote import RemoteSink, ingest_url, run_worker
from tests.conftest import ROOT_DIR

from ._util import free_port, wait_for

SCENE_VIDEO = str(ROOT_DIR / "examples" / "far_scene.mp4")


class Ingest:
    """A stand-in for ``POST /api/ingest``: stores each batch id once, answers as told."""

    def __init__(self, port: int, answers: list[int] | None = None):
        self.requests: list[dict] = []  # every request's body, in arrival order
        self.stored: dict[str, dict] = {}
        self.auth: list[str] = []
        self.answers = list(answers or [])  # status codes to answer first, then 200
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ingest.requests.append(body)
                ingest.auth.append(self.headers.get("Authorization", ""))
                code = ingest.answers.pop(0) if ingest.answers else 200
                if self.path != "/api/ingest":
                    code = 404
                if code == 200:
                    dup = body["batch_id"] in ingest.stored
                    ingest.stored.setdefault(body["batch_id"], body)
                    out = {"accepted": 0 if dup else len(body["observations"]), "duplicate": dup}
                else:
                    out = {"detail": {401: "invalid token", 404: "no such page"}.get(code, "server trouble")}
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def observations(self) -> list[Observation]:
        return [Observation.from_json(o) for body in self.stored.values() for o in body["observations"]]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def servers():
    started: list[Ingest] = []
    yield started
    for s in started:
        s.close()


def obs(i: int, camera: str = "cam1") -> Observation:
    return Observation(camera, f"run-{i}", "", 100.0 + 5 * i, 5.0, 10, 8, {"happy": 0.9, "sad": 0.1}, 24.0, 0.9)




def test_outage_spools_then_replays_oldest_first(tmp_path, port, servers):
    sink = RemoteSink(f"http://127.0.0.1:{port}", "tok", tmp_path, flush_seconds=0.05, max_backoff=0.2)
    try:
        for i in range(3):  # the server is down: each batch waits in a file
            sink([obs(i)])
            assert wait_for(lambda i=i: len(sink.pending()) == i + 1)
        order = [p.stem for p in sink.pending()]
        assert len(set(order)) == 3 and all(len(b) == 32 for b in order)
        servers.append(Ingest(port))
        assert wait_for(lambda: not sink.pending())
        got = servers[0]
        assert [b["batch_id"] for b in got.requests if b["observations"]] == order  # oldest first
        assert got.observations() == [obs(0), obs(1), obs(2)]
        assert set(got.auth) == {"Bearer tok"} and sink.pushed >= 3
    finally:
        sink.close()
    assert list((tmp_path / "rejected").iterdir()) == []


def test_a_batch_the_server_has_already_is_dropped_not_doubled(tmp_path, port, servers):
    server = Ingest(port)
    servers.append(server)
    batch = {"batch_id": "a" * 32, "observations": [obs(1).to_json()], "status": []}
    server.stored[batch["batch_id"]] = batch  # stored before; its reply was lost, so the file stayed
    (tmp_path / f"{batch['batch_id']}.json").write_text(json.dumps(batch))
    sink = RemoteSink(f"http://127.0.0.1:{port}/", "tok", tmp_path, flush_seconds=0.05)
    try:
        assert wait_for(lambda: not sink.pending())
        assert sink.duplicates == 1 and len(server.stored) == 1 and server.observations() == [obs(1)]
    finally:
        sink.close()


def test_a_restarted_sink_sends_what_the_last_one_left(tmp_path, port, servers):
    sink = RemoteSink(f"http://127.0.0.1:{port}", "tok", tmp_path, flush_seconds=60)
    sink([obs(1), obs(2)])
    sink.close()  # flushes to disk, tries once, the server is down
    (left,) = sink.pending()
    servers.append(Ingest(port))
    again = RemoteSink(f"http://127.0.0.1:{port}", "tok", tmp_path, flush_seconds=0.05)
    try:
        assert wait_for(lambda: not again.pending())
        assert list(servers[0].stored) == [left.stem] and servers[0].observations() == [obs(1), obs(2)]
    finally:
        again.close()


def test_401_moves_the_batch_to_rejected_logs_once_and_never_retries(tmp_path, port, servers, caplog):
    server = Ingest(port, answers=[401] * 100)
    servers.append(server)
    sink = RemoteSink(f"http://127.0.0.1:{port}", "wrong", tmp_path, flush_seconds=0.05)
    try:
        with caplog.at_level(logging.DEBUG, logger="lrfer.serve.remote"):
            sink([obs(1)])
            assert wait_for(lambda: list((tmp_path / "rejected").glob("*.json")))
            sink([obs(2)])
            assert wait_for(lambda: len(list((tmp_path / "rejected").glob("*.json"))) == 2)
            time.sleep(0.3)  # several more rounds: nothing is sent again
        assert len(server.requests) == 2 and sink.pending() == [] and sink.rejected == 2
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "401" in errors[0].getMessage() and "invalid token" in errors[0].getMessage()
        rejected = [json.loads(p.read_text()) for p in (tmp_path / "rejected").glob("*.json")]
        assert sorted(o["track_key"] for b in rejected for o in b["observations"]) == ["run-1", "run-2"]  # kept for a human
    finally:
        sink.close()


def test_5xx_is_retried_with_growing_waits(tmp_path, port, servers):
    server = Ingest(port, answers=[503, 500, 502])
    servers.append(server)
    sink = RemoteSink(f"http://127.0.0.1:{port}", "tok", tmp_path, flush_seconds=0.05, max_backoff=1.0)
    try:
        sink([obs(1)])
        t0 = time.monotonic()
        assert wait_for(lambda: not sink.pending() and server.stored)
        assert len(server.requests) == 4 and len({b["batch_id"] for b in server.requests}) == 1  # the same batch, tried 4 times
        assert time.monotonic() - t0 >= 0.05 + 0.1 + 0.2  # waits doubled between tries
    finally:
        sink.close()


def test_statuses_ride_along_or_go_alone(tmp_path, port, servers):
    server = Ingest(port)
    servers.append(server)
    sink = RemoteSink(f"http://127.0.0.1:{port}", "tok", tmp_path, flush_seconds=0.05)
    try:
        sink.status(CameraStatus("cam1", state="live", frames=3))
        assert wait_for(lambda: server.requests)
        alone = server.requests[0]
        assert alone["observations"] == [] and [CameraStatus.from_json(s).frames for s in alone["status"]] == [3]
        sink.status(CameraStatus("cam1", state="live", frames=4))
        sink.status(CameraStatus("cam1", state="reconnecting", frames=5))  # replaces the one before
        sink([obs(1)])
        assert wait_for(lambda: any(b["observations"] for b in server.requests))
        (batch,) = [b for b in server.requests if b["observations"]]
        statuses = [s for b in server.requests[1:] for s in b["status"]]
        assert [(s["state"], s["frames"]) for s in statuses] == [("reconnecting", 5)] and batch["observations"] == [obs(1).to_json()]
    finally:
        sink.close()


def test_bad_server_or_token_is_one_line():
    with pytest.raises(LrferError, match="not a server URL"):
        ingest_url("ftp://example.org")
    with pytest.raises(LrferError, match="not a server URL"):
        RemoteSink("example.org:8000", "tok", "/tmp/unused")
    with pytest.raises(LrferError, match="no token"):
        RemoteSink("http://127.0.0.1:1", "", "/tmp/unused")
    assert ingest_url("https://lrfer.example.org/base/") == "https://lrfer.example.org/base/api/ingest"


def test_run_worker_pushes_a_camera_until_it_finishes(tmp_path, port, servers):
    server = Ingest(port)
    servers.append(server)
    before = set(threading.enumerate())  # the recognizer is made from the default [model] section here
    cams = [Camera(id="lobby", url=SCENE_VIDEO, fps=5), Camera(id="off", url="/nowhere.mp4", enabled=False)]
    run_worker(f"http://127.0.0.1:{port}", "tok", cams, spool_dir=tmp_path / "spool", speed=0, flush_seconds=0.05, bucket_seconds=3600)
    got = server.observations()
    # three tracks and every frame; buckets follow the wall clock, so a run across the hour splits each track's into two
    assert {o.camera_id for o in got} == {"lobby"} and len({o.track_key for o in got}) == 3 and sum(o.frames for o in got) == 45
    assert len(got) in (3, 6)
    last = [CameraStatus.from_json(s) for b in server.requests for s in b["status"]][-1]
    assert (last.camera_id, last.state, last.frames) == ("lobby", "finished", 15)
    assert list((tmp_path / "spool").glob("*.json")) == []
    # the stand-in server's own request threads may still be closing their sockets; only the worker's must be gone
    left = [t for t in set(threading.enumerate()) - before if "process_request" not in t.name]
    assert left == []
    with pytest.raises(LrferError, match="no cameras"):
        run_worker(f"http://127.0.0.1:{port}", "tok", cams[1:], spool_dir=tmp_path)


def test_run_worker_stops_on_request(tmp_path, port, servers):
    rec = Recognizer(device="cpu")
    server = Ingest(port)
    servers.append(server)
    stop = threading.Event()
    cams = [Camera(id="loop", url=SCENE_VIDEO, fps=5, loop=True)]
    t = threading.Thread(
        target=run_worker,
        args=(f"http://127.0.0.1:{port}", "tok", cams),
        kwargs={"spool_dir": tmp_path, "stop": stop, "flush_seconds": 0.05, "recognizer": lambda: rec},
    )
    t.start()
    assert wait_for(lambda: any(s["frames"] >= 2 for b in server.requests for s in b["status"]))
    stop.set()
    t.join(10)
    assert not t.is_alive()
    last = [s for b in server.requests for s in b["status"]][-1]
    assert last["state"] == "stopped" and server.observations()  # the open bucket was flushed and pushed at stop
