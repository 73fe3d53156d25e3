"""Notifier against real receivers on loopback: an HTTP server for the webhooks; Home Assistant's
discovery configs; a broker that is not there. MQTT against a real broker (mosquitto, with a
password file) is in test_mqtt_broker.py."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lrfer.serve.config import Mqtt, Webhook
from lrfer.serve.notify import Notifier, discovery_configs, signature
from lrfer.serve.records import CameraStatus

from ._util import free_port, wait_for

SECRET = "s3cret"
ALERT = {"id": 7, "camera_id": "lounge", "zone": "", "rule": "distress", "message": "Lounge: a person has looked distressed for 2 min (62% negative)"}




class Receiver:
    """A webhook receiver on a free loopback port answering each POST with the next status in ``replies``."""

    def __init__(self, replies=(200,), delay: float = 0.0):
        self.replies = list(replies)
        self.requests: list[tuple[int, dict, bytes]] = []  # (status sent, headers, body)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                code = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                outer.requests.append((code, dict(self.headers), body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self) -> list[tuple[dict, bytes]]:
        return [(h, b) for code, h, b in self.requests if 200 <= code < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver(request):
    r = Receiver(*getattr(request, "param", ((200,),)))
    yield r
    r.close()




@pytest.mark.parametrize("receiver", [((500, 503, 200),)], indirect=True)
def test_webhook_is_signed_and_retried_until_delivered_once(receiver):
    n = Notifier([Webhook(url=receiver.url, secret=SECRET)], backoff=(0.05, 0.2))
    try:
        assert n.send("alert.opened", ALERT) is True
        assert wait_for(lambda: receiver.delivered())
        time.sleep(0.3)  # a wrong retry after the success would arrive by now
    finally:
        n.close()
    assert [code for code, _, _ in receiver.requests] == [500, 503, 200]
    (headers, body), = receiver.delivered()
    assert headers["X-Lrfer-Signature"] == "sha256=" + hmac.new(SECRET.encode(), body, "sha256").hexdigest()
    assert headers["X-Lrfer-Signature"] == signature(SECRET, body)
    assert headers["X-Lrfer-Event"] == "alert.opened" and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["event"] == "alert.opened" and doc["data"] == ALERT
    # the three tries are one delivery: the same id and the same signed body each time
    assert len({h["X-Lrfer-Delivery"] for _, h, _ in receiver.requests}) == 1
    assert len({b for _, _, b in receiver.requests}) == 1


def test_webhook_without_secret_is_unsigned_and_filtered_by_event(receiver):
    n = Notifier([Webhook(url=receiver.url, events=["alert.resolved"])])
    try:
        n.send("alert.opened", ALERT)
        n.send("alert.resolved", {**ALERT, "resolved_by": "nurse"})
        assert wait_for(lambda: receiver.delivered())
    finally:
        n.close()
    (headers, body), = receiver.delivered()
    assert headers["X-Lrfer-Event"] == "alert.resolved" and "X-Lrfer-Signature" not in headers
    assert json.loads(body)["data"]["resolved_by"] == "nurse"


@pytest.mark.parametrize("receiver", [((404,),)], indirect=True)
def test_a_refusal_is_not_retried(receiver, caplog):
    n = Notifier([Webhook(url=receiver.url)], backoff=(0.05, 0.1))
    with caplog.at_level(logging.WARNING, logger="lrfer.serve.notify"):
        n.send("alert.opened", ALERT)
        assert wait_for(lambda: receiver.requests)
        time.sleep(0.3)
        n.close()
    assert len(receiver.requests) == 1
    assert "HTTP 404; not retried" in caplog.text


@pytest.mark.parametrize("receiver", [((200,), 0.3)], indirect=True)
def test_send_never_blocks_and_the_queue_is_bounded(receiver, caplog):
    n = Notifier([Webhook(url=receiver.url)], queue_size=5)
    try:
        t0 = time.perf_counter()
        with caplog.at_level(logging.WARNING, logger="lrfer.serve.notify"):
            sent = [n.send("alert.opened", {**ALERT, "id": i}) for i in range(50)]
        assert time.perf_counter() - t0 < 0.2  # 50 sends to a receiver taking 0.3 s each
        assert sent[:5] == [True] * 5 and not all(sent)
        assert "queue is full" in caplog.text
    finally:
        n.close(timeout=0.5)


def test_close_drains_briefly_when_the_receiver_is_down(caplog):
    n = Notifier([Webhook(url=f"http://127.0.0.1:{free_port()}/hook")], backoff=(0.2, 1.0), timeout=0.5)
    n.send("alert.opened", ALERT)
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="lrfer.serve.notify"):
        n.close(timeout=0.5)
    assert time.perf_counter() - t0 < 2.5
    assert "undelivered; dropped" in caplog.text
    assert n.send("alert.opened", ALERT) is False  # closed
    assert not [t for t in threading.enumerate() if t.name == "lrfer-notify"]


# ---------------------------------------------------------------------- MQTT
def test_discovery_configs_for_home_assistant():
    cfg = Mqtt(host="broker", topic_prefix="care", discovery_prefix="homeassistant")
    configs = dict(discovery_configs(cfg, "lounge-1", "Lounge"))
    assert sorted(configs) == [f"homeassistant/sensor/lrfer_lounge_1/{k}/config" for k in ("alert", "faces", "state")]
    state = configs["homeassistant/sensor/lrfer_lounge_1/state/config"]
    assert state["state_topic"] == "care/lounge-1/state" and state["json_attributes_topic"] == "care/lounge-1/state"
    assert state["value_template"] == "{{ value_json.state }}" and state["availability_topic"] == "care/status"
    assert state["device"]["identifiers"] == ["lrfer_lounge_1"] and state["device"]["name"] == "lrfer Lounge"
    faces = configs["homeassistant/sensor/lrfer_lounge_1/faces/config"]
    assert faces["value_template"] == "{{ value_json.faces_now }}" and faces["state_class"] == "measurement"
    assert configs["homeassistant/sensor/lrfer_lounge_1/alert/config"]["state_topic"] == "care/lounge-1/alert"
    ids = [c["unique_id"] for c in configs.values()]
    assert len(set(ids)) == 3 and all(i.startswith("lrfer_lounge_1_") for i in ids)
    assert all(json.loads(json.dumps(c)) == c for c in configs.values())  # JSON-ready


def test_an_unreachable_broker_is_logged_never_raised(caplog):
    before = set(threading.enumerate())
    with caplog.at_level(logging.WARNING, logger="lrfer.serve.notify"):
        n = Notifier([], Mqtt(host="127.0.0.1", port=free_port()))
        n.publish_status(CameraStatus("lounge", state="live"))
        assert n.send("alert.opened", ALERT) is True
        assert wait_for(lambda: "cannot reach 127.0.0.1" in caplog.text)
        t0 = time.perf_counter()
        n.close()
    assert time.perf_counter() - t0 < 3.0
    assert caplog.text.count("cannot reach") == 1  # once per outage, not once per retry
    assert set(threading.enumerate()) <= before
