"""A site's class prior estimated from its own unlabelled faces (Saerens, Latinne & Decaestecker,
"Adjusting the outputs of a classifier to new a priori probabilities", Neural Computation 2002).

EM on the model's probabilities alone, no labels: start from the training shares, move every
face's probabilities to the current estimate (:func:`lrfer.runtime.prior.adjust`), take the mean
of the moved probabilities as the next estimate, until it stops changing. It assumes that only the
shares differ between training and site (the faces of each class look alike in both), and it is
only as good as the model's calibration: see docs/trust.md for the procedure and what it gave.

Calibration matters more here than anywhere else: a model trained with label smoothing gives
every class a floor of probability, and EM reads that floor as evidence for a rare class (plain
EM on the shipped model made disgust, 1.5% of FER2013, a quarter to a half of every set). The fix
is bias-corrected temperature scaling (Alexandari et al., ICML 2020): ``p' ∝ p ** power *
exp(bias)``, a power and one bias per class fitted on a labelled validation split
(:func:`lrfer.evaluate.bias_calibration.fit_bias_correction`), stored with the model's training
shares and applied by :func:`site_prior` before EM.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LrferError
from .prior import adjust, em_calibration_from


def bias_correct(probs: Any, power: float, bias: Any) -> np.ndarray:
    """``probs`` ``(N, K)`` recalibrated: ``∝ probs ** power * exp(bias)``, rows summing to 1."""
    z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) * float(power) + np.asarray(bias, np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def site_prior(probs: Any, classifier: Any) -> np.ndarray:
    """The class shares of a site whose faces got ``probs`` ``(N, K)`` from ``classifier`` (as the
    Recognizer gives them, without a prior): EM on the bias-corrected probabilities, from the
    model's training shares. Give the result to ``Recognizer(prior=...)`` / ``--prior``."""
    train = getattr(classifier, "train_prior", None)
    if train is None:
        raise LrferError("the model has no training class shares stored", "store them with `lrfer calibrate --train-split Training` (docs/trust.md)")
    cal = em_calibration_from(getattr(classifier, "prior_record", None), classifier.classes)
    if cal is None:
        raise LrferError("the model has no bias correction stored for EM, and plain EM is unreliable on label-smoothed models", "store one with `lrfer calibrate --train-split Training` (docs/trust.md)")
    power, bias, source = cal
    q, _ = estimate_prior(bias_correct(probs, power, bias), source)
    return q


def estimate_prior(probs: Any, train: Any, *, max_iter: int = 200, tol: float = 1e-6, floor: float = 1e-6) -> tuple[np.ndarray, int]:
    """``(shares, iterations)``: the class shares ``(K,)`` of the faces whose probabilities are
    ``probs`` ``(N, K)`` (a model trained on shares ``train``).

    Stops when no share moves by more than ``tol``; ``floor`` keeps every share positive, so a class
    the site never shows is made rare rather than impossible."""
    p = np.asarray(probs, np.float64)
    t = np.asarray(train, np.float64).reshape(-1)
    if p.ndim != 2 or p.shape[1] != len(t):
        raise ValueError(f"probs must be (N, {len(t)}), got shape {p.shape}")
    if len(p) == 0:
        raise LrferError("no faces to estimate the class shares from", "give the probabilities of at least one face")
    q, iterations, moved = t / t.sum(), 0, np.inf
    while moved >= tol and iterations < max_iter:
        new = np.maximum(adjust(p, q, t).astype(np.float64).mean(axis=0), floor)
        new /= new.sum()
        moved, q, iterations = np.abs(new - q).max(), new, iterations + 1
    return q, iterations
