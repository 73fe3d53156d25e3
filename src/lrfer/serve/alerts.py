"""The alert rules: per-track and per-zone time buckets in, :class:`AlertEvent` out.

Staff act on these alerts, so the engine prefers silence to a guess:

- only evidence counts: a bucket with no certain frame (faces too small or unsure) is ignored;
- with ``baseline="own"`` a share is judged against a baseline plus ``margin``, because a resting
  face is often read as sad: the track's own share before the rule's last ``minutes`` when it has
  enough history, else the median share of the other tracks recently seen in its zone (or
  camera), else none. A zone's baseline is its own earlier hour;
- a window rule (zone rules always) needs ``min_observations`` evidence buckets
  over its last ``minutes``, and their mean share (weighted by certain frames) above
  ``threshold`` and above the baseline plus ``margin``; a track rule asks ``unfamiliar_margin``
  more while the track has no history of its own;
- a CUSUM track rule (``method="cusum"``, the default) sums, bucket by bucket, how far the share is above its
  reference (``threshold``, the baseline plus ``margin``, and ``unfamiliar_margin`` more while the
  track has no history of its own), never below 0, and fires when the sum reaches ``evidence``
  from at least ``min_observations`` buckets: a strong change is caught in under a minute, a
  slight one needs longer, and a face that stays as it usually is never adds up. The sum carries
  over when a track is joined to the one it continues, and restarts after an alert;
- a tracker loses a face that turns away and gives it a new id: a new track that starts within
  ``link_seconds`` of the end of one in the same camera and zone, with a face of about the same
  size, continues it (its history, its baseline and its cooldowns);
- nothing on a camera staff have muted (:meth:`AlertEngine.mute`) until the mute ends;
- one alert per (camera, track or zone, rule) per cooldown, and data reported later than
  ``max_delay_seconds`` raises nothing (logged): an alert is about now.

Time comes from the observations (bucket starts), so remote workers' late and interleaved batches
are judged on their own clock; ``clock`` only stamps ``opened_at``, measures lateness and ages out
state. Memory is bounded: a track keeps at most its baseline horizon plus the longest window, and
tracks unseen for ``forget_minutes`` are dropped.
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from .config import Rule
from .records import NEGATIVE, AlertEvent, Observation

log = logging.getLogger(__name__)

#: a peer track needs this many evidence buckets before its share says what is typical here
PEER_MIN_BUCKETS = 6
#: and the typical share needs this many peers (a median of one is one person's face)
PEER_MIN_TRACKS = 2
#: a track continues another only when their faces' sizes differ by less than this factor
LINK_SIZE_RATIO = 1.3
#: a CUSUM run keeps its latest buckets for the alert's share (an hour of 5 s buckets): memory stays bounded
RUN_BUCKETS = 720


@dataclass
class _Bucket:
    start: float
    end: float
    zone: str
    certain: int
    probs: Optional[dict[str, float]]
    face_px: float


@dataclass
class _Track:
    camera_id: str
    track_key: str
    first_start: float
    last_end: float = 0.0
    zone: str = ""
    buckets: deque = field(default_factory=deque)
    joined: int = 1  # tracks of one person joined into this one (see ``AlertEngine._link``)
    cusum: dict = field(default_factory=dict)  # rule name -> _Cusum
    fine: Optional[float] = None  # the highest share staff called a false alarm for: this face at this level is fine

    def face_px(self) -> float:
        return statistics.median(b.face_px for b in itertools.islice(reversed(self.buckets), 12))


@dataclass
class _Cusum:
    """A track rule's running sum: how far its shares have been above the reference, since ``since``."""

    total: float = 0.0
    upto: float = -math.inf  # the start of the last bucket added
    since: Optional[float] = None  # the start of the first bucket of the current run (None: the sum is 0)
    buckets: deque = field(default_factory=lambda: deque(maxlen=RUN_BUCKETS))  # (share, certain) of the run's evidence, the latest


