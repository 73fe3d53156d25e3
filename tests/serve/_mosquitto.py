"""A real MQTT broker for the tests: Debian's mosquitto on a free loopback port, with a config file
and a password file (``mosquitto_passwd``) written here, anonymous clients refused; and a
subscriber that listens as Home Assistant does (paho-mqtt, the same credentials)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import paho.mqtt.client as paho

from ._util import free_port, wait_for

USER, PASSWORD = "lrfer", "mqtt-Secret-7"


def mosquitto_bin() -> Optional[Path]:
    """The broker's binary (Debian puts it in /usr/sbin, which is not on every PATH)."""
    found = shutil.which("mosquitto") or next((p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)), None)
    return Path(found) if found else None


class Mosquitto:
    """``mosquitto -c <dir>/mosquitto.conf`` listening on 127.0.0.1:<port>; ``stop``/``start`` take
    it away and bring it back on the same port (no persistence: a restart forgets every retained
    message, so whatever is retained afterwards was published again)."""

    def __init__(self, root: Path):
        binary = mosquitto_bin()
        passwd_tool = shutil.which("mosquitto_passwd") or (binary and str(binary.parent.parent / "bin" / "mosquitto_passwd"))
        if binary is None or not passwd_tool or not os.access(passwd_tool, os.X_OK):
            raise RuntimeError("mosquitto not found (apt-get install mosquitto)")
        self.binary, self.root, self.port = binary, Path(root), free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        passwords = self.root / "passwd"
        subprocess.run([passwd_tool, "-b", "-c", str(passwords), USER, PASSWORD], check=True, capture_output=True)
        passwords.chmod(0o600)
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous false", f"password_file {passwords}", "persistence false", "log_type all"]
        if os.geteuid() == 0:
            lines.append("user root")  # as root, mosquitto would switch to the mosquitto user, who cannot read this folder
        self.config = self.root / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = self.root / "mosquitto.log"
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(self.binary), "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        if not wait_for(self._listening, timeout):
            self.stop()
            raise RuntimeError(f"mosquitto did not start:\n{self.log.read_text()[-2000:]}")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self.proc is not None and self.proc.poll() is None
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A paho client subscribed to ``topics`` (Home Assistant subscribes to its discovery prefix and
    to the state topics it was given), keeping every message with its retain flag."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",), *, username: str = USER, password: str = PASSWORD):
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"ha-{uuid.uuid4().hex[:8]}")
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe([(t, 1) for t in topics]) if not rc.is_failure else None
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            self.close()
            raise RuntimeError("the subscriber did not get its subscription")

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Optional[Message]:
        got = self.on(topic)
        return got[-1] if got else None

    def wait(self, topic: str, payload: Optional[bytes] = None, timeout: float = 15.0) -> Message:
        """The first message on ``topic`` (with ``payload``, when given) within ``timeout`` seconds."""
        def found():
            return next((m for m in self.on(topic) if payload is None or m.payload == payload), None)

        wait_for(lambda: found() is not None, timeout)
        m = found()
        assert m is not None, f"nothing on {topic} ({payload!r}) within {timeout} s; got {[(x.topic, x.payload[:40]) for x in self.messages]}"
        return m

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

