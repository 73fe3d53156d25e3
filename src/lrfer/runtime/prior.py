"""The deployment's class prior: telling a model how often each expression occurs where it watches.

A classifier's probabilities carry the class shares of its training set (FER2013 Training: 25%
happy, 17% neutral, 14% fear...). Where the shares differ, as in a lounge where most faces are
calm, Bayes' rule moves them (logit adjustment at inference; Saerens et al., 2002)::

    p_deploy(c | x)  ∝  p_model(c | x) * prior_deploy(c) / prior_train(c)

``prior_train`` is stored with the model (checkpoint spec / ONNX metadata key ``"class_prior"``:
``{"shares": {class: share}, "source": ...}``); ``prior_deploy`` is given by the user
(:func:`parse_prior`) or estimated from the site's own unlabelled faces (:mod:`.em_prior`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

import numpy as np

from ..errors import LrferError, closest

PriorSpec = Union[None, str, Mapping[str, float], Sequence[float], np.ndarray]
_HINT = "write e.g. neutral=0.5,happy=0.25 (classes not named share the rest) or uniform"


def _named_shares(text: str, classes: Sequence[str]) -> dict[str, float]:
    shares: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise LrferError(f"prior {text!r}: {item!r} has no '='", _HINT)
        if name not in classes:
            raise LrferError(f"prior {text!r}: the model has no class '{name}'", closest(name, classes))
        try:
            shares[name] = float(value)
        except ValueError:
            raise LrferError(f"prior {text!r}: {value!r} is not a number", _HINT) from None
    if not shares:
        raise LrferError(f"prior {text!r} names no class", _HINT)
    return shares


def _complete(shares: Mapping[str, float], classes: Sequence[str], what: str) -> np.ndarray:
    """Shares of every class: the named ones, the rest sharing what is left equally."""
    if any(not (math.isfinite(v) and 0.0 <= v <= 1.0) for v in shares.values()):
        raise LrferError(f"prior {what}: shares must lie between 0 and 1", _HINT)
    given = sum(shares.values())
    rest = [c for c in classes if c not in shares]
    if given > 1.0 + 1e-6 or (not rest and given <= 0):
        raise LrferError(f"prior {what}: the shares add up to {given:g}", "give shares that add up to 1 or less")
    fill = max(1.0 - given, 0.0) / len(rest) if rest else 0.0
    p = np.array([shares.get(c, fill) for c in classes], np.float64)
    if p.sum() <= 0:
        raise LrferError(f"prior {what} gives every class a share of 0", _HINT)
    return p / p.sum()


def parse_prior(spec: PriorSpec, classes: Sequence[str]) -> Optional[np.ndarray]:
    """Class shares ``(K,)`` summing to 1, in ``classes`` order, from ``"uniform"``,
    ``"neutral=0.5,happy=0.25"`` (classes not named share the rest equally), a mapping
    ``{class: share}`` or a sequence of ``K`` shares (normalised); ``None`` or ``""``: no prior."""
    classes = tuple(classes)
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str):
        if spec.strip() == "uniform":
            return np.full(len(classes), 1.0 / len(classes))
        return _complete(_named_shares(spec, classes), classes, repr(spec))
    if isinstance(spec, Mapping):
        unknown = [c for c in spec if c not in classes]
        if unknown:
            raise LrferError(f"prior: the model has no class '{unknown[0]}'", closest(str(unknown[0]), classes))
        return _complete({str(k): float(v) for k, v in spec.items()}, classes, "mapping")
    p = np.asarray(spec, np.float64).reshape(-1)
    if len(p) != len(classes) or not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
        raise LrferError(f"prior: {len(p)} shares for {len(classes)} classes, or negative ones", _HINT)
    return p / p.sum()


def shares_of_counts(counts: Sequence[int]) -> np.ndarray:
    """Class shares from class counts (a training set's)."""
    c = np.asarray(counts, np.float64)
    if c.ndim != 1 or c.min() < 0 or c.sum() <= 0:
        raise ValueError(f"counts must be non-negative with a positive total, got {c.tolist()}")
    return c / c.sum()


def prior_record(classes: Sequence[str], shares: Sequence[float], source: str) -> dict[str, Any]:
    """The JSON record stored with a model: its training set's class shares and where they come from."""
    return {"shares": {c: round(float(s), 6) for c, s in zip(classes, shares)}, "source": source}


def train_prior_from(record: Optional[Mapping[str, Any]], classes: Sequence[str], where: str = "the model") -> Optional[np.ndarray]:
    """The training shares in a stored record, in ``classes`` order (``None``: none stored)."""
    if record is None:
        return None
    shares = record.get("shares") if isinstance(record, Mapping) else None
    if not isinstance(shares, Mapping) or set(shares) != set(classes):
        raise LrferError(f"{where}: its training class shares do not name its classes", "store them again (docs/trust.md)")
    p = np.array([float(shares[c]) for c in classes], np.float64)
    if not np.all(np.isfinite(p)) or p.min() <= 0:
        raise LrferError(f"{where}: its training class shares must all be positive", "store them again (docs/trust.md)")
    return p / p.sum()


def em_calibration_from(record: Optional[Mapping[str, Any]], classes: Sequence[str]) -> Optional[tuple[float, np.ndarray, np.ndarray]]:
    """``(power, bias, shares)`` of the bias correction stored for EM (:mod:`.em_prior`) in a
    class-prior record, in ``classes`` order: ``shares`` are the mean corrected probabilities on
    the split it was fitted on, where EM starts; ``None`` when none is stored."""
    cal = record.get("em_calibration") if isinstance(record, Mapping) else None
    if cal is None:
        return None
    try:
        bias = np.array([float(cal["bias"][c]) for c in classes])
        shares = np.array([float(cal["shares"][c]) for c in classes])
        return float(cal["power"]), bias, shares / shares.sum()
    except (KeyError, TypeError, ValueError):
        raise LrferError("the model's bias correction for EM is not valid", "store it again with `lrfer calibrate --train-split` (docs/trust.md)") from None


def adjust(probs: Any, deploy: Optional[np.ndarray], train: Optional[np.ndarray]) -> np.ndarray:
    """``probs`` ``(N, K)`` moved from the training shares to the deployment's (rows sum to 1);
    unchanged (as float32) without a deployment prior."""
    p = np.asarray(probs, np.float32)
    if deploy is None:
        return p
    if train is None:
        raise LrferError("a deployment prior needs the model's training class shares, and this model has none stored", "store them with `lrfer calibrate` (docs/trust.md)")
    q = p.astype(np.float64) * (np.asarray(deploy, np.float64) / np.asarray(train, np.float64))
    total = q.sum(axis=1, keepdims=True)
    # A face whose every likely class has a deployment share of 0: keep the model's own answer.
    q = np.where(total > 0, q / np.where(total > 0, total, 1.0), p)
    return q.astype(np.float32)
