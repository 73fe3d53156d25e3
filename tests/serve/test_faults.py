"""Faults the service must survive: the database going away, the process killed or stopped, the
server of a remote worker going away. Counted in observations: nothing lost, nothing twice."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

import lrfer
from lrfer.serve.app import make_server
from lrfer.serve.config import Camera, ServeConfig
from lrfer.serve.records import Observation
from lrfer.serve.remote import RemoteSink
from lrfer.serve.service import Service

from ._live import LiveServer
from ._util import free_port

DEMO = Path(lrfer.__file__).parent / "assets" / "demo" / "lounge.mp4"


def _config(db: str, data_dir: Path, bucket: int = 1, flush: float = 0.5) -> ServeConfig:
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir = db, str(data_dir)
    cfg.server.bucket_seconds, cfg.server.flush_seconds = bucket, flush
    cfg.cameras = [Camera(id="lounge", url=str(DEMO), loop=True, fps=2.0)]
    return cfg


def _counts(url: str) -> tuple[int, int, int]:
    """Observations, their frames, and the frames the minute rollups hold."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*), coalesce(sum(frames), 0) FROM observations")).one()
        rolled = conn.execute(sa.text("SELECT coalesce(sum(frames), 0) FROM rollups WHERE res = 60")).scalar()
    engine.dispose()
    return int(n[0]), int(n[1]), int(rolled)


def test_postgres_down_for_20_s_loses_nothing(postgres, pg_url, tmp_path):
    service = Service(_config(pg_url, tmp_path))
    handed: list[Observation] = []
    submit = service.recorder.submit
    service.recorder.submit = lambda obs: (handed.extend(obs), submit(obs))  # count what the camera hands over
    service.start()
    try:
        deadline = time.monotonic() + 30
        while service.recorder.written < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert service.recorder.written >= 3, "no observations before the outage"
        postgres.stop()
        failures = 0
        t_end = time.monotonic() + 20
        while time.monotonic() < t_end:
            failures = max(failures, service.recorder.failures)
            time.sleep(0.5)
        queued = service.recorder.pending
        postgres.start()
        time.sleep(3)
    finally:
        service.stop()  # the workers flush their open buckets, the recorder writes its queue
    assert failures > 0 and queued > 0  # the outage was real and observations waited for it
    n, frames, rolled = _counts(pg_url)
    assert n == len(handed) and frames == sum(o.frames for o in handed) == rolled


def _serve(config_file: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from lrfer.cli import main; raise SystemExit(main())", "serve", "--config", str(config_file)]
    return subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _newest(db: Path) -> float:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT coalesce(max(start + seconds), 0) FROM observations").fetchone()[0]


def _wait_for_data(db: Path, after: float, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if db.exists() and _newest(db) > after:
                return
        except sqlite3.OperationalError:  # the file is there before the migrations have made the tables
            pass
        time.sleep(0.3)
    raise AssertionError("the service wrote no observations")


def test_sigterm_flushes_and_kill_9_loses_a_bounded_tail(tmp_path):
    """SIGTERM: exit 0 with the open buckets written. kill -9: the database intact, and what is lost
    is at most the open buckets and the recorder's queue (2 x bucket + flush, docs/serve.md)."""
    bucket, flush = 1, 1.0
    db = tmp_path / "lrfer.sqlite3"
    cfg = tmp_path / "lrfer.toml"
    cfg.write_text(
        f'[server]\ndata_dir = "{tmp_path}"\nport = {free_port()}\nbucket_seconds = {bucket}\nflush_seconds = {flush}\n'
        f'[[cameras]]\nid = "lounge"\nurl = "{DEMO}"\nloop = true\nfps = 2\n'
    )
    log = tmp_path / "serve.log"
    proc = _serve(cfg, log)
    _wait_for_data(db, 0)
    time.sleep(3)
    t_term = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert _newest(db) >= t_term - bucket - 1.0  # the open bucket was flushed at the stop

    proc = _serve(cfg, log)  # restart on the same database
    _wait_for_data(db, time.time())
    time.sleep(4)
    t_kill = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    lost = t_kill - _newest(db)
    assert lost <= 2 * bucket + flush + 1.5, f"{lost:.1f} s lost"  # + 1.5 s: the frame being analysed and start-up jitter

    proc = _serve(cfg, log)  # and it starts again after the kill
    try:
        _wait_for_data(db, time.time())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def _obs(i: int) -> Observation:
    return Observation("site-b", f"run-{i % 3}", "", 1_800_000_000.0 + 5 * i, 5.0, 10, 9, {"happy": 0.8, "sad": 0.2}, 24.0, 0.9)


def _serve_on(srv: LiveServer, port: int):
    server = make_server(srv.app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    thread = threading.Thread(target=server.run, name="lrfer-test-uvicorn2", daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return server, thread


def test_remote_worker_buffers_while_the_server_is_down_and_replays_once(tmp_path):
    cfg = ServeConfig()
    cfg.server.data_dir = str(tmp_path / "server")
    srv = LiveServer(cfg).start()
    try:
        token, _ = srv.add_token("worker")
        port = srv.port
        sink = RemoteSink(srv.url, token, tmp_path / "spool", flush_seconds=0.2, max_backoff=0.5)
        sink([_obs(i) for i in range(10)])
        deadline = time.monotonic() + 15
        while sink.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not sink.pending()
        srv.server.stop()  # the server goes away (the service and its database stay)
        srv._thread.join(15)
        sink([_obs(i) for i in range(10, 30)])
        time.sleep(1.5)
        assert sink.pending(), "nothing was buffered while the server was down"
        server, thread = _serve_on(srv, port)  # back on the same address
        try:
            deadline = time.monotonic() + 20
            while sink.pending() and time.monotonic() < deadline:
                time.sleep(0.1)
            sink.close()
            assert not sink.pending()
            rows = list(srv.service.store.export_observations("site-b", 0, 2e10))
        finally:
            server.stop()
            thread.join(15)
    finally:
        srv.service.stop()
        srv._sock.close()
    keys = [(r["track_key"], r["start"]) for r in rows]
    assert len(keys) == 30 == len(set(keys))  # every observation once
