"""``lrfer worker``: camera workers on one machine, pushing their buckets to a distant ``lrfer serve``.

:class:`RemoteSink` is the workers' sink. Every ``flush_seconds`` the observations gathered so far
become one batch with a fresh id, written to ``spool_dir/<batch_id>.json`` (atomically) before
it is sent, then ``POST {server}/api/ingest``-ed, oldest file first. A file is deleted once the
server took it (2xx; ``"duplicate": true`` means it had it already, from a reply that got lost),
so a network outage or a restart of the worker loses nothing: the files wait and are replayed,
and the batch id makes the replay idempotent. Connection errors, 5xx, 409 and 429 are retried
with exponential backoff; any other 4xx (a wrong token, a malformed batch) will not get better by
retrying: the file goes to ``spool_dir/rejected/`` and the reason to the log. A 403 that names
cameras (a scoped token, sent a camera outside its scope) parks those cameras: their part of the
batch goes to ``rejected/``, the rest is sent again, and nothing more of them is sent; ``run_worker``
stops their workers, and gives up with one line when every camera is parked.

Camera statuses are not spooled (only the latest matters): they ride with the next request, or
go alone when no batch is waiting, so the server sees the worker alive.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional, Union
from urllib.parse import urlsplit

import httpx

from ..errors import LrferError
from ..files import atomic_write_text
from ..infer.recognizer import Recognizer
from .camera import CameraWorker, shared_recognizer
from .config import Camera, Evidence, Model
from .records import CameraStatus, Observation

log = logging.getLogger(__name__)

#: Retryable answers besides connection errors and 5xx: a conflict and "too many requests".
RETRY_CODES = (409, 429)


class RemoteSink:
    """The sink of a remote worker's cameras: spool to disk, push to ``{server}/api/ingest``, replay.

    Call it with observations (from any thread), give it statuses with ``status``; ``close`` when
    done. ``max_backoff``: the longest wait between tries while the server is unreachable;
    ``max_spool_files``: beyond this many waiting batches the oldest are dropped (with a warning)
    rather than filling the disk during a very long outage.
    """

    def __init__(
        self,
        server: str,
        token: str,
        spool_dir: Union[str, Path],
        *,
        flush_seconds: float = 2.0,
        verify: bool = True,
        timeout: float = 10.0,
        max_backoff: float = 60.0,
        max_spool_files: int = 100_000,
    ):
        self.url = ingest_url(server)
        if not token:
            raise LrferError("no token for the server", "create a worker token on the server (Settings > Tokens) and pass --token")
        if flush_seconds <= 0:
            raise ValueError(f"flush_seconds must be positive, not {flush_seconds}")
        self.spool = Path(spool_dir)
        self.rejected_dir = self.spool / "rejected"
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        self.flush_seconds, self.max_backoff, self.max_spool_files = float(flush_seconds), float(max_backoff), int(max_spool_files)
        self.pushed = self.duplicates = self.rejected = 0  # batches, since this sink started
        self._client = httpx.Client(verify=verify, timeout=timeout, headers={"Authorization": f"Bearer {token}"})
        self._lock = threading.Lock()
        self._observations: list[dict] = []
        self._statuses: dict[str, dict] = {}
        self._delay = self.flush_seconds
        self._retry_at = 0.0  # monotonic time before which no push is tried
        self._failing = False  # inside an outage: its errors are logged once
        self._rejected_codes: set[int] = set()
        self.parked: dict[str, str] = {}  # camera id -> the server's reason: cameras this token may not write
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lrfer-remote", daemon=True)
        self._thread.start()

    def __call__(self, observations: Sequence[Observation]) -> None:
        with self._lock:
            self._observations.extend(o.to_json() for o in observations if o.camera_id not in self.parked)

    def status(self, status: CameraStatus) -> None:
        """A camera's status, sent with the next request (a newer one of the same camera replaces it)."""
        with self._lock:
            if status.camera_id not in self.parked:
                self._statuses[status.camera_id] = status.to_json()

    def pending(self) -> list[Path]:
        """The spooled batches, oldest first."""
        files = [(p.stat().st_mtime_ns, p.name, p) for p in self.spool.glob("*.json")]
        return [p for _, _, p in sorted(files)]

    def flush(self) -> Optional[Path]:
        """Write the observations gathered so far to a new spool file; None when there were none."""
        with self._lock:
            observations, self._observations = self._observations, []
        if not observations:
            return None
        batch_id = uuid.uuid4().hex
        path = atomic_write_text(self.spool / f"{batch_id}.json", json.dumps({"batch_id": batch_id, "observations": observations, "status": []}))
        self._trim()
        return path

    def push(self) -> bool:
        """Send the spooled batches, oldest first, until one fails; True when none is left waiting."""
        with self._lock:
            statuses, self._statuses = self._statuses, {}
        files = self.pending()
        if not files and statuses:
            sent = self._deliver({"batch_id": uuid.uuid4().hex, "observations": [], "status": list(statuses.values())}, None)
            if sent == "retry":
                self._restore(statuses)
            return sent != "retry"
        for path in files:
            try:
                body = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                log.error("remote: %s is not a readable batch (%s); moved to %s", path.name, err, self.rejected_dir)
                path.replace(self.rejected_dir / path.name)
                continue
            if statuses:
                body["status"] = list(statuses.values())
            outcome = self._deliver(body, path)
            if outcome == "retry":
                self._restore(statuses)
                return False
            if outcome == "ok":
                statuses = {}
        if statuses:
            self._restore(statuses)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Stop the pushing thread, spool what is left, try once more to send everything."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.flush()
        self._retry_at = 0.0
        try:
            if not self.push():
                log.warning("remote: %d batches stay in %s; they are sent when the worker runs again", len(self.pending()), self.spool)
        finally:
            self._client.close()

    # --------------------------------------------------------------------------------- inner
    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
                if time.monotonic() >= self._retry_at:
                    self.push()
            except Exception:  # a full disk, say: logged, and tried again next round
                log.exception("remote: pushing failed")

    def _deliver(self, body: dict, path: Optional[Path]) -> str:
        """``_send``, again after each refusal that parked cameras (each takes them out of the batch)."""
        outcome = self._send(body, path)
        while outcome == "parked":
            if not body["observations"] and not body.get("status"):
                return "ok"  # the batch held nothing but parked cameras; its file is gone
            outcome = self._send(body, path)
        return outcome

    def _send(self, body: dict, path: Optional[Path]) -> str:
        """POST one batch: "ok" (the server has it), "retry" (later, with backoff) or "rejected"."""
        try:
            r = self._client.post(self.url, json=body)
        except httpx.HTTPError as err:
            return self._retry(f"cannot reach {self.url} ({type(err).__name__}: {err})")
        if r.status_code >= 500 or r.status_code in RETRY_CODES:
            return self._retry(f"{self.url} answered {r.status_code} {_detail(r)}")
        if r.status_code == 403 and self._park(r, body, path):
            return "parked"
        if r.status_code >= 400:
            self._reject(r, path)
            return "rejected"
        if self._failing:
            log.info("remote: %s reachable again", self.url)
        self._failing, self._delay, self._retry_at = False, self.flush_seconds, 0.0
        self._rejected_codes.clear()
        duplicate = _json(r).get("duplicate") is True
        self.pushed += 1
        self.duplicates += duplicate
        if duplicate:
            log.debug("remote: batch %s was stored already", body["batch_id"])
        if path is not None:
            path.unlink(missing_ok=True)
        return "ok"

    def _retry(self, why: str) -> str:
        (log.debug if self._failing else log.warning)("remote: %s; batches wait in %s and are retried", why, self.spool)
        self._failing = True
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2.0, self.max_backoff)
        return "retry"

    def _reject(self, r: httpx.Response, path: Optional[Path]) -> None:
        self.rejected += 1
        where = f"; moved to {self.rejected_dir}" if path is not None else ""
        first = r.status_code not in self._rejected_codes
        self._rejected_codes.add(r.status_code)
        (log.error if first else log.debug)("remote: %s refused a batch: %s %s%s", self.url, r.status_code, _detail(r), where)
        if path is not None:
            path.replace(self.rejected_dir / path.name)

    def _park(self, r: httpx.Response, body: dict, path: Optional[Path]) -> bool:
        """A 403 naming cameras of ``body`` this token may not write: park them, keep their part of the
        batch in ``rejected/`` (a human may replay it once the token's scope is fixed), and leave the
        rest in ``body`` (and its file) to be sent again. False when the 403 names none of the batch's
        cameras (a token that is no worker's: rejected as a 401 is)."""
        named = _json(r).get("cameras")
        body.setdefault("status", [])
        ours = {o["camera_id"] for o in body["observations"]} | {st["camera_id"] for st in body["status"]}
        refused = {c for c in named if isinstance(c, str)} & ours if isinstance(named, list) else set()
        if not refused:
            return False
        detail = _detail(r)
        with self._lock:
            new = sorted(refused - set(self.parked))
            self.parked.update(dict.fromkeys(refused, detail))
            self._observations = [o for o in self._observations if o["camera_id"] not in refused]
            for cid in refused:
                self._statuses.pop(cid, None)
        if new:
            log.error("remote: the server refuses camera %s for this token (%s): parked, nothing more of it is sent "
                      "(give the token that camera on the server, then restart the worker)", ", ".join(new), detail)  # fmt: skip
        out = [o for o in body["observations"] if o["camera_id"] in refused]
        if out:
            batch_id = uuid.uuid4().hex
            atomic_write_text(self.rejected_dir / f"{batch_id}.json", json.dumps({"batch_id": batch_id, "observations": out, "status": []}))
        body["observations"] = [o for o in body["observations"] if o["camera_id"] not in refused]
        body["status"] = [st for st in body["status"] if st["camera_id"] not in refused]
        if path is not None:  # the server stored nothing of it: the same batch id, less the refused cameras
            if body["observations"]:
                atomic_write_text(path, json.dumps({**body, "status": []}))
            else:
                path.unlink(missing_ok=True)
        return True

    def _restore(self, statuses: dict[str, dict]) -> None:
        with self._lock:
            for camera_id, st in statuses.items():
                if camera_id not in self.parked:
                    self._statuses.setdefault(camera_id, st)  # a newer status that came meanwhile wins

    def _trim(self) -> None:
        files = self.pending()
        extra = len(files) - self.max_spool_files
        if extra > 0:
            log.warning("remote: %d batches waiting, more than %d: the %d oldest are dropped", len(files), self.max_spool_files, extra)
            for p in files[:extra]:
                p.unlink(missing_ok=True)


