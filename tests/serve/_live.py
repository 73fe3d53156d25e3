"""A real ``lrfer serve`` for the tests: a Service on a real database, its app in a real uvicorn
server on a free loopback port, in a thread; ``stop()`` ends it deterministically (the SSE streams
first, then the server, then the service) and checks that no thread is left behind."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import httpx

from lrfer.serve.app import create_app, make_server
from lrfer.serve.auth import hash_password, new_token
from lrfer.serve.config import ServeConfig
from lrfer.serve.service import Service

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"alice": "alice-Secret-1", "bob": "bob-Secret-22"}  # alice: admin, bob: staff


class LiveServer:
    """``Service(config)`` + ``create_app`` + uvicorn on 127.0.0.1:<free port>."""

    def __init__(self, config: ServeConfig, *, speed: float = 1.0, start_service: bool = True):
        self.service = Service(config, speed=speed)
        self.app = create_app(self.service)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))  # bound here and handed over: no race for the port
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = make_server(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="off")
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, name="lrfer-test-uvicorn", daemon=True)
        self._start_service = start_service
        self._threads_before: set[threading.Thread] = set()

    def start(self, timeout: float = 20.0) -> "LiveServer":
        self._threads_before = set(threading.enumerate())
        if self._start_service:
            self.service.start()
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.stop()
        self._thread.join(15)
        assert not self._thread.is_alive(), "uvicorn did not stop"
        self.service.stop()
        self._sock.close()
        self.assert_no_thread_left()

    def assert_no_thread_left(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = [t for t in threading.enumerate() if t not in self._threads_before and t.is_alive() and t.name.startswith("lrfer")]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not left, f"threads left running: {[t.name for t in left]}"

    # --------------------------------------------------------------------------------- people
    def add_user(self, username: str, role: str, password: Optional[str] = None) -> str:
        password = password or PASSWORDS.get(username) or f"{username}-pw-{uuid.uuid4().hex[:8]}"
        self.service.store.add_user(username, hash_password(password), role)
        return password

    def add_token(self, role: str, name: Optional[str] = None) -> tuple[str, int]:
        token, token_hash = new_token()
        row = self.service.store.add_token(name or f"{role}-{uuid.uuid4().hex[:6]}", token_hash, role, "tests")
        return token, row["id"]

    def client(self, **kwargs) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, **kwargs)

    def login(self, username: str, password: Optional[str] = None) -> httpx.Client:
        """A client with a session cookie that sends the CSRF header, as the dashboard does."""
        c = self.client()
        r = c.post("/api/login", json={"username": username, "password": password or PASSWORDS[username]})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf"]
        return c

    def bearer(self, token: str) -> httpx.Client:
        return self.client(headers={"Authorization": f"Bearer {token}"})


@contextmanager
def live_server(config: ServeConfig, **kwargs):
    srv = LiveServer(config, **kwargs).start()
    try:
        yield srv
    finally:
        srv.stop()
