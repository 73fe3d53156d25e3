"""A camera on a real RTSP stream that breaks and comes back.

FFmpeg cannot serve RTSP itself (``-rtsp_flags listen`` is for receiving), so the test plays the
part of the camera's RTSP server with a small relay, as MediaMTX would: Debian's ffmpeg publishes
examples/far_scene.mp4 in a loop to it (ANNOUNCE/RECORD, RTP over TCP) and the worker plays it
(DESCRIBE/SETUP/PLAY) through PyAV's FFmpeg, as from any IP camera. Killing ffmpeg cuts the
stream: the relay drops its players, like a camera that reboots.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import threading

import pytest

from lrfer.infer.recognizer import Recognizer
from lrfer.serve.camera import CameraWorker
from lrfer.serve.config import Camera
from tests.conftest import ROOT_DIR

from ._util import wait_for

FFMPEG = shutil.which("ffmpeg")
SCENE_VIDEO = ROOT_DIR / "examples" / "far_scene.mp4"

pytestmark = pytest.mark.skipif(FFMPEG is None, reason="needs the ffmpeg program (apt install ffmpeg) to publish an RTSP stream")


class RtspRelay:
    """A minimal RTSP server on loopback: one publisher's RTP (interleaved on TCP) relayed to its players."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sdp: bytes | None = None  # the publisher's session description; None while nobody publishes
        self.players: list[socket.socket] = []
        self.conns: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.sessions = itertools.count(1000)
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True, name="rtsp-relay")
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            with self.lock:
                self.conns.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        publishing = False
        try:
            while first := f.read(1):
                if first == b"$":  # interleaved RTP/RTCP: channel, length, data
                    head = f.read(3)
                    data = f.read(int.from_bytes(head[1:3], "big"))
                    if publishing:
                        self._relay(first + head + data)
                    continue
                method, url, _ = (first + f.readline()).decode().split(" ", 2)
                headers = {}
                while (line := f.readline()) not in (b"\r\n", b"\n", b""):
                    key, _, value = line.decode().partition(":")
                    headers[key.strip().lower()] = value.strip()
                body = f.read(int(headers.get("content-length", 0)))
                publishing = self._answer(conn, method, url, headers, body) or publishing
        except (OSError, ValueError):
            pass
        finally:
            if publishing:
                self._unpublish()
            with self.lock:
                if conn in self.players:
                    self.players.remove(conn)
            conn.close()

    def _answer(self, conn: socket.socket, method: str, url: str, headers: dict, body: bytes) -> bool:
        """Reply to one request; True when it makes this connection the publisher."""
        code, extra, out = "200 OK", {}, b""
        if method == "OPTIONS":
            extra["Public"] = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, TEARDOWN, GET_PARAMETER"
        elif method == "ANNOUNCE":
            self.sdp = body
        elif method == "DESCRIBE" and self.sdp is None:
            code = "404 Not Found"
        elif method == "DESCRIBE":
            out, extra["Content-Base"], extra["Content-Type"] = self.sdp, url.rstrip("/") + "/", "application/sdp"
        elif method == "SETUP" and "TCP" not in headers.get("transport", "").upper():
            code = "461 Unsupported Transport"  # FFmpeg then asks again for RTP over TCP
        elif method == "SETUP":
            extra["Transport"], extra["Session"] = headers["transport"], str(next(self.sessions))
        elif method in ("PLAY", "RECORD"):
            extra["Session"] = headers.get("session", "1").split(";")[0]
        lines = [f"RTSP/1.0 {code}", f"CSeq: {headers.get('cseq', '0')}", *(f"{k}: {v}" for k, v in extra.items())]
        if out:
            lines.append(f"Content-Length: {len(out)}")
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + out)
        if method == "PLAY":
            with self.lock:
                self.players.append(conn)
        return method == "ANNOUNCE"

    def _relay(self, packet: bytes) -> None:
        with self.lock:
            players = list(self.players)
        for p in players:
            try:
                p.sendall(packet)
            except OSError:
                with self.lock:
                    if p in self.players:
                        self.players.remove(p)

    def _unpublish(self) -> None:
        self.sdp = None
        with self.lock:
            players, self.players = self.players, []
        for p in players:
            try:
                p.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not, on Linux)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)


def publish(url: str) -> subprocess.Popen:
    """ffmpeg playing the scene in a loop at real time into the relay (the H.264 copied, not re-encoded)."""
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(SCENE_VIDEO), "-c:v", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", url]  # fmt: skip
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)




@pytest.fixture
def relay():
    r = RtspRelay()
    procs: list[subprocess.Popen] = []
    r.procs = procs
    yield r
    for p in procs:
        p.kill()
        p.wait()
    r.close()


def test_rtsp_camera_survives_a_server_restart(relay):
    url = f"rtsp://127.0.0.1:{relay.port}/cam"
    relay.procs.append(publish(url))
    assert wait_for(lambda: relay.sdp is not None, 10), relay.procs[0].stderr.read().decode()
    rec = Recognizer(device="cpu")
    obs, statuses = [], []
    w = CameraWorker(Camera(id="door", url=url, fps=5), lambda: rec, obs.extend, bucket_seconds=1, on_status=statuses.append, backoff=(0.2, 1.0), timeout=3.0)
    w.start()
    try:
        assert wait_for(lambda: w.status.frames >= 5 and len(obs) >= 3, 15), w.status
        st = w.status
        assert st.state == "live" and (st.width, st.height) == (640, 480) and st.faces_now == 3
        first_run = {o.track_key.split("-")[0] for o in obs}
        assert len(first_run) == 1 and sorted(round(o.face_px / 10) for o in obs[:3]) == [2, 3, 5]

        relay.procs[0].kill()  # the camera goes away
        relay.procs[0].wait()
        assert wait_for(lambda: w.status.state == "reconnecting", 5)
        down = w.status
        assert down.error and down.since >= st.since and w.attempts >= 1
        assert wait_for(lambda: w.attempts >= 3, 5)  # retried against a server with nothing to play (404)
        frames_down = w.status.frames

        relay.procs.append(publish(url))  # ... and comes back
        assert wait_for(lambda: w.status.state == "live" and w.status.frames > frames_down + 3, 15), w.status
        assert w.status.error == "" and w.status.since > down.since
        assert wait_for(lambda: {o.track_key.split("-")[0] for o in obs} - first_run, 5)  # buckets again, under a new run id
        states = [s.state for s in statuses]
        assert [a for a, b in zip(states, [None, *states]) if a != b] == ["live", "reconnecting", "live"]
    finally:
        w.stop()
    assert not w.alive and w.status.state == "stopped"
    relay.close()
    assert [t for t in relay.threads if t.is_alive()] == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("lrfer-")] == []
