"""Done when: the service on PostgreSQL, and `lrfer worker` in a second process (another site)
pushing a camera to it over HTTP. The camera appears under its site, its observations are stored
once, and the worker stops cleanly on SIGTERM with nothing left in its spool."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import lrfer
from lrfer.serve.config import ServeConfig

from ._live import LiveServer

DEMO = Path(lrfer.__file__).parent / "assets" / "demo" / "lounge.mp4"


def test_lrfer_worker_pushes_to_a_postgres_service(pg_url, tmp_path):
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir = pg_url, str(tmp_path / "server")
    srv = LiveServer(cfg).start()
    proc = None
    try:
        token, _ = srv.add_token("worker", name="site-b")
        spool = tmp_path / "spool"
        cmd = [sys.executable, "-c", "from lrfer.cli import main; raise SystemExit(main())", "worker", "--server", srv.url, "--token", token,
               "--camera", f"entrance={DEMO}", "--spool", str(spool)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline and len(rows) < 3:
            time.sleep(0.5)
            rows = list(srv.service.store.export_observations("entrance", 0, 2e10))
        if len(rows) < 3:
            proc.kill()
            raise AssertionError("no observations arrived from the worker:\n" + proc.communicate()[0])
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "Traceback" not in out
        assert not list(spool.glob("*.json"))  # everything pushed
        cam = srv.service.store.get_camera("entrance")
        assert cam["site"] == "site-b" and cam["url"] == "remote://site-b"
        assert "entrance" not in srv.service.workers  # never opened here
        srv.add_user("alice", "admin")
        c = srv.login("alice")  # the dashboard's overview lists it under its site
        listed = {x["id"]: x for x in c.get("/api/cameras").json()}
        c.close()
        assert listed["entrance"]["site"] == "site-b"
        keys = [(r["track_key"], r["start"]) for r in srv.service.store.export_observations("entrance", 0, 2e10)]
        assert len(keys) == len(set(keys))  # each bucket once
        assert srv.service.statuses()["entrance"].state in ("stopped", "finished", "live")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        srv.stop()
