"""What the service's tests share: a free loopback port, waiting for a condition, lrfer's threads."""

from __future__ import annotations

import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout: float = 20.0, step: float = 0.02) -> bool:
    """True as soon as ``cond()`` is; ``cond()``'s last answer after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return bool(cond())


def lrfer_threads() -> list[str]:
    """The service's threads still running (each is named lrfer-...)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("lrfer-")]
