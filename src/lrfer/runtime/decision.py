"""Abstention: when a face's answer is "uncertain" rather than an expression.

One rule, in numpy, for every place that answers: the ONNX and PyTorch backends (through the
Recognizer), the CLI and the service. A face is uncertain when it is smaller than ``min_face``
pixels, when the model's top probability is below ``min_confidence``, or when the top two
probabilities are closer than ``min_margin``. The label stays the model's top class either way
(old readers of the output keep working); ``uncertain`` says whether to act on it.

A rule can travel with a model: ``lrfer calibrate --coverage`` stores it in the checkpoint's spec
(key ``"abstain"``) and ``lrfer export`` copies it into the ONNX metadata, where both backends
read it back as ``classifier.abstain``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

import numpy as np

from ..errors import LrferError

#: The rule's own keys; a stored record may hold more (how it was chosen), which are kept aside.
RULE_KEYS = ("min_face", "min_confidence", "min_margin")


@dataclass(frozen=True)
class Abstain:
    """The abstention rule; the defaults abstain on nothing."""

    min_face: int = 0  # px: shorter side of the face box in the original image
    min_confidence: float = 0.0  # the top class's probability
    min_margin: float = 0.0  # top probability minus the second

    def __post_init__(self):
        if not (isinstance(self.min_face, (int, np.integer)) and self.min_face >= 0):
            raise LrferError(f"min_face={self.min_face!r}", "give a whole number of pixels, 0 or more")
        for key in ("min_confidence", "min_margin"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and 0.0 <= v <= 1.0):
                raise LrferError(f"{key}={v!r}", "give a probability between 0 and 1")

    def uncertain(self, probs: Any, sizes: Any = None) -> np.ndarray:
        """Bool ``(N,)``: which rows of probabilities ``(N, K)`` (faces of ``sizes`` px, or of
        unknown size when ``None``) this rule answers "uncertain"."""
        p = np.asarray(probs, np.float64)
        if p.ndim != 2 or p.shape[1] < 2:
            raise ValueError(f"probs must be (N, K) with K >= 2, got shape {p.shape}")
        top2 = np.sort(p, axis=1)[:, -2:]
        out = (top2[:, 1] < self.min_confidence) | (top2[:, 1] - top2[:, 0] < self.min_margin)
        if sizes is not None and self.min_face > 0:
            out |= np.asarray(sizes).reshape(-1) < self.min_face
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, **changes: Any) -> "Abstain":
        """This rule with the fields given (not ``None``) replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def with_overrides(stored: Optional[Abstain], **explicit: Any) -> Optional[Abstain]:
    """``stored`` (the model's rule, or None) with the thresholds given explicitly (not None) put
    over it: what ``--abstain`` with ``--min-confidence`` and the like ask for."""
    if all(v is None for v in explicit.values()):
        return stored
    return (stored or Abstain()).updated(**explicit)


def rule_from(record: Optional[Mapping[str, Any]], where: str = "the model") -> Optional[Abstain]:
    """The rule in a stored record (``None``: none stored); a malformed one is a one-line error."""
    if record is None:
        return None
    if not isinstance(record, Mapping):
        raise LrferError(f"{where}: its abstention rule is a {type(record).__name__}, not an object", "store it again with `lrfer calibrate --coverage`")
    try:
        return Abstain(int(record.get("min_face", 0)), float(record.get("min_confidence", 0.0)), float(record.get("min_margin", 0.0)))
    except (TypeError, ValueError) as err:
        raise LrferError(f"{where}: its abstention rule is not valid ({err})", "store it again with `lrfer calibrate --coverage`") from None
