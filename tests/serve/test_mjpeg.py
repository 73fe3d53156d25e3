"""A camera that serves MJPEG over HTTP (what many IP cameras and ESP32 boards offer): a real
multipart/x-mixed-replace stream on loopback, read by the camera worker through PyAV."""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from lrfer.serve.camera import CameraWorker
from lrfer.serve.config import Camera
from tests.conftest import ROOT_DIR

from ._util import lrfer_threads, wait_for


def _mjpeg_server(stop: threading.Event) -> ThreadingHTTPServer:
    scene = Image.open(ROOT_DIR / "examples" / "far_scene.png").convert("RGB")
    frames = []
    for dx in range(0, 20, 2):  # the scene drifting a little, as a live picture does
        buf = io.BytesIO()
        scene.transform(scene.size, Image.AFFINE, (1, 0, -dx, 0, 1, 0)).save(buf, "JPEG", quality=85)
        frames.append(buf.getvalue())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            k = 0
            try:
                while not stop.is_set():
                    f = frames[k % len(frames)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(f) + f + b"\r\n")
                    k += 1
                    time.sleep(0.1)  # 10 fps
            except OSError:  # the worker hung up
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="test-mjpeg", daemon=True).start()
    return server


def test_mjpeg_over_http_camera(recognizer):
    stop = threading.Event()
    server = _mjpeg_server(stop)
    obs = []
    cam = Camera(id="esp32", url=f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg", fps=5)
    w = CameraWorker(cam, lambda: recognizer, obs.extend, bucket_seconds=1, backoff=(0.2, 1.0), timeout=5.0)
    try:
        w.start()
        assert wait_for(lambda: w.status.state == "live" and w.status.frames >= 6, timeout=30), w.status
        assert w.status.faces_now >= 2 and (w.status.width, w.status.height) == (640, 480)
        assert w.snapshot() is not None
    finally:
        w.stop()
        stop.set()
        server.shutdown()
        server.server_close()
    assert obs and {o.camera_id for o in obs} == {"esp32"}
    assert lrfer_threads() == []
