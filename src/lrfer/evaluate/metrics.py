"""Classification and calibration metrics (numpy only; no scikit-learn dependency), and the image
quality metrics of super-resolution (PSNR, SSIM; torch, on batches).

The classification functions accept torch tensors, numpy arrays or plain sequences and return
plain Python numbers / lists, so that the results can be written to JSON as they are. PSNR and SSIM
take image batches ``(B, C, H, W)`` and return one float64 value per image, as the SR benchmarks
average them over images (see :mod:`lrfer.train.sr` for the protocol).

Conventions (the same as scikit-learn with ``zero_division=0``):

- precision of a class that was never predicted, recall of a class with no true sample, and F1
  when precision + recall = 0 are **0**, never NaN;
- ``macro_f1`` averages the per-class F1 over the classes that occur in ``y_true`` *or* in
  ``y_pred`` (scikit-learn's default label set). A class that is absent from both (e.g. contempt
  in a CK+ fold without contempt) would contribute a meaningless 0 and is left out; a class that
  is predicted but never true keeps its F1 of 0, because those predictions are all mistakes;
- ``balanced_accuracy`` is the mean recall over the classes with at least one true sample;
- ``weighted_f1`` weights each class's F1 by its support (true count).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Any]]

#: Weights of the Aff-Wild2 expression track score (ABAW 2020/2021): 0.33 accuracy + 0.67 macro F1.
CHALLENGE_ACC_WEIGHT = 0.33
CHALLENGE_F1_WEIGHT = 0.67


def _as_numpy(x: ArrayLike, dtype=None) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    return np.asarray(x, dtype=dtype)


def _as_labels(x: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    y = _as_numpy(x).reshape(-1)
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{name} holds indices outside [0, {num_classes}): min {y.min()}, max {y.max()}")
    return y


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)`` int64; row = true class, column = predicted class."""
    t = _as_labels(y_true, "y_true", num_classes)
    p = _as_labels(y_pred, "y_pred", num_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels, y_pred has {p.size}")
    # One bincount over the flattened (true, pred) pair index: no Python loop over samples.
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (the documented 'undefined -> 0' convention)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (precision, recall, f1, support) from a confusion matrix (rows = true)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return precision, recall, f1, support.astype(np.int64)


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix: each row sums to 1, rows without support are all 0."""
    cm = np.asarray(cm, dtype=np.float64)
    return _safe_div(cm, cm.sum(axis=1, keepdims=True))  # (K, 1) broadcasts over each row


def challenge_score(accuracy: float, macro_f1: float) -> float:
    """Aff-Wild2 (ABAW 2020/2021) expression score: 0.33 * accuracy + 0.67 * macro F1.

    Later ABAW editions rank by macro F1 alone, which the report also contains.
    """
    return CHALLENGE_ACC_WEIGHT * float(accuracy) + CHALLENGE_F1_WEIGHT * float(macro_f1)


def classification_report(y_true: ArrayLike, y_pred: ArrayLike, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, F1 scores and confusion matrices of hard predictions.

    Returns a JSON-ready dict with ``n``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``,
    ``weighted_f1``, ``challenge_score``, ``per_class`` (``{class: {precision, recall, f1,
    support}}``), ``confusion`` (counts, list of lists, rows = true class) and
    ``confusion_normalized`` (rows sum to 1; rows of classes without support are all 0).
    See the module docstring for how undefined values and absent classes are handled.
    """
    classes = [str(c) for c in classes]
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    n = int(cm.sum())
    precision, recall, f1, support = precision_recall_f1(cm)
    predicted = cm.sum(axis=0)
    seen = (support > 0) | (predicted > 0)  # classes that occur in y_true or y_pred
    accuracy = float(np.trace(cm) / n) if n else 0.0
    macro_f1 = float(f1[seen].mean()) if seen.any() else 0.0
    weighted_f1 = float((f1 * support).sum() / n) if n else 0.0
    balanced = float(recall[support > 0].mean()) if (support > 0).any() else 0.0
    return {
        "n": n,
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
        "macro_f1": macro_f1,
        "weighted_f1": weighted_f1,
        "challenge_score": challenge_score(accuracy, macro_f1),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion": cm.tolist(),
        "confusion_normalized": normalize_rows(cm).tolist(),
    }


def _check_probs(probs: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = _as_numpy(probs, np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {p.shape}")
    t = _as_labels(y, "y", p.shape[1])
    if len(t) != len(p):
        raise ValueError(f"probs has {len(p)} rows, y has {len(t)} labels")
    return p, t


def expected_calibration_error(probs: ArrayLike, y: ArrayLike, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 prediction (Guo et al., 2017).

    Confidences (max probability) are put into ``n_bins`` equal-width bins ``(lo, hi]`` over
    [0, 1]; ECE = sum over bins of (bin size / N) * |accuracy in bin - mean confidence in bin|.
    0 means perfectly calibrated; an over-confident model has ECE ~ confidence - accuracy.
    """
    p, t = _check_probs(probs, y)
    if len(p) == 0:
        return 0.0
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == t).astype(np.float64)
    # Right-closed bins as in Guo et al.: a confidence of exactly 1.0 falls into the last bin,
    # and the (impossible for a softmax over K >= 2) confidence 0 into the first.
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    conf_sum = np.bincount(bins, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    # |acc_b - conf_b| * n_b / N == |acc_sum_b - conf_sum_b| / N: no division by empty bins.
    return float(np.abs(acc_sum - conf_sum).sum() / len(p))


def nll(probs: ArrayLike, y: ArrayLike, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class; probabilities are clipped at ``eps``
    so that one confidently wrong sample gives a large but finite value."""
    p, t = _check_probs(probs, y)
    if len(p) == 0:
        return 0.0
    return float(-np.log(np.clip(p[np.arange(len(p)), t], eps, None)).mean())


# ---------------------------------------------------------------------------- image quality (super-resolution)
PSNR_CAP_DB = 100.0


def _shave(x: torch.Tensor, shave: int) -> torch.Tensor:
    return x[..., shave:-shave, shave:-shave] if shave > 0 else x


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, shave: int = 0, cap: float = PSNR_CAP_DB) -> torch.Tensor:
    """Per-image PSNR in dB of batches ``(B, C, H, W)``; identical images give ``cap``."""
    x, y = _shave(x, shave).double(), _shave(y, shave).double()
    mse = (x - y).pow(2).flatten(1).mean(1)
    out = 10 * torch.log10(data_range**2 / mse.clamp_min(1e-300))
    return out.clamp(max=cap).where(mse > 0, torch.full_like(out, cap))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 2-D Gaussian window ``(size, size)`` in float64."""
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 1.0,
    shave: int = 0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) of batches ``(B, C, H, W)``, Gaussian window, valid region."""
    x, y = _shave(x, shave).double(), _shave(y, shave).double()
    c = x.shape[1]
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window} px, got {tuple(x.shape[-2:])}")
    w = gaussian_window(window, sigma).to(x.device).expand(c, 1, window, window)

    def filt(t):
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    smap = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return smap.flatten(1).mean(1)
