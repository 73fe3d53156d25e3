"""Risk-coverage: accuracy against the share of faces answered, when the faces a model is least
sure of are left unanswered ("uncertain") first.

The curve is what an abstention threshold on the top probability can buy (Geifman & El-Yaniv,
2017): at coverage 1 every face is answered (the plain accuracy); lower, only the most confident
ones. A model whose confidence ranks its right answers first gains accuracy as coverage drops; a
model whose confidence says nothing stays at its plain accuracy. AURC is the mean error over the
curve (0: every right answer ranked before every wrong one). Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import LrferError

#: Coverages reported in tables and JSON.
COVERAGES: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def _check(confidence: Any, correct: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidence, np.float64).reshape(-1)
    ok = np.asarray(correct).reshape(-1).astype(bool)
    if len(c) != len(ok):
        raise ValueError(f"confidence has {len(c)} values, correct has {len(ok)}")
    if len(c) == 0:
        raise LrferError("no faces to measure risk-coverage on", "give labelled faces")
    if not np.all(np.isfinite(c)):
        raise ValueError("confidence holds NaN or infinite values")
    return c, ok


def curve(confidence: Any, correct: Any) -> dict[str, np.ndarray]:
    """The curve's points, one per distinct confidence, most confident first: ``threshold``
    (answer faces with confidence >= it), ``coverage`` and ``accuracy`` of the faces answered.
    Faces of equal confidence are answered or left together, as a threshold would."""
    c, ok = _check(confidence, correct)
    order = np.argsort(-c, kind="stable")
    c, ok = c[order], ok[order]
    right = np.cumsum(ok)
    last = np.flatnonzero(np.append(c[1:] != c[:-1], True))  # the last face of each run of equal confidence
    k = last + 1
    return {"threshold": c[last], "coverage": k / len(c), "accuracy": right[last] / k}


def aurc(confidence: Any, correct: Any) -> float:
    """The area under the risk-coverage curve: the mean error of the most confident k faces over
    every k (ties answered together)."""
    pts = curve(confidence, correct)
    n = len(np.asarray(confidence).reshape(-1))
    sizes = np.diff(np.concatenate([[0], np.round(pts["coverage"] * n)]))
    return float(((1.0 - pts["accuracy"]) * sizes).sum() / n)


def threshold_for_coverage(confidence: Any, coverage: float) -> float:
    """The highest confidence threshold that still answers at least ``coverage`` of the faces."""
    if not (0.0 < coverage <= 1.0):
        raise LrferError(f"coverage {coverage}", "give the share of faces to answer, above 0 and at most 1")
    c = np.sort(np.asarray(confidence, np.float64).reshape(-1))[::-1]
    if len(c) == 0:
        raise LrferError("no faces to choose a threshold on", "give labelled faces")
    return float(c[max(math.ceil(coverage * len(c) - 1e-9), 1) - 1])


def threshold_for_risk(confidence: Any, correct: Any, risk: float) -> float:
    """The lowest confidence threshold (the most faces answered) whose answered faces have an
    error of at most ``risk``; a one-line error when no threshold gets there."""
    if not (0.0 <= risk < 1.0):
        raise LrferError(f"risk {risk}", "give the error allowed among the faces answered, from 0 to below 1")
    pts = curve(confidence, correct)
    fine = np.flatnonzero(1.0 - pts["accuracy"] <= risk + 1e-12)
    if len(fine) == 0:
        raise LrferError(f"no confidence threshold keeps the error at or below {risk:g} on these faces", "allow more error, or choose by --coverage")
    return float(pts["threshold"][fine[-1]])


def answered(confidence: Any, correct: Any, threshold: float) -> dict[str, float]:
    """Coverage and accuracy of the faces with confidence >= ``threshold``."""
    c, ok = _check(confidence, correct)
    keep = c >= threshold
    return {"threshold": float(threshold), "coverage": float(keep.mean()), "accuracy": float(ok[keep].mean()) if keep.any() else float("nan")}


def summary(confidence: Any, correct: Any, coverages: Sequence[float] = COVERAGES) -> dict[str, Any]:
    """JSON-ready: ``aurc`` and, per target coverage, the threshold and what it answers."""
    rows = [{"target": float(t), **answered(confidence, correct, threshold_for_coverage(confidence, t))} for t in coverages]
    return {"aurc": aurc(confidence, correct), "n": int(len(np.asarray(confidence).reshape(-1))), "at": rows}
