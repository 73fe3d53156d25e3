"""CameraWorker on the example scene (three faces of ~17, 27 and 48 px): observations, masks,
zones, snapshot, stop, and sources that fail."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lrfer
from lrfer.infer.recognizer import Recognizer
from lrfer.serve.camera import CameraWorker, _grow, redact
from lrfer.serve.config import Camera, Evidence, Zone
from tests.conftest import ROOT_DIR

from ._util import free_port, lrfer_threads, wait_for

SCENE_VIDEO = str(ROOT_DIR / "examples" / "far_scene.mp4")  # 640x480, 45 frames at 15 fps; face centres at x ~ 0.25, 0.58, 0.83
LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]








def run_to_end(recognizer, camera: Camera, **kw):
    """Run a file camera to its end (speed 0, a fixed clock: one bucket); returns (worker, observations, statuses)."""
    obs, statuses = [], []
    kw.setdefault("clock", lambda: 1000.0)
    w = CameraWorker(camera, lambda: recognizer, obs.extend, speed=0, on_status=statuses.append, **kw)
    w.start()
    assert wait_for(lambda: not w.alive)
    return w, obs, statuses


def test_file_camera_observes_the_scene_faces(recognizer):
    cam = Camera(id="scene", url=SCENE_VIDEO, fps=5)
    w, obs, statuses = run_to_end(recognizer, cam, evidence=Evidence(min_face_px=20))
    st = w.status
    assert st.state == "finished" and st.error == "" and st.frames == 15  # 3 s sampled at 5 fps
    assert (st.width, st.height, st.faces_now) == (640, 480, 3) and st.fps > 0
    assert st.moods_now == {"happy": 2}  # the 17 px face is below min_face_px: not evidence
    assert [s.state for s in statuses][0] == "live" and statuses[-1].state == "finished"
    assert len(obs) == 3 and len({o.track_key for o in obs}) == 3
    by_size = sorted(obs, key=lambda o: o.face_px)
    assert [round(o.face_px) for o in by_size] == pytest.approx([17, 27, 48], abs=3)
    for o in obs:
        assert (o.camera_id, o.start, o.seconds, o.frames, o.zone) == ("scene", 1000.0, 5.0, 15, "")
        assert o.track_key.split("-")[0] == obs[0].track_key.split("-")[0]  # one run
    assert by_size[0].certain == 0 and by_size[0].probs is None  # the small face: uncertain, counted
    for o in by_size[1:]:
        assert o.certain == 15 and max(o.probs, key=o.probs.get) == "happy" and 0.5 < o.score <= 1
    assert lrfer_threads() == []


def test_mask_removes_faces_and_blacks_the_snapshot(recognizer):
    cam = Camera(id="masked", url=SCENE_VIDEO, fps=5, masks=[LEFT_HALF])
    w, obs, _ = run_to_end(recognizer, cam)
    assert sorted(round(o.face_px) for o in obs) == pytest.approx([17, 27], abs=3)  # the 48 px face was on the left
    snap = np.asarray(Image.open(io.BytesIO(w.snapshot())).convert("L"), np.float32)
    assert snap.shape == (480, 640)
    assert snap[:, :312].max() < 24 and snap[:, 330:].mean() > 60  # black (JPEG ringing aside) where masked, the scene elsewhere


def test_zones_assign_and_min_face_skips(recognizer):
    zones = [Zone(name="left", polygon=LEFT_HALF), Zone(name="middle", polygon=[(0.5, 0), (0.7, 0), (0.7, 1), (0.5, 1)])]
    cam = Camera(id="zoned", url=SCENE_VIDEO, fps=3, zones=zones, min_face=20)
    w, obs, _ = run_to_end(recognizer, cam)
    assert {round(o.face_px / 10): o.zone for o in obs} == {5: "left", 3: "middle"}  # the 17 px face (zone "") is under min_face
    assert w.status.faces_now == 2


def test_snapshot_blurs_or_boxes_faces(recognizer):
    cam = Camera(id="snap", url=SCENE_VIDEO, fps=1)
    w, _, _ = run_to_end(recognizer, cam)
    blurred = np.asarray(Image.open(io.BytesIO(w.snapshot())).convert("L"), np.float32)
    boxed = np.asarray(Image.open(io.BytesIO(w.snapshot(blur=False))).convert("RGB"), np.float32)
    big = max(w._last[1], key=lambda b: b[2] - b[0])
    x1, y1, x2, y2 = (int(v) for v in big)
    face = boxed[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].mean(axis=2)
    assert blurred[y1 + 4 : y2 - 4, x1 + 4 : x2 - 4].std() < 0.35 * face.std()  # features gone
    gx1, gy1, gx2, gy2 = _grow(big, 640, 480)
    green = (boxed[..., 1] > 180) & (boxed[..., 0] < 100) & (boxed[..., 2] < 100)
    assert green[gy1:gy2, gx1 : gx1 + 2].sum() > 20  # a box edge drawn
    assert CameraWorker(cam, lambda: recognizer, print).snapshot() is None  # nothing analysed yet


def test_stop_mid_run_is_prompt_flushes_and_leaves_no_thread(recognizer):
    before = set(threading.enumerate())
    obs = []
    cam = Camera(id="looping", url=SCENE_VIDEO, fps=5, loop=True)
    w = CameraWorker(cam, lambda: recognizer, obs.extend, speed=1.0, bucket_seconds=3600)
    w.start()
    assert wait_for(lambda: w.status.frames >= 3)
    assert w.status.state == "live" and obs == []  # the bucket is still open
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 2.0
    assert not w.alive and w.status.state == "stopped"
    assert len(obs) == 3 and all(o.frames >= 1 for o in obs)  # the open bucket went to the sink at stop
    assert set(threading.enumerate()) <= before and lrfer_threads() == []


def test_file_plays_at_real_time_times_speed(recognizer):
    cam = Camera(id="paced", url=SCENE_VIDEO, fps=2)  # sampled frames at 0, 0.53, ..., 2.53 s of video
    t0 = time.monotonic()
    obs = []
    w = CameraWorker(cam, lambda: recognizer, obs.extend, speed=2.0)
    w.start()
    assert wait_for(lambda: not w.alive)
    elapsed = time.monotonic() - t0
    assert w.status.frames == 6 and 1.2 < elapsed < 4.0  # 2.53 s of video at twice real time


def test_looped_file_is_one_stream_across_passes(recognizer):
    """A looped file plays on without a seam: the same tracks (one run) over several passes, with
    times that keep growing (the demo camera's faces stay one person each)."""
    obs = []
    demo = Path(lrfer.__file__).parent / "assets" / "demo" / "lounge.mp4"  # 20 s, made to loop seamlessly
    cam = Camera(id="loops", url=str(demo), fps=2, loop=True)
    clock = iter(range(10**9))
    w = CameraWorker(cam, lambda: recognizer, obs.extend, speed=0, clock=lambda: float(next(clock)), bucket_seconds=1)
    w.start()
    assert wait_for(lambda: w.status.frames >= 2 * 40 + 5, timeout=60)  # two passes and a bit: 40 frames a pass at 2 fps
    w.stop()
    assert w.attempts == 1  # opened once; the passes were chained
    assert len({o.track_key.split("-")[0] for o in obs}) == 1
    assert len({o.track_key for o in obs}) <= 4  # the scene's three faces (+ its tiny false face), not new tracks each pass
    assert lrfer_threads() == []


def test_unreachable_url_reconnects_with_growing_backoff(recognizer):
    port = free_port()  # nothing listens there
    cam = Camera(id="gone", url=f"rtsp://admin:hunter2@127.0.0.1:{port}/stream", fps=2)
    statuses = []
    w = CameraWorker(cam, lambda: recognizer, print, backoff=(0.05, 0.4), timeout=2.0, on_status=statuses.append)
    w.start()
    delays = []
    assert wait_for(lambda: delays.append(w.retry_delay) or w.attempts >= 6)
    st = w.status
    assert st.state == "reconnecting" and st.since <= time.time()
    assert "127.0.0.1" in st.error and "hunter2" not in st.error and "admin:***@" in st.error
    seen = sorted({d for d in delays if d})
    assert seen[:4] == [0.05, 0.1, 0.2, 0.4] and max(delays) == 0.4  # doubling, capped
    assert statuses[0].state == "reconnecting" and statuses[0].error
    t0 = time.monotonic()
    w.stop()
    assert time.monotonic() - t0 < 1.0 and w.status.state == "stopped" and lrfer_threads() == []


def test_missing_file_is_an_error_not_a_retry(recognizer):
    cam = Camera(id="nofile", url="/nowhere/cam.mp4")
    w, obs, statuses = run_to_end(recognizer, cam)
    assert w.status.state == "error" and "no such video file" in w.status.error and w.attempts == 1 and obs == []


def test_a_failing_recognizer_or_sink_does_not_escape(recognizer):
    def broken():
        raise RuntimeError("model file damaged")

    w = CameraWorker(Camera(id="broken", url=SCENE_VIDEO), broken, print)
    w.start()
    assert wait_for(lambda: not w.alive) and w.status.state == "error" and "model file damaged" in w.status.error

    def bad_sink(obs):
        raise OSError("disk full")

    w = CameraWorker(Camera(id="sinkfail", url=SCENE_VIDEO, fps=5), lambda: recognizer, bad_sink, speed=0, bucket_seconds=1)
    w.start()
    assert wait_for(lambda: not w.alive) and w.status.state == "finished" and w.status.frames == 15


def test_redact_hides_passwords_only():
    assert redact("cannot open rtsp://u:p%40ss@cam.local:554/s (refused)") == "cannot open rtsp://u:***@cam.local:554/s (refused)"
    assert redact("http://cam.local:8080/video") == "http://cam.local:8080/video"


def test_bad_speed():
    with pytest.raises(ValueError):
        CameraWorker(Camera(id="x", url=SCENE_VIDEO), Recognizer, print, speed=-1)
