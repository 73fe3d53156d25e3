"""Batched augmentation on the training device, and the one degradation function.

Every random parameter is drawn per sample as a tensor; nothing loops over samples in Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _target_hw(h: int, w: int, size: int) -> tuple[int, int]:
    """Down-sampled shape whose longer side is ``size`` (faces are square in practice)."""
    scale = size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def degrade(x: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    """Simulate a face seen at ``size`` pixels: area down-sampling, then back up to the input size.

    ``x`` is a float batch ``(B, C, H, W)``. ``size`` is an int (the whole batch) or an int tensor
    ``(B,)`` of per-sample sizes. This is the single degradation used by training (multi-resolution
    augmentation), the resolution sweep and the benchmarks, so their numbers mean the same thing.
    Sizes at or above the input size leave samples untouched.
    """
    h, w = x.shape[-2:]
    if not isinstance(size, torch.Tensor):
        if size >= max(h, w):
            return x
        small = F.interpolate(x, size=_target_hw(h, w, int(size)), mode="area")
        smooth = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        # clamp: bicubic overshoots [0, 1] at edges
        return F.interpolate(small, size=(h, w), mode=mode, **smooth).clamp_(0, 1)
    out = x.clone()
    # One interpolate call per distinct size (a few dozen at most), never one per sample.
    for s in torch.unique(size).tolist():
        if s >= max(h, w):
            continue
        idx = (size == s).nonzero(as_tuple=True)[0]
        out[idx] = degrade(x[idx], int(s), mode)
    return out