def ingest_url(server: str) -> str:
    """``{server}/api/ingest`` for a server's base URL (http or https)."""
    parts = urlsplit(server.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LrferError(f"not a server URL: {server!r}", "give the server's address, e.g. https://lrfer.example.org or http://127.0.0.1:8000")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        log.warning("remote: %s is plain http: the token and the data cross the network unencrypted (use https)", server)
    return server.strip().rstrip("/") + "/api/ingest"


def _json(r: httpx.Response) -> dict:
    try:
        out = r.json()
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _detail(r: httpx.Response) -> str:
    detail = _json(r).get("detail")
    return str(detail if detail is not None else r.reason_phrase)[:200]


def run_worker(
    server: str,
    token: str,
    cameras: list[Camera],
    *,
    spool_dir: Union[str, Path],
    model: Optional[Model] = None,
    recognizer: Optional[Callable[[], Recognizer]] = None,
    evidence: Optional[Evidence] = None,
    bucket_seconds: int = 5,
    flush_seconds: float = 2.0,
    verify: bool = True,
    speed: float = 1.0,
    stop: Optional[threading.Event] = None,
) -> None:
    """Run a CameraWorker per enabled camera, pushing to ``server``, until ``stop`` is set (or every
    camera has finished, for video files). ``recognizer``: a factory (default: one Recognizer from
    ``model``, shared by the cameras). Ctrl-C stops the workers cleanly, then propagates."""
    cameras = [c for c in cameras if c.enabled]
    if not cameras:
        raise LrferError("no cameras to run", "give --camera URL, or cameras in the config file")
    make = recognizer or shared_recognizer(model or Model())
    sink = RemoteSink(server, token, spool_dir, flush_seconds=flush_seconds, verify=verify)
    workers = [CameraWorker(c, make, sink, bucket_seconds=bucket_seconds, evidence=evidence, on_status=sink.status, speed=speed) for c in cameras]
    stop = stop or threading.Event()
    try:
        for w in workers:
            w.start()
        while not stop.wait(0.5):
            for w in workers:
                if w.camera.id in sink.parked and w.alive:
                    w.stop()  # the server refuses this camera for the token: analysing it is wasted work
            if not any(w.alive for w in workers):
                break
    finally:
        for w in workers:
            w.stop()
        for w in workers:
            sink.status(w.status)  # the final state goes with the last push
        sink.close()
    if all(c.id in sink.parked for c in cameras):
        raise LrferError(
            f"the server refuses this token for every camera here ({', '.join(c.id for c in cameras)})",
            "ask an admin for a worker token whose scope includes them (Settings > API tokens), then run the worker again",
        )
