"""MQTT against a real broker: Debian's mosquitto on loopback, password file, anonymous refused.
The service's notifier publishes; a paho client subscribes as Home Assistant does and sees the
discovery configs (retained), the cameras' state, the alerts, ``offline`` when the service stops
and when it dies (the will), and everything retained again after the broker restarts."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

from lrfer.serve.config import Mqtt, ServeConfig
from lrfer.serve.notify import Notifier
from lrfer.serve.records import AlertEvent, CameraStatus

from ._live import LiveServer
from ._mosquitto import PASSWORD, USER, Mosquitto, Subscriber, mosquitto_bin
from ._util import free_port, wait_for

ALERT = {"id": 7, "camera_id": "lounge", "zone": "", "rule": "distress", "message": "Lounge: a person has looked distressed for 2 min (62% negative)"}
HA = ("homeassistant/#", "care/#")  # what Home Assistant subscribes to: its discovery prefix, and the topics the configs name
CONFIGS = [f"homeassistant/sensor/lrfer_lounge/{k}/config" for k in ("state", "faces", "alert")]


@pytest.fixture
def broker():
    if mosquitto_bin() is None:
        pytest.skip("mosquitto not installed (CI installs it: apt-get install mosquitto)")
    b = Mosquitto(Path(tempfile.mkdtemp(prefix="lrfer-mqtt-")))
    yield b
    b.close()


@pytest.fixture
def subscribers():
    made: list[Subscriber] = []
    yield made
    for s in made:
        s.close()


def _mqtt(broker: Mosquitto, **kw) -> Mqtt:
    return Mqtt(**{"host": "127.0.0.1", "port": broker.port, "username": USER, "password": PASSWORD, "topic_prefix": "care", **kw})


def _notifier_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("paho-mqtt-client-lrfer", "lrfer-notify"))]


def test_home_assistant_finds_discovery_state_and_alerts(broker, subscribers):
    live = Subscriber(broker.port, HA)
    subscribers.append(live)
    n = Notifier([], _mqtt(broker), camera_names={"lounge": "Lounge"})
    try:
        live.wait("care/status", b"online")
        n.publish_status(CameraStatus("lounge", state="live", faces_now=3))
        n.send("alert.opened", ALERT)
        event = live.wait("care/alerts")
        assert json.loads(event.payload) == {"event": "alert.opened", **ALERT}

        late = Subscriber(broker.port, HA)  # Home Assistant started afterwards: the broker hands it what is retained
        subscribers.append(late)
        for topic in [*CONFIGS, "care/lounge/state", "care/lounge/alert", "care/status"]:
            assert late.wait(topic, timeout=5).retain, f"{topic} is not retained"
        state = json.loads(late.last("homeassistant/sensor/lrfer_lounge/state/config").payload)
        assert state["state_topic"] == "care/lounge/state" and state["availability_topic"] == "care/status"
        assert state["device"]["name"] == "lrfer Lounge" and state["unique_id"] == "lrfer_lounge_state"
        faces = json.loads(late.last("homeassistant/sensor/lrfer_lounge/faces/config").payload)
        assert faces["value_template"] == "{{ value_json.faces_now }}"
        assert json.loads(late.last("care/lounge/state").payload)["faces_now"] == 3
        assert json.loads(late.last("care/lounge/alert").payload)["message"].startswith("Lounge:")
        assert late.on("care/alerts") == []  # an alert event is news, not state: never retained
    finally:
        n.close()
    live.wait("care/status", b"offline")  # a subscriber already there gets retain=0 (MQTT 3.1.1, 3.3.1.3)
    _assert_retained(broker, subscribers, "care/status", b"offline")
    assert not _notifier_threads()


def _assert_retained(broker: Mosquitto, subscribers: list, topic: str, payload: bytes) -> None:
    """What a client subscribing now finds on ``topic``: ``payload``, retained."""
    s = Subscriber(broker.port, (topic,))
    subscribers.append(s)
    got = s.wait(topic, timeout=5)
    assert got.retain and got.payload == payload, got


def test_the_broker_refuses_a_wrong_password_and_anonymous_clients(broker, subscribers, caplog):
    watch = Subscriber(broker.port, HA)
    subscribers.append(watch)
    with caplog.at_level(logging.WARNING, logger="lrfer.serve.notify"):
        for mqtt in (_mqtt(broker, password="not-the-password"), _mqtt(broker, username="", password="")):
            caplog.clear()
            refused_before = broker.log.read_text().count("not authorised")
            n = Notifier([], mqtt)
            try:
                n.publish_status(CameraStatus("lounge", state="live"))
                assert wait_for(lambda: "refused the connection" in caplog.text, 30), broker.log.read_text()[-3000:]
                # paho tries again (after 1 s, 2 s, ...): each refusal is in the broker's log, one line in ours
                assert wait_for(lambda n0=refused_before: broker.log.read_text().count("not authorised") >= n0 + 2, 30), broker.log.read_text()[-3000:]
            finally:
                n.close()
            assert caplog.text.count("refused the connection") == 1 and "Not authorized" in caplog.text
    assert watch.messages == []  # nothing got through
    assert not _notifier_threads()


def test_the_service_publishes_and_says_offline_when_it_stops(broker, subscribers, tmp_path):
    """The whole service with [mqtt]: a remote camera's status and an alert acknowledged through
    the API reach Home Assistant; stopping the service leaves ``offline`` retained."""
    cfg = ServeConfig()
    cfg.server.db, cfg.server.data_dir, cfg.mqtt = f"sqlite:///{tmp_path / 'lrfer.sqlite3'}", str(tmp_path), _mqtt(broker)
    live = Subscriber(broker.port, HA)
    subscribers.append(live)
    srv = LiveServer(cfg).start()
    try:
        live.wait("care/status", b"online")
        token, _ = srv.add_token("worker", name="site-b")
        status = {"camera_id": "lounge", "state": "live", "since": 1.0, "faces_now": 2}
        with srv.bearer(token) as w:
            w.post("/api/ingest", json={"batch_id": uuid.uuid4().hex, "observations": [], "status": [status]}).raise_for_status()
        assert json.loads(live.wait("care/lounge/state").payload)["faces_now"] == 2
        live.wait(CONFIGS[0])
        alert = srv.service.store.add_alert(AlertEvent("lounge", "", "run-1", "distress", 1.0, "Lounge: distressed for 2 min"))
        srv.add_user("alice", "admin")
        c = srv.login("alice")
        c.post(f"/api/alerts/{alert['id']}/acknowledge", json={"note": "on my way"}).raise_for_status()
        c.close()
        event = json.loads(live.wait("care/alerts").payload)
        assert event["event"] == "alert.acknowledged" and event["acknowledged_by"] == "alice" and event["note"] == "on my way"
        assert json.loads(live.wait("care/lounge/alert").payload)["event"] == "alert.acknowledged"
    finally:
        srv.stop()
    live.wait("care/status", b"offline")
    _assert_retained(broker, subscribers, "care/status", b"offline")


def test_the_will_says_offline_when_the_service_dies(broker, subscribers, tmp_path):
    """``kill -9`` of ``lrfer serve``: no goodbye is sent, the broker publishes the will."""
    (tmp_path / "lrfer.toml").write_text(
        f'[server]\nport = {free_port()}\ndata_dir = "{tmp_path}"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nusername = "{USER}"\npassword = "{PASSWORD}"\ntopic_prefix = "care"\n'
    )
    live = Subscriber(broker.port, ("care/status",))
    subscribers.append(live)
    cmd = [sys.executable, "-c", "from lrfer.cli import main; raise SystemExit(main())", "serve", "--config", str(tmp_path / "lrfer.toml")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            live.wait("care/status", b"online", timeout=60)
        except AssertionError:
            proc.kill()
            raise AssertionError("the service never came online:\n" + proc.communicate()[0]) from None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        live.wait("care/status", b"offline", timeout=10)  # the broker's, not the service's: it is dead
        assert [m.payload for m in live.on("care/status")][-2:] == [b"online", b"offline"]
        _assert_retained(broker, subscribers, "care/status", b"offline")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_notifier_publishes_again_after_the_broker_restarts(broker, subscribers):
    n = Notifier([], _mqtt(broker), camera_names={"lounge": "Lounge"})
    try:
        first = Subscriber(broker.port, HA)
        n.publish_status(CameraStatus("lounge", state="live", faces_now=3))
        first.wait("care/lounge/state")
        first.close()
        broker.stop()  # retained messages go with it (no persistence)
        n.publish_status(CameraStatus("lounge", state="live", faces_now=5))  # while the broker is away
        n.send("alert.opened", ALERT)
        broker.start()
        again = Subscriber(broker.port, HA)
        subscribers.append(again)
        # Home Assistant reconnects to an empty broker: the notifier must put back what it needs
        again.wait("care/status", b"online", timeout=30)
        for topic in CONFIGS:
            again.wait(topic, timeout=10)
        assert wait_for(lambda: again.last("care/lounge/state") and json.loads(again.last("care/lounge/state").payload)["faces_now"] == 5, 10)
        assert json.loads(again.wait("care/lounge/alert", timeout=10).payload)["id"] == ALERT["id"]
        n.publish_status(CameraStatus("lounge", state="reconnecting", faces_now=0))  # and goes on publishing
        assert again.wait("care/lounge/state", timeout=10) and wait_for(lambda: json.loads(again.last("care/lounge/state").payload)["state"] == "reconnecting", 10)
        late = Subscriber(broker.port, HA)  # what a client arriving now finds retained
        subscribers.append(late)
        for topic in [*CONFIGS, "care/status", "care/lounge/state", "care/lounge/alert"]:
            assert late.wait(topic, timeout=5).retain, topic
        assert late.last("care/status").payload == b"online"
    finally:
        n.close()
    assert not _notifier_threads()


def test_what_was_retained_is_put_back_after_a_restart_even_without_news(broker, subscribers):
    """A broker restarted without persistence forgets the retained state and last alert; the
    notifier has them and puts them back when it reconnects, so Home Assistant does not show
    "unknown" until the next change (an alert may be hours old)."""
    n = Notifier([], _mqtt(broker), camera_names={"lounge": "Lounge"})
    try:
        first = Subscriber(broker.port, HA)
        n.publish_status(CameraStatus("lounge", state="live", faces_now=4))
        n.send("alert.opened", ALERT)
        first.wait("care/lounge/alert")
        first.close()
        broker.stop()
        broker.start()  # nothing was published meanwhile
        late = Subscriber(broker.port, HA)
        subscribers.append(late)
        late.wait("care/status", b"online", timeout=30)
        for topic in [*CONFIGS, "care/lounge/state", "care/lounge/alert"]:
            late.wait(topic, timeout=10)
        assert json.loads(late.last("care/lounge/state").payload)["faces_now"] == 4
        assert json.loads(late.last("care/lounge/alert").payload) == {"event": "alert.opened", **ALERT}
        assert late.on("care/alerts") == []  # the event itself is not repeated
    finally:
        n.close()
