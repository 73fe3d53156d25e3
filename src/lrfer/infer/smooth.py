"""Temporal smoothing of expression probabilities, per tracked face.

Frame-by-frame predictions on a video flicker between neighbouring expressions; averaging each
track's probabilities over time steadies the label. ``"ema"`` keeps an exponential moving
average ``s = alpha * p + (1 - alpha) * s_prev`` (``alpha`` is the weight of the newest frame;
the first frame of a track is taken as is), ``"window"`` the mean of the last ``window`` frames,
``"none"`` passes probabilities through. State is kept per track id; call ``forget`` with the ids
the tracker dropped so that it does not grow over a long video.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

from ..errors import LrferError, closest

METHODS = ("ema", "window", "none")


class ProbabilitySmoother:
    def __init__(self, method: str = "ema", alpha: float = 0.6, window: int = 5):
        if method not in METHODS:
            raise LrferError(f"unknown smoothing method '{method}'", closest(method, METHODS))
        if method == "ema" and not 0.0 < alpha <= 1.0:
            raise LrferError(f"smoothing alpha must be in (0, 1], not {alpha}", "use e.g. 0.6 (1 means no smoothing)")
        if method == "window" and int(window) < 1:
            raise LrferError(f"smoothing window must be at least 1 frame, not {window}", "use e.g. 5")
        self.method = method
        self.alpha = float(alpha)
        self.window = int(window)
        self._ema: dict[int, np.ndarray] = {}
        self._hist: dict[int, deque] = {}

    def update(self, track_ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Smoothed probabilities ``(N, K)`` for this frame's faces, in the order given.

        ``probs`` is ``(N, K)`` (numpy or torch). An id below 0 marks an untracked face, returned
        unsmoothed.
        """
        if hasattr(probs, "detach"):
            probs = probs.detach().cpu().numpy()
        p = np.asarray(probs)
        dtype = p.dtype if np.issubdtype(p.dtype, np.floating) else np.float32
        p = p.astype(np.float64).reshape(len(p), -1)
        ids = np.asarray(track_ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(p):
            raise ValueError(f"{len(ids)} track ids for {len(p)} probability rows")
        out = p.copy()
        if self.method == "none":
            return out.astype(dtype)
        for i, (tid, row) in enumerate(zip(ids.tolist(), p)):
            if tid < 0:
                continue
            if self.method == "ema":
                prev = self._ema.get(tid)
                s = row if prev is None or prev.shape != row.shape else self.alpha * row + (1.0 - self.alpha) * prev
                self._ema[tid] = s
            else:
                hist = self._hist.get(tid)
                if hist is None or hist[0].shape != row.shape:
                    hist = self._hist[tid] = deque(maxlen=self.window)
                hist.append(row)
                s = np.mean(hist, axis=0)
            out[i] = s
        return out.astype(dtype)

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the state of these tracks (ids never seen are ignored)."""
        for tid in track_ids:
            self._ema.pop(int(tid), None)
            self._hist.pop(int(tid), None)

    def track_ids(self) -> list[int]:
        """Ids of the tracks with state."""
        return sorted(self._ema.keys() | self._hist.keys())

    def reset(self) -> None:
        """Drop all state (a new video)."""
        self._ema.clear()
        self._hist.clear()

    def __len__(self) -> int:
        """Number of tracks with state."""
        return len(self._ema) + len(self._hist)
