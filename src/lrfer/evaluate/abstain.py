"""Choosing an abstention rule on a labelled split, as ``lrfer calibrate --coverage/--risk`` does,
in the form stored with a model (checkpoint spec / ONNX metadata key ``"abstain"``, read back by
:func:`lrfer.runtime.decision.rule_from`).

The confidence threshold is chosen on the faces given (select on a validation split such as
FER2013 PublicTest, never on the set you report on); the face-size threshold is not learnt from
faces of one size, so it is given (``min_face``) and recorded as given.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from ..errors import LrferError
from ..runtime.decision import Abstain
from . import risk_coverage


def choose_rule(
    probs: Any, labels: Any, *, coverage: Optional[float] = None, risk: Optional[float] = None, min_face: int = 0, split: str = ""
) -> dict[str, Any]:
    """The abstention record for probabilities ``(N, K)`` of labelled faces: ``min_confidence``
    answering at least ``coverage`` of them, or as many as keep their error at most ``risk``
    (exactly one of the two), ``min_face`` as given, no margin; plus ``chosen``: how, on what,
    and the coverage and accuracy it gave there."""
    if (coverage is None) == (risk is None):
        raise LrferError("choose the confidence threshold by coverage or by risk", "give one of --coverage and --risk")
    p = np.asarray(probs, np.float64)
    conf, correct = p.max(1), p.argmax(1) == np.asarray(labels).reshape(-1)
    if coverage is not None:
        t, target = risk_coverage.threshold_for_coverage(conf, coverage), {"coverage": float(coverage)}
    else:
        t, target = risk_coverage.threshold_for_risk(conf, correct, risk), {"risk": float(risk)}
    # floored to 6 places, so the stored threshold answers at least what was chosen
    rule = Abstain(min_face=int(min_face), min_confidence=math.floor(float(t) * 1e6) / 1e6)
    got = risk_coverage.answered(conf, correct, rule.min_confidence)
    chosen = {"split": split, "n": int(len(p)), "target": target, "coverage": got["coverage"], "accuracy": got["accuracy"]}
    return {**rule.to_dict(), "chosen": chosen}
