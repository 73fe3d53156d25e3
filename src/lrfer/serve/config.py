"""The service's configuration: a TOML file validated by pydantic, with one-line errors.

Every key has a default, so an empty file (or none: ``lrfer serve --demo``) is a valid
configuration. A wrong key or value is reported as one line that names it, e.g.
``lrfer.toml: cameras[1].fps: Input should be greater than 0 (got -2)``.

Coordinates of masks and zones are fractions of the frame (0..1, x then y), so they survive a
change of the camera's resolution.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import LrferError
from .records import NEGATIVE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Point = tuple[float, float]
Polygon = list[Point]

#: A camera's id (also what a remote worker's batch and a worker token's scope may name).
CAMERA_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID = re.compile(CAMERA_ID)
_PRIOR = re.compile(r"^[A-Za-z_][\w-]*=[0-9.eE+-]+(,[A-Za-z_][\w-]*=[0-9.eE+-]+)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_polygon(poly: Polygon) -> Polygon:
    if len(poly) < 3:
        raise ValueError("a polygon needs at least 3 points")
    for x, y in poly:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(f"point ({x}, {y}) is outside the frame: use fractions of the width and height, 0 to 1")
    return poly


class Zone(_Strict):
    """A named area of a camera's view (a lounge's sofa corner, a shop's till)."""

    name: str = Field(min_length=1, max_length=64)
    polygon: Polygon

    _poly = field_validator("polygon")(_check_polygon)


class Camera(_Strict):
    """One camera: where its frames come from and how it is analysed."""

    id: str = Field(description="short id: lower-case letters, digits, - and _")
    name: str = ""
    url: str = Field(min_length=1, description="rtsp://, http(s)://, a video file, webcam:N; remote://SITE: read by lrfer worker there")
    site: str = "main"
    fps: float = Field(2.0, gt=0, le=30, description="frames analysed per second")
    loop: bool = False  # video files: start again at the end
    enabled: bool = True
    min_face: int = Field(0, ge=0, le=4096, description="faces smaller than this (px) are not analysed at all")
    masks: list[Polygon] = Field(default_factory=list, description="privacy masks: never analysed, blacked out in every output")
    zones: list[Zone] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"'{v}' is not a camera id: use 1-63 lower-case letters, digits, - and _")
        return v

    @field_validator("masks")
    @classmethod
    def _masks(cls, v: list[Polygon]) -> list[Polygon]:
        return [_check_polygon(p) for p in v]

    @model_validator(mode="after")
    def _unique_zones(self) -> "Camera":
        names = [z.name for z in self.zones]
        if len(names) != len(set(names)):
            raise ValueError(f"zone names repeat: {names}")
        return self


#: the settings a window rule (and every zone rule) takes when the config leaves them out: a
#: window needs more evidence than a running sum, which weighs each bucket by how far it is above
WINDOW_DEFAULTS = {"threshold": 0.7, "min_observations": 12}


