"""The monitoring service's camera workers run on the runtime: no torch in the process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.runtime.conftest import VIDEO

pytest.importorskip("fastapi", reason="the serve extra is not installed")

WORKER = f"""
import sys, time
from lrfer.infer.recognizer import Recognizer
from lrfer.serve.camera import CameraWorker
from lrfer.serve.config import Camera, Evidence

obs = []
rec = Recognizer()
w = CameraWorker(Camera(id="scene", url={str(VIDEO)!r}, fps=5), lambda: rec, obs.extend, speed=0, clock=lambda: 1000.0, evidence=Evidence(min_face_px=20))
w.start()
deadline = time.time() + 120
while w.alive and time.time() < deadline:
    time.sleep(0.1)
assert w.status.state == "finished", w.status
assert len(obs) == 3 and sum(o.certain for o in obs) == 30, obs
bad = [m for m in ("torch", "torchvision") if m in sys.modules]
assert not bad, bad
"""


def test_a_camera_worker_runs_without_torch():
    r = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
