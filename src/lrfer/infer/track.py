"""Stable ids for faces across video frames.

Boxes are matched greedily to tracks by descending IoU against each track's predicted box
(its last box moved by its recent velocity). Faces that are small or move fast can have no
overlap at all from one frame to the next; for those, what is left unmatched is paired by
centre distance measured in face sizes, between boxes of similar size. A track that is not seen
for more than ``max_age`` frames is dropped, and ids are never given out twice (until ``reset``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Track:
    id: int
    box: np.ndarray  # (4,) float64, last seen
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # centre px per frame
    missed: int = 0  # frames since last seen
    hits: int = 1

    def predicted(self) -> np.ndarray:
        dx, dy = self.velocity * (self.missed + 1)
        return self.box + np.array([dx, dy, dx, dy])


class IoUTracker:
    """Frame-to-frame face tracker; ``update(boxes)`` once per frame, in order.

    ``max_distance`` (in face sizes, the square root of the box area) and ``max_size_ratio``
    bound the centre-distance fallback used when boxes do not overlap enough.
    """

    def __init__(self, iou_threshold: float = 0.3, max_age: int = 15, *, max_distance: float = 2.0, max_size_ratio: float = 2.0):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], not {iou_threshold}")
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, not {max_age}")
        self.iou_threshold = float(iou_threshold)
        self.max_age = int(max_age)
        self.max_distance = float(max_distance)
        self.max_size_ratio = float(max_size_ratio)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and number ids from 1 again (a new video)."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        #: Ids dropped by the last ``update`` (lost for more than ``max_age`` frames): pass them to
        #: ``ProbabilitySmoother.forget`` so that per-track state does not grow without bound.
        self.dropped: list[int] = []

    def active_ids(self) -> list[int]:
        """Ids of the tracks still kept (seen within the last ``max_age`` frames)."""
        return [t.id for t in self._tracks]

    def update(self, boxes: np.ndarray) -> np.ndarray:
        """Track ids ``(N,)`` int64 for this frame's boxes ``(N, 4)`` x1 y1 x2 y2."""
        det = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = np.zeros(len(det), dtype=np.int64)
        tracks = self._tracks
        pairs = self._match(tracks, det)

        matched_t = set()
        for ti, di in pairs:
            t = tracks[ti]
            step = (_centre(det[di]) - _centre(t.box)) / (t.missed + 1)
            t.velocity = step if t.hits == 1 else 0.5 * t.velocity + 0.5 * step
            t.box, t.missed, t.hits = det[di].copy(), 0, t.hits + 1
            ids[di] = t.id
            matched_t.add(ti)

        self.dropped = []
        kept: list[_Track] = []
        for ti, t in enumerate(tracks):
            if ti not in matched_t:
                t.missed += 1
                if t.missed > self.max_age:
                    self.dropped.append(t.id)
                    continue
            kept.append(t)
        matched_d = {di for _, di in pairs}
        for di in range(len(det)):
            if di not in matched_d:
                kept.append(_Track(self._next_id, det[di].copy()))
                ids[di] = self._next_id
                self._next_id += 1
        self._tracks = kept
        return ids

    def _match(self, tracks: list[_Track], det: np.ndarray) -> list[tuple[int, int]]:
        if not tracks or not len(det):
            return []
        pred = np.stack([t.predicted() for t in tracks])
        iou = _iou(pred, det)
        pairs: list[tuple[int, int]] = []
        free_t = np.ones(len(tracks), bool)
        free_d = np.ones(len(det), bool)
        for ti, di in zip(*np.unravel_index(np.argsort(-iou, axis=None, kind="stable"), iou.shape)):
            if iou[ti, di] < self.iou_threshold:
                break
            if free_t[ti] and free_d[di]:
                pairs.append((int(ti), int(di)))
                free_t[ti] = free_d[di] = False

        if free_t.any() and free_d.any():
            # Fallback for what overlaps too little: centre distance in face sizes, similar sizes only.
            pa, da = _area(pred), _area(det)
            scale = np.sqrt(np.maximum(pa, 1e-9))[:, None]
            dist = np.linalg.norm(_centre(pred)[:, None, :] - _centre(det)[None, :, :], axis=-1) / scale
            ratio = np.sqrt(np.maximum(da[None, :], 1e-9) / np.maximum(pa[:, None], 1e-9))
            ok = (dist <= self.max_distance) & (ratio <= self.max_size_ratio) & (ratio >= 1.0 / self.max_size_ratio)
            ok &= free_t[:, None] & free_d[None, :]
            cost = np.where(ok, dist, np.inf)
            for ti, di in zip(*np.unravel_index(np.argsort(cost, axis=None, kind="stable"), cost.shape)):
                if not np.isfinite(cost[ti, di]):
                    break
                if free_t[ti] and free_d[di]:
                    pairs.append((int(ti), int(di)))
                    free_t[ti] = free_d[di] = False
        return pairs


def _centre(b: np.ndarray) -> np.ndarray:
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2], axis=-1)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(len(a), len(b))``."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
