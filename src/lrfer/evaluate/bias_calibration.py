"""Bias-corrected temperature scaling (Alexandari, Kundaje & Shrikumar, ICML 2020) of a model's
probabilities: ``p' ∝ p ** power * exp(bias)``, one power and one bias per class, fitted by
minimising the NLL on a labelled validation split. It is what makes EM estimates of a site's class
shares (:mod:`lrfer.runtime.em_prior`) trustworthy; the predictions themselves are not changed by
it (the Recognizer does not apply it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LrferError
from ..runtime.em_prior import bias_correct


def fit_bias_correction(probs: Any, labels: Any) -> tuple[float, np.ndarray]:
    """``(power, bias)`` minimising the NLL of ``softmax(log(probs) * power + bias)``; convex, so
    L-BFGS from ``(1, 0)`` finds the one minimum."""
    lp = torch.as_tensor(np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)))
    y = torch.as_tensor(np.asarray(labels, np.int64).reshape(-1))
    if lp.ndim != 2 or len(lp) != len(y) or len(y) == 0:
        raise LrferError(f"{len(y)} labels for probabilities of shape {tuple(lp.shape)}", "give the labelled faces' probabilities")
    power = torch.ones(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(lp.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([power, bias], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lp * power + bias, y)
        loss.backward()
        return loss

    opt.step(closure)
    b = bias.detach().numpy()
    return float(power.item()), b - b.mean()  # a constant shift changes nothing: stored centred


def em_calibration_record(probs: Any, labels: Any, classes: Sequence[str], split: str) -> dict[str, Any]:
    """The JSON record stored under a class-prior record's ``em_calibration``: the fitted power and
    biases, and the mean corrected probabilities on the fitting split (where EM starts from)."""
    power, bias = fit_bias_correction(probs, labels)
    shares = bias_correct(probs, power, bias).mean(axis=0)
    return {
        "power": round(power, 6), "bias": {c: round(float(b), 6) for c, b in zip(classes, bias)},
        "shares": {c: round(float(s), 6) for c, s in zip(classes, shares)}, "split": split, "n": int(len(np.asarray(labels).reshape(-1))),
    }  # fmt: skip
