"""The errors that matter for alerting: calm faces read as distressed, and distressed faces caught.

A monitoring service raises an alert when a person has looked distressed for a while, and
"distressed" is any of the negative classes (:data:`NEGATIVE`: angry, disgust, fear, sad). What
matters for an alert is then not which negative class a face gets but whether it gets one:

- ``neutral_read_negative``: the share of neutral faces read as any negative class (a false
  alarm to a nurse, the error that matters most);
- ``happy_read_negative``: the same for happy faces;
- ``negative_read_negative``: the share of negative faces read as any negative class, not
  necessarily their own (distress caught).

Every share is over ALL the faces of the class: a face with no answer (``None``: not found by the
detector, or marked uncertain) is not read as negative, since it raises no alarm. Classes are
compared by their canonical names (:mod:`lrfer.data`'s ``angry``, ``happy``, ``neutral`` ...), so
models with different class lists (7 classes, FERPlus's 8) are scored by one rule. A share over a
class with no face is ``None``, never 0: "not measured" must not read as "never happens".

``bench/robustness.py`` reports these for every model on every set that has the classes, and
docs/trust.md defines them for the service's alerts with the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional

import numpy as np

#: The classes an alert counts as distress.
NEGATIVE: tuple[str, ...] = ("angry", "disgust", "fear", "sad")


def _names(x: Iterable[Any], what: str) -> np.ndarray:
    """Class names as an object array; ``None`` (no answer) stays ``None``."""
    a = np.array([None if v is None else str(v) for v in x], dtype=object)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of class names")
    return a


def _pair(true: Iterable[Any], pred: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    t, p = _names(true, "true"), _names(pred, "pred")
    if len(t) != len(p):
        raise ValueError(f"true has {len(t)} labels, pred has {len(p)}")
    if any(v is None for v in t):
        raise ValueError("true labels cannot be None")
    return t, p


def read_as_share(true: Iterable[Any], pred: Iterable[Any], of: Sequence[str], read_as: Sequence[str]) -> Optional[float]:
    """The share of faces whose true class is in ``of`` that are read as a class in ``read_as``
    (``None`` when no face is of those classes)."""
    t, p = _pair(true, pred)
    rows = np.isin(t, list(of))
    if not rows.any():
        return None
    return float(np.isin(p[rows], list(read_as)).mean())


def negative_read_shares(true: Iterable[Any], pred: Iterable[Any], negative: Sequence[str] = NEGATIVE) -> dict[str, Any]:
    """``neutral_read_negative``, ``happy_read_negative``, ``negative_read_negative`` (each ``None``
    where the set has no such face) and the counts they are over (``n_neutral``, ``n_happy``,
    ``n_negative``)."""
    t, p = _pair(true, pred)
    out: dict[str, Any] = {}
    for key, of in (("neutral", ("neutral",)), ("happy", ("happy",)), ("negative", tuple(negative))):
        out[f"{key}_read_negative"] = read_as_share(t, p, of, negative)
        out[f"n_{key}"] = int(np.isin(t, list(of)).sum())
    return out


def calm_summary(true: Iterable[Any], pred: Iterable[Any], negative: Sequence[str] = NEGATIVE) -> dict[str, Any]:
    """What a set of calm faces (happy and neutral) says about false alarms: ``neutral_recall``,
    ``happy_recall``, ``neutral_read_negative``, ``happy_read_negative``, the counts, and
    ``neutral_read_as`` / ``happy_read_as``: the share of those faces given each answer (``"none"``
    for no answer), largest first, so that "most neutral faces are called angry or sad" can be read
    off. Faces of other classes, if any, are left out."""
    t, p = _pair(true, pred)
    out: dict[str, Any] = {}
    for cls in ("neutral", "happy"):
        rows = t == cls
        out[f"n_{cls}"] = int(rows.sum())
        out[f"{cls}_recall"] = float((p[rows] == cls).mean()) if rows.any() else None
        out[f"{cls}_read_negative"] = read_as_share(t, p, (cls,), negative)
        answers = ["none" if v is None else v for v in p[rows]]
        names, counts = np.unique(np.array(answers, dtype=str), return_counts=True) if answers else ([], [])
        order = np.argsort(-np.asarray(counts), kind="stable")
        out[f"{cls}_read_as"] = {str(names[i]): float(counts[i] / rows.sum()) for i in order}
    return out
