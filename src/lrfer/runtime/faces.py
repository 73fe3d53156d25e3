"""Face crops to model input in numpy: what the ONNX runtime feeds a classifier, without PyTorch.

The same steps, in the same order and with the same arithmetic, as the torch path
(:func:`lrfer.data.transforms.predict_views`), which stays for GPUs and training: uint8 to float
[0, 1], grey replicated to RGB when the model wants colour, the resize to the model's input size
(bilinear, antialiased when shrinking, as ``torch.nn.functional.interpolate`` computes it), the
centre or ten crops, horizontal flips, and the mean over views. The two are tested to agree to
1e-4 in probabilities. Two implementations because one runs on GPU tensors during training and
the other must not import torch; what they share (the TTA names, the view layout) is defined here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Optional, Union

import numpy as np

from ..errors import LrferError, closest
from ..progress import Progress, report

TTA_MODES: tuple[str, ...] = ("none", "flip", "tencrop")
Size = Union[int, tuple[int, int]]
# Faces per forward pass on a CPU when the caller names none. Large batches fall out of cache: the
# shipped model scored 112 faces/s in batches of 512 and 143 in batches of 128 (186 and 216 in
# NHWC at 128 and 32; bench/results/cpu_predict_batch.json, 2 threads). Smaller batches were
# faster still for it; 128 is what the CPU recipes' runs used, and smaller ones are untested on
# the tiny networks, whose per-batch overhead weighs more.
CPU_BATCH = 128


def size_hw(size: Size) -> tuple[int, int]:
    """``(H, W)`` of a size given as ``48``, ``(48, 48)`` or timm-style ``(C, 48, 48)``."""
    if isinstance(size, int):
        return size, size
    h, w = size[-2:]
    return int(h), int(w)


def check_tta(tta: str, crop: Optional[Size]) -> None:
    """A one-line error for an unknown TTA mode, or ten-crop without a crop size."""
    if tta not in TTA_MODES:
        raise LrferError(f"unknown test-time augmentation '{tta}'", closest(tta, TTA_MODES))
    if tta == "tencrop" and crop is None:
        raise LrferError(
            "tta='tencrop' needs the crop size",
            "pass crop=<the crop size the model was trained on>, e.g. crop=44 for 48 px faces",
        )


def crop_offsets(h: int, w: int, crop: Size, tta: str) -> list[tuple[int, int]]:
    """Top-left corners of the views: the centre (floor offsets) or, for ten-crop, the four corners
    then the centre. Training's validation pass uses the same centre, so a model is tested on the
    pixels it was validated on."""
    ch, cw = size_hw(crop)
    if ch > h or cw > w:
        raise LrferError(f"crop {ch}x{cw} is larger than the {h}x{w} input", "use a smaller crop or a larger input_size")
    centre = ((h - ch) // 2, (w - cw) // 2)
    if tta != "tencrop":
        return [centre]
    return [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), centre]


def views(x: np.ndarray, tta: str, crop: Optional[Size]) -> list[np.ndarray]:
    """The test-time views of a float batch ``(B, C, H, W)``: crops, then their mirrors for flip/ten-crop."""
    if crop is None:
        out = [x]
    else:
        ch, cw = size_hw(crop)
        out = [x[..., t : t + ch, l : l + cw] for t, l in crop_offsets(x.shape[-2], x.shape[-1], crop, tta)]
    if tta in ("flip", "tencrop"):
        out = out + [v[..., ::-1] for v in out]
    return out


@lru_cache(maxsize=64)
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of a 1-D bilinear resize as PyTorch computes it (align_corners=False).

    Shrinking is antialiased: a triangle filter widened by the scale (PyTorch's
    ``_upsample_bilinear2d_aa``, itself PIL's), each row normalised to sum 1. Enlarging is plain
    bilinear with the source coordinate clamped at 0."""
    scale = n_in / n_out
    m = np.zeros((n_out, n_in), np.float64)
    if scale > 1.0:
        support, inv = scale, 1.0 / scale
        for i in range(n_out):
            centre = scale * (i + 0.5)
            lo = max(int(centre - support + 0.5), 0)
            hi = min(int(centre + support + 0.5), n_in)
            j = np.arange(lo, hi)
            w = np.clip(1.0 - np.abs((j - centre + 0.5) * inv), 0.0, None)
            m[i, lo:hi] = w / w.sum() if w.sum() > 0 else 0.0
        return m.astype(np.float32)
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - frac)
    np.add.at(m, (rows, i1), frac)
    return m.astype(np.float32)


def resize_faces(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float faces ``(B, C, H, W)`` to ``size`` (H, W): bilinear, antialiased when shrinking (as
    :func:`lrfer.data.augment.resize_faces`, to float rounding)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    rows, cols = _resize_matrix(h, size[0]), _resize_matrix(w, size[1])
    return np.einsum("oh,bchw,pw->bcop", rows, x, cols, optimize=True).astype(np.float32)


def match_channels(x: np.ndarray, in_chans: Optional[int]) -> np.ndarray:
    """``x`` in ``in_chans`` channels: grey replicated to RGB (what an RGB camera sees of a grey face)."""
    have = x.shape[1]
    if in_chans is None or in_chans == have:
        return x
    if have == 1 and in_chans == 3:
        return np.repeat(x, 3, axis=1)
    raise LrferError(
        f"the model takes {in_chans}-channel images, these have {have}",
        "convert the faces to grey first" if in_chans == 1 else "use faces with the model's channel count",
    )


def as_batch(images) -> np.ndarray:
    """Faces as a ``(N, C, H, W)`` array, uint8 or float in [0, 1]; a torch tensor is read as numpy."""
    if hasattr(images, "detach") and hasattr(images, "numpy"):  # a torch tensor, without importing torch
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"images must be a (N, C, H, W) tensor or array, got shape {x.shape}")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"images must be uint8 (0-255) or float in [0, 1], got {x.dtype}")
    return x


def preprocess(xb: np.ndarray, *, in_chans: Optional[int], input_size: Optional[Size]) -> np.ndarray:
    """One batch to float32 [0, 1] in ``in_chans`` channels at ``input_size``."""
    xb = xb.astype(np.float32) / np.float32(255.0) if xb.dtype == np.uint8 else xb.astype(np.float32)
    xb = match_channels(xb, in_chans)
    return resize_faces(xb, size_hw(input_size)) if input_size is not None else xb


def predict_views(
    forward: Callable[[np.ndarray], np.ndarray],
    images,
    *,
    num_classes: int,
    in_chans: Optional[int],
    batch_size: Optional[int] = None,
    tta: str = "none",
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    progress: Optional[Progress] = None,
    task: str = "predict",
) -> np.ndarray:
    """``(N, num_classes)`` float32: :func:`preprocess`, the TTA views run as one batch through
    ``forward`` (float ``(V * B, C, S, S)`` to per-view outputs), and the mean over views."""
    check_tta(tta, crop)
    x_all = as_batch(images)
    batch_size = CPU_BATCH if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(x_all)
    if n == 0:
        return np.empty((0, num_classes), np.float32)
    out = []
    for start in range(0, n, batch_size):
        xb = preprocess(x_all[start : start + batch_size], in_chans=in_chans, input_size=input_size)
        vs = views(xb, tta, crop)
        batch = np.ascontiguousarray(np.concatenate(vs) if len(vs) > 1 else vs[0])
        out.append(np.asarray(forward(batch), np.float32).reshape(len(vs), len(xb), -1).mean(0))
        report(progress, task, min(start + batch_size, n), n)
    return np.concatenate(out)
