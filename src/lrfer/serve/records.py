"""What flows between the service's pieces: a bucket of observations, a camera's status, an alert.

Plain dataclasses with a JSON form, so the same records cross a thread queue inside
``lrfer serve`` and an HTTPS request from ``lrfer worker`` on another machine. No face image and no
embedding is ever part of them: only where, how big, and what expression.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

#: Expressions that count as distress for alerts (the default rule's evidence).
NEGATIVE = ("sad", "angry", "fear", "disgust")
#: Who a person may be, and what an API token may act as.
USER_ROLES = ("admin", "staff")
TOKEN_ROLES = ("worker", "integration", "admin", "staff")
#: what staff say of an alert once they have looked: it showed real distress, or it did not
ALERT_VERDICTS = ("real", "false_alarm")


@dataclass
class Observation:
    """One track's faces in one time bucket of one camera (what the database keeps per track)."""

    camera_id: str
    track_key: str  # unique per camera across restarts of its worker: "<run>-<track id>"
    zone: str  # "" when the camera has no zones or the face is in none
    start: float  # bucket start, epoch seconds, a multiple of ``seconds``
    seconds: float  # bucket length
    frames: int  # sampled frames with this face in the bucket
    certain: int  # of which big and sure enough to count as evidence (the rest are "uncertain")
    probs: Optional[dict[str, float]]  # mean probabilities over the certain frames; None when certain == 0
    face_px: float  # median face size in pixels (shorter side of the box)
    score: float  # mean detector score

    def negative_share(self, negative: tuple[str, ...] = NEGATIVE) -> Optional[float]:
        """The summed mean probability of the negative expressions, or None without evidence."""
        if not self.probs:
            return None
        return float(sum(self.probs.get(c, 0.0) for c in negative))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Observation":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass
class CameraStatus:
    """What a camera's worker is doing now (shown in the API and on the dashboard)."""

    camera_id: str
    state: str = "starting"  # starting | live | reconnecting | stopped | error | finished
    since: float = field(default_factory=time.time)  # when ``state`` began, epoch seconds
    error: str = ""  # the last error's text, "" when none
    fps: float = 0.0  # frames analysed per second, recent
    faces_now: int = 0  # faces in the last analysed frame
    frames: int = 0  # frames analysed since the worker started
    last_frame_at: Optional[float] = None
    moods_now: dict[str, int] = field(default_factory=dict)  # label -> faces in the last analysed frame (certain ones)
    lag: float = 0.0  # seconds from the last analysed frame's hand-over to the detector to its result
    width: int = 0
    height: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "CameraStatus":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class AlertEvent:
    """An alert as the rule engine raises it (the database adds its id and lifecycle)."""

    camera_id: str
    zone: str
    track_key: Optional[str]  # None for a zone-level alert
    rule: str
    opened_at: float
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)  # share, baseline, observations, minutes

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
