"""Temperature scaling (Guo et al., 2017): one scalar ``T`` that divides a classifier's logits so
that its confidence matches its accuracy, without changing any prediction.

``T`` is fitted by minimising the negative log-likelihood on held-out faces, stored in the
checkpoint's model spec (key ``"temperature"``, with a ``"calibration"`` record of how it was
fitted) and applied by :class:`lrfer.predict.classifier.FaceClassifier` and by ONNX exports.

    logits = predict_logits(model, faces.images, crop=..., input_size=...)
    t = fit_temperature(logits, faces.labels)
    set_checkpoint_temperature("model.safetensors", t, calibration=calibration_report(logits, faces.labels, t))
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..data.transforms import predict_logits
from ..errors import LrferError
from ..models.checkpoint import _META_KEY, FORMAT, load_checkpoint, read_safetensors, update_spec, write_safetensors
from ..predict.classifier import FaceClassifier
from .abstain import choose_rule
from .bias_calibration import em_calibration_record
from .metrics import expected_calibration_error, nll

#: The range a fitted temperature is kept in: outside it the model is either degenerate or the
#: validation set too small to say anything, and an extreme T would only hide that.
T_MIN, T_MAX = 0.05, 20.0
ECE_BINS = 15

ArrayLike = Union[torch.Tensor, np.ndarray]


def _logits_labels(logits: ArrayLike, labels: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits).detach().cpu().double()
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels).detach().cpu().reshape(-1)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(f"logits must be (N, K) with K >= 2, got shape {tuple(z.shape)}")
    if len(z) != len(y):
        raise ValueError(f"logits has {len(z)} rows, labels has {len(y)}")
    if len(z) == 0:
        raise LrferError("no faces to calibrate on", "give a validation split with labelled faces")
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got {y.dtype}")
    y = y.long()
    if int(y.min()) < 0 or int(y.max()) >= z.shape[1]:
        raise ValueError(f"labels hold indices outside [0, {z.shape[1]}): min {int(y.min())}, max {int(y.max())}")
    if not torch.isfinite(z).all():
        raise ValueError("logits hold NaN or infinite values")
    return z, y


def apply_temperature(logits: ArrayLike, temperature: float) -> torch.Tensor:
    """``softmax(logits / T)``, float32 ``(N, K)``."""
    _check_temperature(temperature)
    z = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits).detach().cpu()
    return (z.double() / float(temperature)).softmax(-1).float()


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise LrferError(f"temperature {temperature} is not a positive number", "a temperature is > 0 (1 leaves probabilities as they are)")
    return t


def fit_temperature(logits: ArrayLike, labels: ArrayLike) -> float:
    """The ``T`` in [T_MIN, T_MAX] minimising the mean NLL of ``softmax(logits / T)``.

    The NLL is convex in ``1 / T`` (log-sum-exp of a linear function minus a linear function), so it
    has one minimum along log T: a coarse grid finds its bracket, a golden-section search narrows it
    to ~1e-6 in log T. Unlike gradient steps this cannot diverge or stall on a flat start, and it
    stops at the bound when the minimum lies outside (e.g. a model that is right on every face).
    """
    z, y = _logits_labels(logits, labels)

    def loss(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), y))

    lo, hi = math.log(T_MIN), math.log(T_MAX)
    grid = np.linspace(lo, hi, 49)
    values = [loss(v) for v in grid]
    i = int(np.argmin(values))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-6:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    best = min([(values[i], grid[i]), (fc, c), (fd, d)])[1]
    return float(min(max(math.exp(best), T_MIN), T_MAX))


def calibration_report(logits: ArrayLike, labels: ArrayLike, temperature: float) -> dict[str, Any]:
    """NLL and ECE (15 bins, :func:`lrfer.evaluate.metrics.expected_calibration_error`) of
    ``softmax(logits)`` before and ``softmax(logits / temperature)`` after; JSON-ready."""
    z, y = _logits_labels(logits, labels)
    t = _check_temperature(temperature)
    before, after = z.softmax(-1), (z / t).softmax(-1)
    return {
        "n": len(y),
        "temperature": t,
        "accuracy": float((z.argmax(-1) == y).double().mean()),
        "nll_before": nll(before, y),
        "nll_after": nll(after, y),
        "ece_before": expected_calibration_error(before, y, ECE_BINS),
        "ece_after": expected_calibration_error(after, y, ECE_BINS),
        "ece_bins": ECE_BINS,
    }


def set_checkpoint_temperature(
    path_in: Union[str, os.PathLike],
    temperature: float,
    path_out: Union[str, os.PathLike, None] = None,
    *,
    calibration: Optional[dict] = None,
) -> Path:
    """Store ``temperature`` (and the ``calibration`` record: split, n, NLL/ECE before/after) in a
    classifier checkpoint's spec; weights, info and training state are kept as they are.

    Written atomically to ``path_out`` (default: over ``path_in``). Without ``calibration`` any
    earlier record is dropped, since it described another temperature.
    """

    t = _check_temperature(temperature)
    path_in = Path(path_in)
    if not path_in.exists():
        raise LrferError(f"no such checkpoint: {path_in}", "give the path of a .safetensors file written by `lrfer train`")
    tensors, meta = read_safetensors(path_in, _META_KEY, FORMAT, "lrfer checkpoint", "use a file written by `lrfer train`", article="an")
    spec = meta["model"]
    if not spec.get("classes"):
        raise LrferError(
            f"{path_in} holds a '{spec.get('name')}' with no classes (a super-resolution model?)",
            "a temperature only applies to a classifier checkpoint",
        )
    spec["temperature"] = t
    spec.pop("calibration", None)
    if calibration is not None:
        spec["calibration"] = {**calibration, "temperature": t}
    out = Path(path_out) if path_out is not None else path_in
    try:
        return write_safetensors(out, tensors, _META_KEY, meta)
    except OSError as err:
        raise LrferError(f"cannot write {out} ({err.strerror or err})", "choose a writable path") from None


def calibrate_checkpoint(
    path_in: Union[str, os.PathLike],
    faces,
    *,
    split: str,
    path_out: Union[str, os.PathLike, None] = None,
    device: Union[str, torch.device, None] = None,
    progress=None,
    abstain: Optional[dict[str, Any]] = None,
    class_prior: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Fit the temperature of a classifier checkpoint on a labelled :class:`FaceSet` (named
    ``split`` in the record), store it, and return the calibration report.

    ``abstain``: the keyword arguments of :func:`lrfer.evaluate.abstain.choose_rule` (``coverage``
    or ``risk``, ``min_face``): an abstention rule chosen on the same faces, with the fitted
    temperature, is stored too (report key ``abstain``). ``class_prior``: a training class-share
    record (:func:`lrfer.runtime.prior.prior_record`) to store, with the bias correction EM needs
    (:func:`lrfer.evaluate.bias_calibration.em_calibration_record`) fitted on the same faces.
    See docs/trust.md.

    The report's "after" numbers are measured on the faces ``T`` was fitted on, so they are
    optimistic; for an honest estimate hold out part of the faces (see bench/calibrate_default.py).
    """

    clf = FaceClassifier(load_checkpoint(path_in), device or "cpu")
    faces = clf.prepare(faces)
    # Without TTA: with TTA the classifier averages per-view probabilities, which a temperature
    # fitted on one logit vector per face would only approximate.
    logits = predict_logits(clf.model, faces.images, crop=clf.crop, input_size=clf.image_size, device=clf.device, progress=progress, task="calibrate")
    t = fit_temperature(logits, faces.labels)
    report = {"split": split, **calibration_report(logits, faces.labels, t)}
    out = set_checkpoint_temperature(path_in, t, path_out, calibration=report)
    extra: dict[str, Any] = {}
    probs, labels = apply_temperature(logits, t).numpy(), faces.labels.numpy()
    if abstain is not None:
        extra["abstain"] = report["abstain"] = choose_rule(probs, labels, split=split, **abstain)
    if class_prior is not None:  # with the bias correction EM needs, fitted on the same faces
        cal = em_calibration_record(probs, labels, clf.classes, split)
        extra["class_prior"] = report["class_prior"] = {**class_prior, "em_calibration": cal}
    report["path"] = str(update_spec(out, extra) if extra else out)
    return report