class Rule(_Strict):
    """An alert rule. ``scope="track"``: one person's face; ``"zone"``: everyone in a zone.

    Evidence is a bucket with at least one certain frame (see :class:`Evidence`). The baseline
    (``baseline="own"``) is the track's or zone's own share before the last ``minutes``, since a
    resting face is often read as sad; a track without enough history is compared with the median
    of the other tracks in its zone or camera, and with nothing when there are none.

    ``method="cusum"`` (the default for track rules): each bucket of evidence adds its share minus
    a reference to a running sum that never drops below 0 (Page's CUSUM), and the rule fires when
    the sum reaches ``evidence`` from at least ``min_observations`` buckets; the reference is the
    highest of ``threshold`` and the baseline plus ``margin``. A strong share alerts fast (0.9
    against 0.65 reaches 2 in eight buckets, 40 s), a share just above the reference slowly, one
    below it never. ``method="window"`` (zone rules always, since a zone's bucket is complete only
    once all its people are in): over the last ``minutes``, at least ``min_observations`` buckets
    of evidence and their mean share of ``expressions`` above ``threshold`` AND above the baseline
    plus ``margin``; left out, its ``threshold`` and ``min_observations`` are
    :data:`WINDOW_DEFAULTS`. Either way a track rule with ``baseline="own"`` asks
    ``unfamiliar_margin`` more while the track has no history of its own: other people's usual
    share is a weaker guide to a face than its own (most false alerts measured came from a resting
    face that looks sad, judged before it had a usual of its own).

    The defaults (CUSUM: threshold 0.65, margin 0.15, evidence 2 from 6 buckets, unfamiliar margin
    0.05; the window: 0.7 over 3 min from 12 buckets) were chosen by ``bench/serve_alerts.py`` on
    scenes of FER2013 faces at 16-48 px (seed 0, ``bench/results/serve_alerts_tuning.json``) and
    scored on others (``bench/results/serve_alerts.json``, docs/serve.md).
    """

    name: str = Field("distress", min_length=1, max_length=64)
    scope: Literal["track", "zone"] = "track"
    expressions: list[str] = Field(default_factory=lambda: list(NEGATIVE), min_length=1)
    method: Literal["window", "cusum"] = "cusum"
    threshold: float = Field(0.65, ge=0, le=1)
    minutes: float = Field(3.0, gt=0, le=24 * 60)
    min_observations: int = Field(6, ge=1)
    baseline: Literal["own", "none"] = "own"
    margin: float = Field(0.15, ge=0, le=1)
    evidence: float = Field(2.0, gt=0, le=1000, description="cusum: the running sum of share above the reference that fires")
    unfamiliar_margin: float = Field(0.05, ge=0, le=1, description="track rules: asked on top while a track has no history of its own")
    cooldown_minutes: float = Field(15.0, ge=0)
    cameras: list[str] = Field(default_factory=list, description="empty: every camera")
    zone: Optional[str] = None  # scope="zone": the zone; None: the whole camera
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _window_defaults(cls, data):
        """A window rule's unset settings are the window's defaults, not the running sum's."""
        if isinstance(data, dict) and (data.get("scope") == "zone" or data.get("method") == "window"):
            data = {**WINDOW_DEFAULTS, "method": "window", **data}
        return data


class Evidence(_Strict):
    """When a face counts as evidence. Smaller or less sure faces are recorded as "uncertain":
    they are counted, and never used for timelines' shares or alerts (abstain rather than guess).
    The rule is :class:`lrfer.runtime.decision.Abstain`, the one every backend and the CLI apply;
    a face the Recognizer already marked uncertain (``[model] abstain``) is never evidence."""

    min_face_px: int = Field(16, ge=0, description="shorter side of the face box, in the frame's pixels")
    min_confidence: float = Field(0.0, ge=0, le=1, description="the top class's probability")
    min_margin: float = Field(0.0, ge=0, le=1, description="the top class's probability minus the second's")