@dataclass
class _ZoneBucket:
    certain: int = 0
    tracks: int = 0
    face_px: float = 0.0  # summed over tracks; divided by ``tracks``
    probs: dict = field(default_factory=dict)  # class -> sum of certain * probability


@dataclass
class _Zone:
    last_end: float = 0.0
    buckets: dict = field(default_factory=dict)  # start -> _ZoneBucket


@dataclass
class _Verdict:
    share: float
    baseline: Optional[float]
    baseline_kind: str  # "own", "peers", "zone", "none"
    observations: int
    certain: int
    minutes: float
    face_px: float
    tracks: int = 1


def _share(probs: Optional[dict[str, float]], expressions: tuple[str, ...]) -> float:
    return float(sum(probs.get(c, 0.0) for c in expressions)) if probs else 0.0


def _window_share(rule: Rule, window: list[tuple[float, int]]) -> Optional[float]:
    """The window's weighted share when it has enough evidence and is above the threshold, else None."""
    if len(window) < rule.min_observations:
        return None
    share = _weighted(window)
    return share if share is not None and share > rule.threshold else None


def _reference(rule: Rule, baseline: Optional[float], kind: str, fine: Optional[float] = None) -> float:
    """The share a track rule must exceed: ``threshold``, the baseline plus ``margin``, and
    ``unfamiliar_margin`` more while a rule that wants the track's own baseline has none yet (a
    resting face that looks sad is read against other people's until it has its own); and, once
    staff have called one of the track's alerts a false alarm, that alert's share plus ``margin``."""
    reference = max(rule.threshold, baseline + rule.margin if baseline is not None else 0.0)
    reference += rule.unfamiliar_margin if rule.baseline == "own" and kind != "own" else 0.0
    return max(reference, fine + rule.margin) if fine is not None else reference


def _weighted(items: list[tuple[float, int]]) -> Optional[float]:
    """Mean of (share, certain frames) pairs weighted by the frames; None without any."""
    w = sum(c for _, c in items)
    return sum(s * c for s, c in items) / w if w else None


def _in_rule(rule: Rule, camera_id: str) -> bool:
    return rule.enabled and (not rule.cameras or camera_id in rule.cameras)


