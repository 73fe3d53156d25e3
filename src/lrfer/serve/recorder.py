"""The one writer: observations from every camera go to the alert rules and then to the database.

Local camera workers hand their buckets to :meth:`Recorder.submit` (a queue; written at least
every ``flush_seconds``). A remote worker's batch is written at once by :meth:`Recorder.write`
(its HTTP answer must mean "stored", since the worker then deletes its copy). While the database
is unreachable (PostgreSQL restarting), queued observations and alerts stay queued and are retried
with backoff: nothing is lost unless the process itself dies, and then at most what was queued:
``flush_seconds`` of data plus the buckets still open in the workers (docs/serve.md states the bound).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Optional

import sqlalchemy as sa

from .alerts import AlertEngine
from .records import AlertEvent, Observation
from .store import Store

log = logging.getLogger(__name__)


class Recorder:
    def __init__(
        self,
        store: Store,
        engine: AlertEngine,
        *,
        flush_seconds: float = 2.0,
        on_alert: Optional[Callable[[dict], None]] = None,
        on_written: Optional[Callable[[list[Observation]], None]] = None,
    ):
        self.store = store
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.on_alert = on_alert
        self.on_written = on_written
        self._queue: deque[tuple[Observation, float]] = deque()  # with the time it was handed over
        self._alerts: deque[AlertEvent] = deque()
        self._rules_lock = threading.Lock()  # the alert engine is fed from the writer and from ingest requests
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.written = 0
        self.failures = 0
        self.last_error = ""
        self.delays: deque[float] = deque(maxlen=5000)  # ingest-to-database: seconds from submit to commit
        self.ages: deque[float] = deque(maxlen=5000)  # freshness: seconds from a bucket's end to its commit

    # ------------------------------------------------------------------------------ intake
    def submit(self, observations: list[Observation]) -> None:
        """Queue a local worker's observations (returns at once; thread-safe)."""
        if observations:
            now = time.monotonic()
            self._queue.extend((o, now) for o in observations)
            if len(self._queue) > 5000:
                self._wake.set()

    def write(self, observations: list[Observation], batch_id: str) -> bool:
        """Store a remote batch now (raises when the database is down; False: already stored)."""
        t = time.monotonic()
        stored = self.store.ingest(observations, batch_id)
        if stored:
            self.delays.extend([time.monotonic() - t] * len(observations))
            self._after_write(observations)
        return stored

    def set_rules(self, rules) -> None:
        """Change the alert rules in force (the engine is fed from the writer and from ingest requests)."""
        with self._rules_lock:
            self.engine.set_rules(rules)

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._alerts)

    # ------------------------------------------------------------------------------ thread
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lrfer-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Write what is queued (trying for up to ``timeout`` seconds), then end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.pending:
            log.error("recorder stopped with %d observations/alerts unwritten (database unreachable: %s)", self.pending, self.last_error)

    def _run(self) -> None:
        backoff = 0.5
        deadline: Optional[float] = None
        while True:
            self._wake.wait(self.flush_seconds if not self.failures else backoff)
            self._wake.clear()
            if self._stop.is_set() and deadline is None:
                deadline = time.monotonic() + 10.0
            if self.flush():
                backoff = 0.5
            else:
                backoff = min(backoff * 2, 10.0)
            if self._stop.is_set() and (not self.pending or time.monotonic() > deadline):
                return

    def flush(self) -> bool:
        """Write what is queued; False when the database refused (it stays queued)."""
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), 20000))]
        try:
            if batch:
                self.store.ingest([o for o, _ in batch])
                done = time.monotonic()
                self.delays.extend(done - t for _, t in batch)
                self._after_write([o for o, _ in batch])
            self._write_alerts()
        except sa.exc.SQLAlchemyError as err:
            self._queue.extendleft(reversed(batch))  # back at the front, in order, with their hand-over times
            self.failures += 1
            self.last_error = str(getattr(err, "orig", err)).strip().splitlines()[0][:200] if str(err) else type(err).__name__
            log.warning("database write failed (%d queued, retrying): %s", self.pending, self.last_error)
            return False
        self.failures = 0
        self.last_error = ""
        return True

    def _after_write(self, observations: list[Observation]) -> None:
        now = time.time()
        self.written += len(observations)
        self.ages.extend(now - (o.start + o.seconds) for o in observations)
        with self._rules_lock:
            self._alerts.extend(self.engine.observe(observations))
        if self.on_written is not None:
            self.on_written(observations)

    def _write_alerts(self) -> None:
        while self._alerts:
            row = self.store.add_alert(self._alerts[0])
            self._alerts.popleft()
            if self.on_alert is not None:
                self.on_alert(row)

    def delay_percentiles(self) -> dict[str, Optional[float]]:
        """Recent ingest-to-database delays (submit to commit) and freshness (bucket end to commit), p50 and p95, seconds."""
        out: dict[str, Optional[float]] = {}
        for name, values in (("delay", self.delays), ("age", self.ages)):
            d = sorted(values)
            out[f"{name}_p50"] = round(d[len(d) // 2], 3) if d else None
            out[f"{name}_p95"] = round(d[min(len(d) - 1, int(0.95 * len(d)))], 3) if d else None
        return out
