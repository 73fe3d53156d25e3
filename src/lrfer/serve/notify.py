"""Alerts out of the service: signed webhooks and MQTT (with Home Assistant discovery).

Nothing here may stall a camera or the recorder: :meth:`Notifier.send` puts the event on a bounded
queue and returns; one thread posts the webhooks and schedules their retries (exponential backoff,
a few tries, then logged and dropped), so a dead receiver delays nobody else. MQTT rides on
paho-mqtt's own network thread, which reconnects with backoff; a broker that is down is logged,
never raised. The last payload of each retained topic (discovery configs, camera states, last
alerts) is kept and published again on every reconnection: a broker restarted without
persistence has forgotten them, and Home Assistant would show "unknown" until the next change. Receivers verify ``X-Lrfer-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body
with the webhook's secret, and may use ``X-Lrfer-Delivery`` to drop a repeat (a retry after a
timeout can deliver twice).
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import httpx

from .config import Mqtt, Webhook
from .records import CameraStatus

try:  # MQTT is optional: the serve extra installs paho-mqtt, a bare install may lack it
    import paho.mqtt.client as paho
except ImportError:  # pragma: no cover
    paho = None

log = logging.getLogger(__name__)

ALERT_KINDS = ("alert.opened", "alert.reminder", "alert.acknowledged", "alert.resolved")


def signature(secret: str, body: bytes) -> str:
    """The ``X-Lrfer-Signature`` value for ``body``: ``sha256=`` and the hex HMAC-SHA256 with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    webhook: Webhook
    kind: str
    delivery_id: str
    body: bytes
    attempt: int = 1


class _Webhooks:
    """The delivery thread: new events from a queue, retries from a heap ordered by due time."""

    def __init__(self, webhooks: list[Webhook], *, queue_size: int, tries: int, backoff: tuple[float, float], timeout: float):
        self.webhooks = webhooks
        self.tries = tries
        self.backoff = backoff
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._retries: list[_Delivery] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="lrfer-notify", daemon=True)
        self._thread.start()

    def put(self, kind: str, payload: dict[str, Any]) -> bool:
        targets = [w for w in self.webhooks if kind in w.events]
        if not targets:
            return True
        delivery_id = uuid.uuid4().hex
        body = json.dumps({"event": kind, "id": delivery_id, "sent_at": time.time(), "data": payload}, default=str).encode()
        try:
            for w in targets:
                self.queue.put_nowait(_Delivery(0.0, next(self._seq), w, kind, delivery_id, body))
        except queue.Full:
            log.warning("notify: the webhook queue is full (%d); %s dropped", self.queue.maxsize, kind)
            return False
        return True

    def close(self, timeout: float) -> None:
        """Stop taking work; deliver what is queued or due within ``timeout`` seconds, then drop the rest."""
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._thread.join(timeout + 1.0)
        self._client.close()

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            if self._stop.is_set() and (now >= self._deadline or (self.queue.empty() and not self._retries)):
                break
            if self._retries and self._retries[0].due <= now:
                self._deliver(heapq.heappop(self._retries))
                continue
            wait = min(self._retries[0].due - now if self._retries else 0.5, 0.5)
            try:
                self._deliver(self.queue.get(timeout=max(wait, 0.01)))
            except queue.Empty:
                continue
        left = self.queue.qsize() + len(self._retries)
        if left:
            log.warning("notify: closing with %d webhook deliveries undelivered; dropped", left)

    def _deliver(self, d: _Delivery) -> None:
        headers = {"Content-Type": "application/json", "X-Lrfer-Event": d.kind, "X-Lrfer-Delivery": d.delivery_id, "User-Agent": "lrfer-serve"}
        if d.webhook.secret:
            headers["X-Lrfer-Signature"] = signature(d.webhook.secret, d.body)
        try:
            r = self._client.post(d.webhook.url, content=d.body, headers=headers)
            if r.is_success:
                return
            if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
                log.warning("notify: %s refused %s with HTTP %d; not retried", d.webhook.url, d.kind, r.status_code)
                return
            why = f"HTTP {r.status_code}"
        except httpx.HTTPError as err:
            why = f"{type(err).__name__}: {err}"
        if d.attempt >= self.tries:
            log.warning("notify: %s failed %d times (%s); %s dropped", d.webhook.url, d.attempt, why, d.kind)
            return
        delay = min(self.backoff[0] * 2 ** (d.attempt - 1), self.backoff[1])
        log.info("notify: %s failed (%s); retry %d in %.1f s", d.webhook.url, why, d.attempt + 1, delay)
        d.attempt += 1
        d.due = time.monotonic() + delay
        heapq.heappush(self._retries, d)


