"""Faces per analysed frame -> one :class:`Observation` per track per time bucket.

Pure bookkeeping (no threads, no clock of its own): the camera worker calls ``add(t, faces)``
with the wall time of each analysed frame and gets back the buckets that closed. A bucket
``[start, start + seconds)`` closes once a frame at or after ``start + 2 * seconds`` arrives
(one bucket of grace), or at ``flush``. Memory holds only the open buckets: per track a few
counters, a sum of probabilities and a histogram of face sizes, never per-frame lists.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..infer.pipeline import Face
from ..runtime.decision import Abstain
from .config import Evidence, Zone
from .geometry import Zones
from .records import Observation


@dataclass
class _Track:
    """One track's running sums in one bucket."""

    frames: int = 0
    certain: int = 0
    probs: Optional[np.ndarray] = None  # sum over the certain frames
    score: float = 0.0
    sizes: Counter = field(default_factory=Counter)  # face px -> frames (a median without a list)
    zones: Counter = field(default_factory=Counter)


def new_run_id() -> str:
    """A short id for one (re)connection of a camera: the prefix of its track keys."""
    return uuid.uuid4().hex[:8]


def is_certain(face: Face, evidence: Evidence) -> bool:
    """Whether a face counts as evidence: not marked uncertain by the Recognizer, and big and sure
    enough by ``evidence`` (the same rule, :class:`lrfer.runtime.decision.Abstain`)."""
    if getattr(face, "uncertain", False):
        return False
    rule = Abstain(min_face=evidence.min_face_px, min_confidence=evidence.min_confidence, min_margin=evidence.min_margin)
    probs = list(face.probabilities.values()) or [face.confidence]
    if len(probs) < 2:  # a face with no probability table: only its size and confidence can be judged
        return face.size >= rule.min_face and face.confidence >= rule.min_confidence
    return not bool(rule.uncertain([probs], [face.size])[0])


def _median(counts: Counter) -> float:
    """The median of the values counted in a histogram ``{value: count}``."""
    n = sum(counts.values())

    def kth(k: int) -> float:
        seen = 0
        for value in sorted(counts):
            seen += counts[value]
            if k < seen:
                return float(value)
        raise ValueError("empty histogram")

    return (kth((n - 1) // 2) + kth(n // 2)) / 2.0


class BucketAggregator:
    """Per-track time buckets of one camera's faces.

    ``classes``: the model's classes (the keys of ``Observation.probs``); ``zones``: the camera's
    zones (a track's zone in a bucket is the one its box centre was in most often). Track keys are
    ``f"{run_id}-{track_id}"``; call ``new_run`` at each (re)connection, where track ids restart.
    """

    def __init__(self, camera_id: str, classes: Sequence[str], *, bucket_seconds: float = 5, evidence: Optional[Evidence] = None, zones: Sequence[Zone] = ()):
        if bucket_seconds <= 0:
            raise ValueError(f"bucket_seconds must be positive, not {bucket_seconds}")
        self.camera_id = camera_id
        self.classes = tuple(classes)
        self.bucket_seconds = bucket_seconds
        self.evidence = evidence if evidence is not None else Evidence()
        self.zones = Zones(zones)
        self.run_id = new_run_id()
        self.late = 0  # frames dropped because their bucket had already been emitted (a clock step back)
        self._open: dict[float, dict[str, _Track]] = {}
        self._emitted_before = -math.inf  # buckets starting before this were emitted

    def bucket_start(self, t: float) -> float:
        return math.floor(t / self.bucket_seconds) * self.bucket_seconds

    def add(self, t: float, faces: Sequence[Face], frame_size: Optional[tuple[int, int]] = None) -> list[Observation]:
        """Count one analysed frame at wall time ``t`` (``frame_size``: (width, height), for zones);
        returns the buckets this closes (possibly none)."""
        start = self.bucket_start(t)
        if start < self._emitted_before:
            self.late += 1
            return []
        tracks = None
        for face in faces:
            if face.track_id is None:  # a stream always tracks; a stray photo face has no track to follow
                continue
            if tracks is None:
                tracks = self._open.setdefault(start, {})
            acc = tracks.setdefault(f"{self.run_id}-{face.track_id}", _Track())
            self._count(acc, face, frame_size)
        return self._close(lambda s: s + 2 * self.bucket_seconds <= t)

    def flush(self) -> list[Observation]:
        """Every open bucket, as it stands (at a stop)."""
        return self._close(lambda s: True)

    def new_run(self, run_id: Optional[str] = None) -> list[Observation]:
        """Flush, then number tracks under a new run id (a reconnection: the tracker starts again).
        The new run's keys are new, so it may fill buckets the old run already emitted."""
        out = self.flush()
        self.run_id = run_id or new_run_id()
        self._emitted_before = -math.inf
        return out

    def _count(self, acc: _Track, face: Face, frame_size: Optional[tuple[int, int]]) -> None:
        acc.frames += 1
        acc.score += float(face.score)
        acc.sizes[int(face.size)] += 1
        acc.zones[self.zones.of_box(face.box, *frame_size) if frame_size and self.zones else ""] += 1
        if is_certain(face, self.evidence):
            p = np.array([face.probabilities.get(c, 0.0) for c in self.classes], np.float64)
            acc.probs = p if acc.probs is None else acc.probs + p
            acc.certain += 1

    def _close(self, due) -> list[Observation]:
        out: list[Observation] = []
        for start in sorted(s for s in self._open if due(s)):
            tracks = self._open.pop(start)
            self._emitted_before = max(self._emitted_before, start + self.bucket_seconds)
            out.extend(self._observation(start, key, acc) for key, acc in tracks.items())
        return out

    def _observation(self, start: float, key: str, acc: _Track) -> Observation:
        probs = None
        if acc.certain:
            mean = acc.probs / acc.certain
            probs = {c: round(float(v), 4) for c, v in zip(self.classes, mean)}
        return Observation(
            camera_id=self.camera_id, track_key=key, zone=acc.zones.most_common(1)[0][0], start=float(start), seconds=float(self.bucket_seconds),
            frames=acc.frames, certain=acc.certain, probs=probs, face_px=_median(acc.sizes), score=round(acc.score / acc.frames, 4),
        )  # fmt: skip
