"""Live events for the dashboard: a fan-out from any thread to every Server-Sent-Events client.

Publishers (camera workers, the recorder, the alert engine, the API) run in plain threads; each
SSE client is an asyncio task. ``publish`` hands the event to each client's event loop with
``call_soon_threadsafe`` and returns at once: a client whose bounded queue is full loses the event
(counted in ``dropped``), so a slow tablet never slows a camera.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any, Optional

log = logging.getLogger(__name__)

KINDS = ("alert", "status", "bucket")
_CLOSE = object()


class Subscription:
    """One client's events: ``async for kind, data in sub`` (ends when the hub closes)."""

    def __init__(self, hub: "EventHub", loop: asyncio.AbstractEventLoop, maxsize: int):
        self._hub, self._loop = hub, loop
        self._queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.dropped = 0
        self.closed = False

    def _put(self, item: Any) -> None:  # on the subscriber's loop
        if item is _CLOSE:
            self.closed = True
            while not self._queue.empty():  # make room: closing must not be dropped
                self._queue.get_nowait()
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    def _offer(self, item: Any) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._put, item)
            return True
        except RuntimeError:  # the client's loop is closed: it is gone
            return False

    async def get(self, timeout: Optional[float] = None) -> Optional[tuple[str, dict]]:
        """The next event, or None after ``timeout`` seconds without one; raises StopAsyncIteration once closed."""
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if item is _CLOSE:
            raise StopAsyncIteration
        return item

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> tuple[str, dict]:
        item = await self.get()
        assert item is not None  # no timeout given
        return item

    def close(self) -> None:
        self._hub._remove(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class EventHub:
    """Thread-safe fan-out of ``(kind, data)`` events to SSE subscribers."""

    def __init__(self, maxsize: int = 256):
        self.maxsize = maxsize
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self.closed = False
        self.published = 0

    def publish(self, kind: str, data: dict) -> None:
        """Send an event to every subscriber; never blocks, callable from any thread."""
        with self._lock:
            subs = list(self._subs)
            self.published += 1
        item = (kind, data)
        gone = [s for s in subs if not s._offer(item)]
        for s in gone:
            self._remove(s)

    def subscribe(self) -> Subscription:
        """A subscription for the calling coroutine's event loop (use it as a context manager)."""
        sub = Subscription(self, asyncio.get_running_loop(), self.maxsize)
        with self._lock:
            if self.closed:
                sub._put(_CLOSE)
            else:
                self._subs.add(sub)
        return sub

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def close(self) -> None:
        """End every subscription (the server is stopping: SSE responses finish, so it can)."""
        with self._lock:
            self.closed = True
            subs, self._subs = list(self._subs), set()
        for s in subs:
            s._offer(_CLOSE)


def sse_message(kind: str, data: dict, event_id: Optional[int] = None) -> str:
    """One Server-Sent-Events message."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def sse_comment(text: str = "") -> str:
    """A comment line: keeps proxies from timing the stream out; clients ignore it."""
    return f": {text or int(time.time())}\n\n"