# ---------------------------------------------------------------------- MQTT
def discovery_configs(mqtt: Mqtt, camera_id: str, name: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Home Assistant MQTT discovery for one camera: (config topic, payload) pairs, published retained.

    Three sensors on one device per camera: its state (with the whole status as attributes), the
    faces seen now, and the last alert's message.
    """
    prefix, node = mqtt.topic_prefix, f"lrfer_{camera_id}".replace("-", "_")
    state = f"{prefix}/{camera_id}/state"
    device = {"identifiers": [node], "name": f"lrfer {name or camera_id}", "manufacturer": "lrfer", "model": "lrfer serve camera"}
    common = {"availability_topic": f"{prefix}/status", "device": device}
    sensors = [
        ("state", {"name": "State", "state_topic": state, "value_template": "{{ value_json.state }}", "json_attributes_topic": state, "icon": "mdi:cctv"}),
        ("faces", {"name": "Faces", "state_topic": state, "value_template": "{{ value_json.faces_now }}", "unit_of_measurement": "faces",
                   "state_class": "measurement", "icon": "mdi:account-group"}),
        ("alert", {"name": "Last alert", "state_topic": f"{prefix}/{camera_id}/alert", "value_template": "{{ value_json.message[:250] }}",
                   "json_attributes_topic": f"{prefix}/{camera_id}/alert", "icon": "mdi:alert"}),
    ]
    return [
        (f"{mqtt.discovery_prefix}/sensor/{node}/{key}/config", {**cfg, **common, "unique_id": f"{node}_{key}"})
        for key, cfg in sensors
    ]


class _Mqtt:
    """A paho-mqtt 2 client on its own network thread; every failure is logged, none is raised."""

    def __init__(self, cfg: Mqtt, names: dict[str, str]):
        self.cfg = cfg
        self.names = names
        self.cameras: set[str] = set()
        self._down_logged = False
        self._refused_logged = False  # apart from _down_logged: a lost connection said first must not hide a refusal's reason
        # topic -> the last payload published retained; the lock keeps the order of a republication
        # and a newer publication of the same topic (the broker keeps whichever comes last)
        self._retained: dict[str, str] = {}
        self._lock = threading.RLock()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"lrfer-{uuid.uuid4().hex[:8]}")
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password or None)
        client.will_set(f"{cfg.topic_prefix}/status", "offline", qos=1, retain=True)
        client.max_queued_messages_set(1000)  # while the broker is away: bounded, the oldest kept
        client.reconnect_delay_set(1, 60)
        client.connect_timeout = 3.0
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        self.client = client
        try:
            client.connect_async(cfg.host, cfg.port)
            client.loop_start()
        except Exception as err:  # a bad host name or an exhausted thread pool must not stop the service
            log.warning("mqtt: cannot start the client for %s:%d: %s", cfg.host, cfg.port, err)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:  # a wrong password: paho tries again with backoff; said once
            if not self._refused_logged:
                log.warning("mqtt: %s:%d refused the connection: %s (check [mqtt] username and password)", self.cfg.host, self.cfg.port, reason_code)
                self._refused_logged = self._down_logged = True
            return
        log.info("mqtt: connected to %s:%d", self.cfg.host, self.cfg.port)
        self._down_logged = self._refused_logged = False
        client.publish(f"{self.cfg.topic_prefix}/status", "online", qos=1, retain=True)
        with self._lock:  # the discovery configs, states and last alerts, again: the broker may be a new one
            for topic, text in self._retained.items():
                self._publish(topic, text, retain=True)

    def _on_connect_fail(self, client, userdata) -> None:
        if not self._down_logged:
            log.warning("mqtt: cannot reach %s:%d; retrying in the background", self.cfg.host, self.cfg.port)
            self._down_logged = True

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure and not self._down_logged:
            log.warning("mqtt: lost %s:%d (%s); reconnecting", self.cfg.host, self.cfg.port, reason_code)
            self._down_logged = True

    def _announce(self, camera_id: str) -> None:
        if self.cfg.discovery:
            for topic, payload in discovery_configs(self.cfg, camera_id, self.names.get(camera_id, "")):
                self.publish(topic, payload, retain=True)

    def publish(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        text = json.dumps(payload, default=str)
        with self._lock:
            if retain:
                self._retained[topic] = text
            self._publish(topic, text, retain=retain)

    def _publish(self, topic: str, text: str, *, retain: bool) -> None:
        try:
            self.client.publish(topic, text, qos=1, retain=retain)
        except Exception as err:  # paho raises on a full queue or a payload it refuses; a lost message is logged, not raised
            log.warning("mqtt: %s not published: %s", topic, err)

    def status(self, status: CameraStatus) -> None:
        if status.camera_id not in self.cameras:
            self.cameras.add(status.camera_id)
            self._announce(status.camera_id)
        self.publish(f"{self.cfg.topic_prefix}/{status.camera_id}/state", status.to_json(), retain=True)

    def alert(self, kind: str, payload: dict[str, Any]) -> None:
        msg = {"event": kind, **payload}
        self.publish(f"{self.cfg.topic_prefix}/alerts", msg)
        if payload.get("camera_id"):
            self.publish(f"{self.cfg.topic_prefix}/{payload['camera_id']}/alert", msg, retain=True)

    def close(self) -> None:
        try:
            if self.client.is_connected():
                self.client.publish(f"{self.cfg.topic_prefix}/status", "offline", qos=1, retain=True)
            self.client.disconnect()
            self.client.loop_stop()
        except Exception as err:
            log.warning("mqtt: closing: %s", err)


class Notifier:
    """Sends alert events to the configured webhooks and MQTT broker, never blocking the caller.

    ``send(kind, payload)``: ``kind`` is one of ``alert.opened``, ``alert.acknowledged``,
    ``alert.resolved``; ``payload`` the alert as the store returns it (a JSON-ready dict).
    ``camera_names`` (read when a camera is first announced) names the Home Assistant devices.
    """

    def __init__(
        self,
        webhooks: list[Webhook],
        mqtt: Optional[Mqtt] = None,
        *,
        camera_names: Optional[dict[str, str]] = None,
        queue_size: int = 1000,
        tries: int = 5,
        backoff: tuple[float, float] = (1.0, 30.0),
        timeout: float = 5.0,
    ):
        self._webhooks = _Webhooks(list(webhooks), queue_size=queue_size, tries=tries, backoff=backoff, timeout=timeout)
        self._mqtt: Optional[_Mqtt] = None
        if mqtt is not None:
            if paho is None:
                log.warning("mqtt: paho-mqtt is not installed (pip install 'lrfer[serve]'); MQTT is off")
            else:
                self._mqtt = _Mqtt(mqtt, camera_names if camera_names is not None else {})
        self._closed = False

    def send(self, kind: str, payload: dict[str, Any]) -> bool:
        """Queue an event for delivery; False when it was dropped (closed, or the queue is full)."""
        if self._closed:
            return False
        if self._mqtt is not None and kind in ALERT_KINDS:
            self._mqtt.alert(kind, payload)
        return self._webhooks.put(kind, payload)

    def publish_status(self, status: CameraStatus) -> None:
        """A camera's status to MQTT (retained), announcing the camera to Home Assistant the first time."""
        if self._mqtt is not None and not self._closed:
            self._mqtt.status(status)

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is pending for at most ``timeout`` seconds, then stop (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._webhooks.close(timeout)
        if self._mqtt is not None:
            self._mqtt.close()