class Server(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    db: str = Field("", description="SQLAlchemy URL; empty: SQLite in the data folder")
    data_dir: str = Field("lrfer-data", description="the database, the worker buffers")
    bucket_seconds: int = Field(5, ge=1, le=3600)
    flush_seconds: float = Field(2.0, gt=0, le=60, description="the recorder writes at least this often")
    session_hours: float = Field(12.0, gt=0)
    max_upload_mb: float = Field(10.0, gt=0, le=200)
    allow_remote: bool = Field(False, description="listen on a non-loopback address (needs admin users set up)")

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


class Privacy(_Strict):
    blur_snapshots: bool = True  # faces in the live snapshot are blurred
    aggregate_only: bool = False  # shops: zone/camera shares only, no per-track view
    min_people: int = Field(5, ge=1, description="aggregate-only: a bucket is shown only when at least this many tracks contributed")


class Retention(_Strict):
    days: float = Field(30.0, gt=0, description="observations and tracks older than this are deleted")
    alert_days: float = Field(365.0, gt=0)
    audit_days: float = Field(365.0, gt=0)


class Reminders(_Strict):
    """An alert nobody has acknowledged is sent again (``alert.reminder``: the dashboard, webhooks,
    MQTT) every ``minutes``, at most ``times`` times: a nurse who was busy when it came is told again."""

    minutes: float = Field(10.0, ge=0, le=24 * 60, description="0: never remind")
    times: int = Field(3, ge=1, le=100)


class Webhook(_Strict):
    url: str = Field(pattern=r"^https?://")
    secret: str = Field("", description="HMAC-SHA256 key; the signature goes in X-Lrfer-Signature")
    events: list[Literal["alert.opened", "alert.reminder", "alert.acknowledged", "alert.resolved"]] = Field(
        default_factory=lambda: ["alert.opened", "alert.reminder", "alert.acknowledged", "alert.resolved"]
    )


class Mqtt(_Strict):
    host: str
    port: int = Field(1883, ge=1, le=65535)
    username: str = ""
    password: str = ""
    topic_prefix: str = "lrfer"
    discovery: bool = True  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"


class Model(_Strict):
    checkpoint: str = ""  # empty: the shipped default
    detector: str = "yunet"
    backend: Literal["auto", "onnx", "torch"] = "auto"
    min_score: float = Field(0.5, ge=0, le=1)
    upscale: Union[float, Literal["auto"]] = 1.0
    reading: str = Field("", description="one of the model's stored readings, e.g. 'half' or 'crowd' for the shipped model, which read calm faces as neutral more often (docs/trust.md); empty: the model's own")
    prior: str = Field("", description="the place's class shares, e.g. 'neutral=0.5,happy=0.25' or 'uniform' (docs/trust.md); empty: the model's own")
    abstain: bool = Field(False, description="mark faces uncertain by the abstention rule stored with the model")

    @field_validator("prior")
    @classmethod
    def _prior(cls, v: str) -> str:
        if v.strip() and v.strip() != "uniform" and not _PRIOR.match(v.replace(" ", "")):
            raise ValueError("write class=share pairs separated by commas, e.g. neutral=0.5,happy=0.25, or uniform")
        return v


class ServeConfig(_Strict):
    server: Server = Field(default_factory=Server)
    model: Model = Field(default_factory=Model)
    cameras: list[Camera] = Field(default_factory=list)
    evidence: Evidence = Field(default_factory=Evidence)
    rules: list[Rule] = Field(default_factory=lambda: [Rule()])
    reminders: Reminders = Field(default_factory=Reminders)
    privacy: Privacy = Field(default_factory=Privacy)
    retention: Retention = Field(default_factory=Retention)
    webhooks: list[Webhook] = Field(default_factory=list)
    mqtt: Optional[Mqtt] = None

    @model_validator(mode="after")
    def _unique_cameras(self) -> "ServeConfig":
        ids = [c.id for c in self.cameras]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"camera ids repeat: {', '.join(dup)}")
        return self


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def one_line(err: ValidationError, source: str) -> LrferError:
    """The first problem of a validation error as one line naming the key."""
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {e.get('input')!r})"[:120]
    more = f" ({len(err.errors()) - 1} more problems)" if len(err.errors()) > 1 else ""
    return LrferError(f"{source}: {_where(e['loc'])}: {msg}{got}{more}", "fix that key (docs/serve.md lists every key)")


def validate(data: dict, source: str = "config") -> ServeConfig:
    try:
        return ServeConfig.model_validate(data)
    except ValidationError as err:
        raise one_line(err, source) from None


def load_config(path: Union[str, os.PathLike, None]) -> ServeConfig:
    """The configuration in a TOML file (``None``: every default)."""
    if path is None:
        return ServeConfig()
    p = Path(path)
    if not p.is_file():
        raise LrferError(f"no such config file: {p}", "give a TOML file (docs/serve.md has an example)")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LrferError(f"{p} is not UTF-8 text", "save the config as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as err:
        raise LrferError(f"{p}: not valid TOML ({err})", "fix the syntax at that line") from None
    return validate(data, str(p))
