"""The service: the store, the recorder, the alert rules, the notifier, one worker per camera.

``Service(config)`` opens the database (SQLite in the data folder unless ``server.db`` names one),
puts the config's cameras in it, and ``start()`` starts a worker for every enabled camera of the
database (the config's and those added through the API). ``stop()`` stops the workers (each
flushes its open buckets), then the recorder (which writes what is queued), then the notifier.
The HTTP side (:func:`lrfer.serve.app.create_app`) talks to it through the methods below.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from ..infer.recognizer import Face, Recognizer
from .alerts import AlertEngine
from .camera import CameraWorker, shared_recognizer
from .config import Camera, Rule, ServeConfig
from .events import EventHub
from .notify import Notifier
from .recorder import Recorder
from .records import CameraStatus, Observation
from .store import Store

log = logging.getLogger(__name__)

PURGE_EVERY = 3600.0  # seconds between retention purges
REMIND_CHECK = 30.0  # at most this many seconds between looks for alerts to send again
REMOTE = "remote://"  # the URL of a camera that a remote worker reads (``lrfer worker``)


def database_url(config: ServeConfig) -> str:
    if config.server.db:
        return config.server.db
    data = Path(config.server.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data.resolve() / 'lrfer.sqlite3'}"


class Service:
    def __init__(self, config: ServeConfig, *, speed: float = 1.0, recognizer: Optional[Callable[[], Recognizer]] = None):
        self.config = config
        self.speed = speed  # video-file cameras: 1 plays in real time (0: as fast as possible; benchmarks)
        self._make_recognizer = recognizer or shared_recognizer(config.model)
        self.store = Store(database_url(config))
        self.hub = EventHub()
        for cam in config.cameras:
            self.store.put_camera(cam)
        # One dict, shared: alert messages and Home Assistant devices say "Lounge", not "lounge".
        self.camera_names = {row["id"]: row.get("name") or row["id"] for row in self.store.list_cameras()}
        self.engine = AlertEngine([r for r in config.rules if r.enabled], bucket_seconds=config.server.bucket_seconds, camera_names=self.camera_names)
        self.notifier = Notifier(config.webhooks, config.mqtt, camera_names=self.camera_names)
        for camera_id, m in self.store.active_mutes(time.time()).items():  # a restart keeps the mutes
            self.engine.mute(camera_id, m["until"])
        self.recorder = Recorder(self.store, self.engine, flush_seconds=config.server.flush_seconds, on_alert=self._alert_opened, on_written=self._written)
        self._apply_rules()  # the file's rules and those made on the dashboard
        self.workers: dict[str, CameraWorker] = {}
        self.remote: dict[str, CameraStatus] = {}  # cameras of remote workers, by id: their last status
        self._lock = threading.RLock()
        self._analyzer: Optional[Recognizer] = None
        self._analyze_lock = threading.Lock()
        self._stopping = threading.Event()
        self._maintenance: Optional[threading.Thread] = None
        self._reminder: Optional[threading.Thread] = None
        self.started_at = time.time()

    # --------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.recorder.start()
        for row in self.store.list_cameras():
            cam = Camera.model_validate({k: v for k, v in row.items() if k in Camera.model_fields})
            if cam.enabled and not cam.url.startswith(REMOTE):
                self._start_worker(cam)
        self._maintenance = threading.Thread(target=self._maintain, name="lrfer-retention", daemon=True)
        self._maintenance.start()
        if self.config.reminders.minutes > 0:
            self._reminder = threading.Thread(target=self._remind_loop, name="lrfer-reminders", daemon=True)
            self._reminder.start()

    def stop(self) -> None:
        """Stop cleanly (SIGTERM): workers flush their open buckets, the recorder writes its queue."""
        self._stopping.set()
        with self._lock:
            workers, self.workers = list(self.workers.values()), {}
        for w in workers:
            w.stop()
        self.recorder.stop()
        self.notifier.close()
        for thread in (self._maintenance, self._reminder):
            if thread is not None:
                thread.join(5)
        self.store.close()

    def _start_worker(self, cam: Camera) -> None:
        s = self.config.server
        worker = CameraWorker(
            cam, self._make_recognizer, self.recorder.submit, bucket_seconds=s.bucket_seconds, evidence=self.config.evidence, on_status=self._status, speed=self.speed
        )
        with self._lock:
            old = self.workers.pop(cam.id, None)
            if old is not None:
                old.stop()
            self.workers[cam.id] = worker
        worker.start()

    def _maintain(self) -> None:
        """Delete what is past retention: at start, then every hour."""
        while True:
            try:
                out = self.store.purge(time.time(), self.config.retention)
                if any(out.values()):
                    log.info("retention: deleted %s", out)
            except Exception as err:  # the database may be down; the next round tries again
                log.warning("retention purge failed: %s", err)
            if self._stopping.wait(PURGE_EVERY):
                return

    def _remind_loop(self) -> None:
        # a quarter of the interval between looks, so a reminder is late by at most that (30 s)
        every = min(REMIND_CHECK, max(0.5, 15.0 * self.config.reminders.minutes))
        while not self._stopping.wait(every):
            try:
                self.remind(time.time())
            except Exception as err:  # the database may be down; the next look tries again
                log.warning("reminders failed: %s", err)

    def remind(self, now: float) -> list[dict]:
        """Send again (``alert.reminder``) each open alert that is due (:class:`~lrfer.serve.config.Reminders`)."""
        r = self.config.reminders
        sent = []
        for alert in self.store.due_reminders(now, r.minutes, r.times):
            if self.engine.is_muted(alert["camera_id"], now):  # staff said why; due again once the mute ends
                continue
            row = self.store.mark_reminded(alert, now)
            if row is not None:  # acknowledged meanwhile: no reminder
                self.alert_changed("alert.reminder", row)
                sent.append(row)
        return sent

    def false_alarm(self, alert: dict) -> bool:
        """Staff said a track's alert was a false alarm: that person's face at that share is fine,
        so their rules now ask for more (:meth:`AlertEngine.false_alarm`). A zone's alert changes nothing."""
        share = (alert.get("evidence") or {}).get("share")
        if not alert.get("track_key") or share is None:
            return False
        return self.engine.false_alarm(alert["camera_id"], alert["track_key"], share)

    def mute(self, camera_id: str, minutes: float, by: str, note: str = "") -> dict:
        """Raise no alert on the camera for ``minutes`` (staff know why: a party, a visit)."""
        row = self.store.put_mute(camera_id, time.time() + 60.0 * minutes, by, note)
        self.engine.mute(camera_id, row["until"])
        return row

    def unmute(self, camera_id: str) -> bool:
        self.engine.mute(camera_id, None)
        return self.store.delete_mute(camera_id)

    # ------------------------------------------------------------------------------ events
    def _status(self, status: CameraStatus) -> None:
        self.hub.publish("status", status.to_json())
        self.notifier.publish_status(status)

    def _alert_opened(self, alert: dict) -> None:
        self.hub.publish("alert", {"event": "alert.opened", "alert": alert})
        self.notifier.send("alert.opened", alert)

    def alert_changed(self, kind: str, alert: dict) -> None:
        """An alert was acknowledged or resolved (the API tells), or is sent again (``kind``: alert.acknowledged/resolved/reminder)."""
        self.hub.publish("alert", {"event": kind, "alert": alert})
        self.notifier.send(kind, alert)

    def _written(self, observations: list[Observation]) -> None:
        if not observations:
            return
        cams = sorted({o.camera_id for o in observations})
        self.hub.publish("bucket", {"cameras": cams, "until": max(o.start + o.seconds for o in observations)})

    # ----------------------------------------------------------------------------- cameras
    def statuses(self) -> dict[str, CameraStatus]:
        with self._lock:
            out = {cid: w.status for cid, w in self.workers.items()}
        for cid, st in list(self.remote.items()):
            out.setdefault(cid, st)
        for row in self.store.list_cameras():
            out.setdefault(row["id"], CameraStatus(row["id"], state="stopped" if not row["enabled"] else "remote", since=row["updated_at"]))
        return out

    def worker(self, camera_id: str) -> Optional[CameraWorker]:
        with self._lock:
            return self.workers.get(camera_id)

    def put_camera(self, camera: Camera) -> dict:
        """Add or edit a camera; its worker (re)starts with the new settings."""
        row = self.store.put_camera(camera)
        self.camera_names[camera.id] = camera.name or camera.id
        if camera.enabled and not camera.url.startswith(REMOTE) and not self._stopping.is_set():
            self._start_worker(camera)
        else:
            self._stop_worker(camera.id)
        return row

    def delete_camera(self, camera_id: str) -> bool:
        self._stop_worker(camera_id)
        self.remote.pop(camera_id, None)
        self.engine.mute(camera_id, None)
        return self.store.delete_camera(camera_id)

    def _stop_worker(self, camera_id: str) -> None:
        with self._lock:
            w = self.workers.pop(camera_id, None)
        if w is not None:
            w.stop()

    # ------------------------------------------------------------------------------- rules
    def rules(self) -> list[tuple[Rule, str]]:
        """Every rule with where it lives: ``"config"`` (the file, edited there) or ``"dashboard"``
        (the database, edited through the API); a file's rule hides a stored one of its name."""
        in_file = {r.name for r in self.config.rules}
        return [(r, "config") for r in self.config.rules] + [(r, "dashboard") for r in self.store.list_rules() if r.name not in in_file]

    def put_rule(self, rule: Rule) -> None:
        self.store.put_rule(rule)
        self._apply_rules()

    def delete_rule(self, name: str) -> bool:
        gone = self.store.delete_rule(name)
        self._apply_rules()
        return gone

    def _apply_rules(self) -> None:
        self.recorder.set_rules([r for r, _ in self.rules() if r.enabled])

    # -------------------------------------------------------------------- remote, analyze
    def ingest(self, batch_id: str, observations: list[Observation], statuses: list[CameraStatus], site: str = "remote") -> bool:
        """A remote worker's batch: stored before this returns (False: that batch was stored before).

        A camera id the service has not seen is registered as ``remote://<site>``, so a second
        site's cameras appear on the dashboard beside the local ones (and are never opened here)."""
        for cid in {o.camera_id for o in observations} | {st.camera_id for st in statuses}:
            if cid not in self.camera_names:
                self.store.put_camera(Camera(id=cid, name=cid, url=f"{REMOTE}{site}", site=site[:64] or "remote"))
                self.camera_names[cid] = cid
        for st in statuses:
            self.remote[st.camera_id] = st
            self._status(st)
        if not observations:  # a heartbeat: statuses only, nothing to store (nor its batch id: one every 2 s)
            return True
        return self.recorder.write(observations, batch_id)

    def analyze(self, image: np.ndarray) -> list[Face]:
        """The faces of one photo (``POST /api/analyze``), with one shared Recognizer."""
        with self._analyze_lock:
            if self._analyzer is None:
                self._analyzer = self._make_recognizer()
            return self._analyzer.predict(image)