class AlertEngine:
    """Turns observations into alerts, following ``rules`` (thread-safe)."""

    def __init__(
        self,
        rules: list[Rule],
        *,
        bucket_seconds: int = 5,
        clock: Callable[[], float] = time.time,
        camera_names: Optional[Mapping[str, str]] = None,
        baseline_minutes: float = 60.0,
        forget_minutes: float = 60.0,
        max_delay_seconds: float = 300.0,
        link_seconds: float = 30.0,
    ):
        self.bucket_seconds = bucket_seconds
        self.clock = clock
        #: read at each alert, so the service may pass a dict it keeps up to date
        self.camera_names = camera_names if camera_names is not None else {}
        self.baseline_seconds = baseline_minutes * 60.0
        self.forget_seconds = forget_minutes * 60.0
        self.max_delay_seconds = max_delay_seconds
        self.link_seconds = link_seconds
        self._lock = threading.Lock()
        self._tracks: dict[tuple[str, str], _Track] = {}
        self._zones: dict[tuple[str, Optional[str]], _Zone] = {}
        self._fired: dict[tuple[str, str, str], float] = {}  # (camera, track or zone, rule) -> data time of the last alert
        self._muted: dict[str, float] = {}  # camera -> time its alerts are muted until
        self._joined: dict[tuple[str, str], str] = {}  # (camera, track key) -> the key of the track that continued it
        self._swept = -math.inf
        self.set_rules(rules)

    # ------------------------------------------------------------------ public
    def set_rules(self, rules: list[Rule]) -> None:
        """Replace the rules. Cooldowns carry over by rule name, so editing a rule does not re-alert."""
        with self._lock:
            self.rules = list(rules)
            names = {r.name for r in self.rules}
            self._fired = {k: v for k, v in self._fired.items() if k[2] in names}
            longest = max((r.minutes for r in self.rules), default=0.0) * 60.0
            self._horizon = self.baseline_seconds + longest + self.bucket_seconds

    def observe(self, observations: list[Observation]) -> list[AlertEvent]:
        """Take a batch of buckets (any cameras, any order across tracks); return the new alerts."""
        with self._lock:
            touched_tracks: dict[tuple[str, str], _Track] = {}
            touched_zones: set[tuple[str, Optional[str]]] = set()
            for ob in observations:
                track = self._add(ob)
                if track is None:
                    continue
                touched_tracks[(ob.camera_id, ob.track_key)] = track
                touched_zones.add((ob.camera_id, None))
                if ob.zone:
                    touched_zones.add((ob.camera_id, ob.zone))
            events = []
            for track in touched_tracks.values():
                events += self._check_track(track)
            for key in sorted(touched_zones, key=lambda k: (k[0], k[1] or "")):
                events += self._check_zone(*key)
            now = self.clock()
            if now - self._swept >= 60.0:
                self._forget(now)
            return events

    def mute(self, camera_id: str, until: Optional[float]) -> None:
        """Raise nothing on ``camera_id`` before ``until`` (None: unmute). Evidence still adds up, so
        a person still distressed when the mute ends is alerted then, not a cooldown later."""
        with self._lock:
            if until is None:
                self._muted.pop(camera_id, None)
            else:
                self._muted[camera_id] = until

    def false_alarm(self, camera_id: str, track_key: str, share: float) -> bool:
        """Staff say an alert on this track was a false alarm: its face at ``share`` is fine, so the
        track's rules now ask for more than that (plus their margin), and its running sums restart.
        False when the track is no longer followed (it left: the next one starts afresh)."""
        with self._lock:
            track = self._tracks.get(self._current((camera_id, track_key)))
            if track is None:
                return False
            track.fine = max(track.fine or 0.0, float(share))
            track.cusum.clear()
            return True

    def is_muted(self, camera_id: str, t: float) -> bool:
        return t < self._muted.get(camera_id, -math.inf)

    def close_track(self, camera_id: str, track_key: str) -> None:
        """Drop a track's state (its worker says it ended); its cooldown stays until it runs out."""
        with self._lock:
            self._tracks.pop((camera_id, track_key), None)

    def forget(self, now: Optional[float] = None) -> int:
        """Drop tracks unseen for ``forget_minutes`` and spent cooldowns; returns the tracks dropped."""
        with self._lock:
            return self._forget(self.clock() if now is None else now)

    @property
    def tracks(self) -> int:
        """How many tracks the engine holds (memory stays bounded: see :meth:`forget`)."""
        return len(self._tracks)

    # ------------------------------------------------------------------ state
    def _add(self, ob: Observation) -> Optional[_Track]:
        key = (ob.camera_id, ob.track_key)
        track = self._tracks.get(key)
        end = ob.start + ob.seconds
        if track is None:
            track = self._tracks[key] = _Track(ob.camera_id, ob.track_key, first_start=ob.start, zone=ob.zone)
            self._link(track, ob)
        elif ob.start < track.last_end - 1e-6:
            # a replayed or out-of-order bucket: a track's buckets come in time order, so this one is already counted
            log.debug("alerts: bucket %s of %s/%s is older than its last one; ignored", ob.start, ob.camera_id, ob.track_key)
            return None
        certain = ob.certain if ob.probs else 0
        track.buckets.append(_Bucket(ob.start, end, ob.zone, certain, ob.probs, ob.face_px))
        track.last_end, track.zone = end, ob.zone
        while track.buckets and track.buckets[0].start < end - self._horizon:
            track.buckets.popleft()
        for zone in (None, ob.zone) if ob.zone else (None,):
            self._add_zone(ob, zone, certain)
        return track

    def _link(self, track: _Track, ob: Observation) -> None:
        """Join a new track to the one it most likely continues: a tracker loses a face that turns away
        or is missed for a few frames and starts a new id for it, which would leave the person
        without their own baseline (and free to alert again). The predecessor ended at most
        ``link_seconds`` before, in the same camera and zone, with a face of about the same size."""
        if self.link_seconds <= 0:
            return
        best, best_ratio = None, LINK_SIZE_RATIO
        for other in self._tracks.values():
            if other is track or other.camera_id != ob.camera_id or other.zone != ob.zone or not other.buckets:
                continue
            if not (ob.start - self.link_seconds <= other.last_end <= ob.start + 1e-6):
                continue
            px = other.face_px()
            ratio = max(px, ob.face_px) / max(min(px, ob.face_px), 1e-6)
            if ratio <= best_ratio:
                best, best_ratio = other, ratio
        if best is None:
            return
        del self._tracks[(best.camera_id, best.track_key)]
        track.buckets, track.first_start, track.joined, track.cusum, track.fine = best.buckets, best.first_start, best.joined + 1, best.cusum, best.fine
        self._joined[(best.camera_id, best.track_key)] = track.track_key
        for (camera_id, subject, rule), t in list(self._fired.items()):
            if camera_id == best.camera_id and subject == best.track_key:
                self._fired[(camera_id, track.track_key, rule)] = t

    def _add_zone(self, ob: Observation, zone: Optional[str], certain: int) -> None:
        z = self._zones.setdefault((ob.camera_id, zone), _Zone())
        b = z.buckets.get(ob.start)
        if b is None:
            b = z.buckets[ob.start] = _ZoneBucket()
        b.tracks += 1
        b.face_px += ob.face_px
        if certain:
            b.certain += certain
            for c, p in ob.probs.items():
                b.probs[c] = b.probs.get(c, 0.0) + certain * p
        z.last_end = max(z.last_end, ob.start + ob.seconds)
        if len(z.buckets) > 2 * self._horizon / self.bucket_seconds + 16:
            oldest = z.last_end - self._horizon
            z.buckets = {s: v for s, v in z.buckets.items() if s >= oldest}

    def _current(self, key: tuple[str, str]) -> tuple[str, str]:
        """The key of the track that now continues ``key``'s person (itself when none does)."""
        for _ in range(len(self._joined)):  # bounded: a reused tracker id must not loop
            if key not in self._joined:
                break
            key = (key[0], self._joined[key])
        return key

    def _forget(self, now: float) -> int:
        self._swept = now
        old = [k for k, t in self._tracks.items() if t.last_end < now - self.forget_seconds]
        for k in old:
            del self._tracks[k]
        for k in [k for k in self._joined if self._current(k) not in self._tracks]:  # the person is no longer followed
            del self._joined[k]
        for k in [k for k, z in self._zones.items() if z.last_end < now - self._horizon]:
            del self._zones[k]
        cooldown = {r.name: r.cooldown_minutes * 60.0 for r in self.rules}
        self._fired = {k: t for k, t in self._fired.items() if t >= now - cooldown.get(k[2], 0.0)}
        return len(old)

    # ------------------------------------------------------------------ track rules
    def _check_track(self, track: _Track) -> list[AlertEvent]:
        events = []
        for rule in self.rules:
            if rule.scope != "track" or not _in_rule(rule, track.camera_id):
                continue
            if rule.zone is not None and track.zone != rule.zone:
                continue
            verdict = self._judge_track(rule, track)
            if verdict is not None and self._may_fire(rule, track.camera_id, track.track_key, track.last_end):
                events.append(self._event(rule, track.camera_id, track.zone, track.track_key, track.last_end, verdict))
                track.cusum.pop(rule.name, None)  # an alert restarts the sum: the next one needs evidence of its own
        return events

    def _judge_track(self, rule: Rule, track: _Track) -> Optional[_Verdict]:
        expr = tuple(rule.expressions)
        window_start = track.last_end - rule.minutes * 60.0
        base_start = window_start - self.baseline_seconds
        window, before, sizes = [], [], []
        for b in reversed(track.buckets):
            if b.start < base_start:
                break
            if not b.certain or (rule.zone is not None and b.zone != rule.zone):
                continue
            if b.start >= window_start:
                window.append((_share(b.probs, expr), b.certain))
                sizes.append(b.face_px)
            else:
                before.append((_share(b.probs, expr), b.certain))
        if rule.method == "cusum":
            return self._judge_cusum(rule, track, before, sizes)
        share = _window_share(rule, window)
        if share is None:
            return None
        baseline, kind = self._track_baseline(rule, track, before)
        if share <= _reference(rule, baseline, kind, track.fine):
            return None
        span = track.last_end - max(window_start, track.first_start)
        return _Verdict(share, baseline, kind, len(window), sum(c for _, c in window), span / 60.0, statistics.median(sizes))

    def _track_baseline(self, rule: Rule, track: _Track, before: list[tuple[float, int]]) -> tuple[Optional[float], str]:
        """The share the track is judged against, and where it comes from: "own", "peers" or "none"."""
        if rule.baseline != "own":
            return None, "none"
        if len(before) >= rule.min_observations:
            return _weighted(before), "own"
        baseline = self._peer_baseline(rule, track)
        return baseline, "peers" if baseline is not None else "none"

    def _judge_cusum(self, rule: Rule, track: _Track, before: list[tuple[float, int]], sizes: list[float]) -> Optional[_Verdict]:
        """Add the track's new buckets to the rule's running sum; a verdict once it reaches ``evidence``."""
        state = track.cusum.setdefault(rule.name, _Cusum())
        fresh = list(itertools.takewhile(lambda b: b.start > state.upto, reversed(track.buckets)))[::-1]  # the buckets since the last call
        if not fresh:
            return None
        baseline, kind = self._track_baseline(rule, track, before)
        reference = _reference(rule, baseline, kind, track.fine)
        expr = tuple(rule.expressions)
        for b in fresh:
            state.upto = b.start
            if not b.certain or (rule.zone is not None and b.zone != rule.zone):
                continue
            share = _share(b.probs, expr)
            # at most ``evidence``: during a cooldown the sum cannot pile up, so a person who has
            # calmed down when it ends is not alerted on old evidence
            state.total = min(rule.evidence, max(0.0, state.total + share - reference))
            if state.total == 0.0:
                state.since = None
                state.buckets.clear()
                continue
            if state.since is None:
                state.since = b.start
            state.buckets.append((share, b.certain))
        if state.total < rule.evidence or len(state.buckets) < rule.min_observations:
            return None
        run = state.buckets
        return _Verdict(_weighted(run) or 0.0, baseline, kind, len(run), sum(c for _, c in run), (track.last_end - state.since) / 60.0,
                        statistics.median(sizes) if sizes else track.face_px())  # fmt: skip

    def _peer_baseline(self, rule: Rule, track: _Track) -> Optional[float]:
        """The median recent share of the other tracks in the track's zone, else in its camera."""
        expr = tuple(rule.expressions)
        since = track.last_end - self.baseline_seconds
        in_zone, in_camera = [], []
        for other in self._tracks.values():
            if other is track or other.camera_id != track.camera_id or other.last_end < since:
                continue
            items = [(_share(b.probs, expr), b.certain) for b in other.buckets if b.certain and since <= b.start < track.last_end]
            if len(items) < PEER_MIN_BUCKETS:
                continue
            share = _weighted(items)
            in_camera.append(share)
            if track.zone and other.zone == track.zone:
                in_zone.append(share)
        for shares in (in_zone, in_camera):
            if len(shares) >= PEER_MIN_TRACKS:
                return float(statistics.median(shares))
        return None

    # ------------------------------------------------------------------ zone rules
    def _check_zone(self, camera_id: str, zone: Optional[str]) -> list[AlertEvent]:
        events = []
        z = self._zones.get((camera_id, zone))
        if z is None:
            return events
        for rule in self.rules:
            if rule.scope != "zone" or rule.zone != zone or not _in_rule(rule, camera_id):
                continue
            verdict = self._judge_zone(rule, z)
            if verdict is not None and self._may_fire(rule, camera_id, f"zone:{zone or ''}", z.last_end):
                events.append(self._event(rule, camera_id, zone or "", None, z.last_end, verdict))
        return events

    def _judge_zone(self, rule: Rule, z: _Zone) -> Optional[_Verdict]:
        expr = tuple(rule.expressions)
        window_start = z.last_end - rule.minutes * 60.0
        base_start = window_start - self.baseline_seconds
        window, before, sizes, tracks = [], [], [], []
        for start, b in z.buckets.items():
            if start < base_start or not b.certain:
                continue
            share = _share(b.probs, expr) / b.certain
            if start >= window_start:
                window.append((share, b.certain))
                sizes.append(b.face_px / b.tracks)
                tracks.append(b.tracks)
            else:
                before.append((share, b.certain))
        share = _window_share(rule, window)
        if share is None:
            return None
        baseline, kind = None, "none"
        if rule.baseline == "own" and len(before) >= rule.min_observations:
            baseline, kind = _weighted(before), "zone"
            if share <= baseline + rule.margin:
                return None
        first = min(s for s in z.buckets)
        span = z.last_end - max(window_start, first)
        return _Verdict(share, baseline, kind, len(window), sum(c for _, c in window), span / 60.0, statistics.median(sizes), max(tracks))

    # ------------------------------------------------------------------ firing
    def _may_fire(self, rule: Rule, camera_id: str, subject: str, t: float) -> bool:
        if self.is_muted(camera_id, t):
            return False
        key = (camera_id, subject, rule.name)
        last = self._fired.get(key)
        if last is not None and t - last < rule.cooldown_minutes * 60.0:
            return False
        late = self.clock() - t
        if late > self.max_delay_seconds:
            log.warning("alerts: %s on %s/%s holds for data %.0f s old; not raised (an alert is about now)", rule.name, camera_id, subject, late)
            return False
        self._fired[key] = t
        return True

    def _event(self, rule: Rule, camera_id: str, zone: str, track_key: Optional[str], t: float, v: _Verdict) -> AlertEvent:
        evidence = {
            "share": round(v.share, 4),
            "baseline": None if v.baseline is None else round(v.baseline, 4),
            "baseline_kind": v.baseline_kind,
            "observations": v.observations,
            "certain_frames": v.certain,
            "minutes": round(v.minutes, 2),
            "face_px": round(v.face_px, 1),
            "tracks": v.tracks,
            "threshold": rule.threshold,
            "margin": rule.margin,
            "expressions": list(rule.expressions),
            "observed_until": t,
        }
        return AlertEvent(camera_id, zone, track_key, rule.name, self.clock(), self._message(rule, camera_id, zone, track_key, v), evidence)

    def _message(self, rule: Rule, camera_id: str, zone: str, track_key: Optional[str], v: _Verdict) -> str:
        """One sentence a nurse can act on, e.g. "Lounge: a person has looked distressed for 2 min (62% negative vs 20% usual)"."""
        where = self.camera_names.get(camera_id) or f"Camera {camera_id}"
        if zone:
            where += f", {zone}"
        negative = set(rule.expressions) <= set(NEGATIVE)
        mood = "distressed" if negative else " or ".join(rule.expressions)
        what = "negative" if negative else "/".join(rule.expressions)
        who = "a person has" if track_key is not None else "people here have"
        usual = "typical here" if v.baseline_kind == "peers" else "usual"
        vs = f" vs {v.baseline:.0%} {usual}" if v.baseline is not None else ""
        span = f"{round(v.minutes * 60)} s" if v.minutes < 1 else f"{round(v.minutes)} min"
        return f"{where}: {who} looked {mood} for {span} ({v.share:.0%} {what}{vs})"
