"""Batched augmentation on the training device, and the one degradation function.

Every random parameter is drawn per sample as a tensor; nothing loops over samples in Python.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _target_len(n: int, size: torch.Tensor, longest: int) -> torch.Tensor:
    """Down-sampled length of an axis of ``n`` px when the longer side becomes ``size``."""
    return (size * n / longest).round().clamp(min=1).long()


@functools.lru_cache(maxsize=64)
def _operator_table(n: int, mode: str, device: str, dtype: torch.dtype) -> torch.Tensor:
    """``T[r]`` is the (n, n) matrix of "area down to r, then ``mode`` back up to n" on one axis.

    Both steps are linear and separable, so degrading an image to r px is ``T[r] @ x @ T[r]^T``:
    a batched matrix product with a per-sample operator, instead of one interpolate call per size.
    Built by pushing the identity through the same F.interpolate calls, so it equals them exactly.
    """
    eye = torch.eye(n, dtype=torch.float64).view(n, 1, 1, n)
    table = torch.empty(n + 1, n, n, dtype=torch.float64)
    table[0] = torch.eye(n, dtype=torch.float64)
    smooth = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    for r in range(1, n + 1):
        small = F.interpolate(eye, size=(1, r), mode="area")
        up = F.interpolate(small, size=(1, n), mode=mode, **smooth)
        table[r] = up.view(n, n).T
    table[n] = torch.eye(n, dtype=torch.float64)  # native size: untouched
    return table.to(device=device, dtype=dtype)


def degrade(x: torch.Tensor, size, mode: str = "bilinear") -> torch.Tensor:
    """Simulate a face seen at ``size`` pixels: area down-sampling, then back up to the input size.

    ``x`` is a float batch ``(B, C, H, W)``. ``size`` is an int (the whole batch) or an int tensor
    ``(B,)`` of per-sample sizes (the longer side, in px). This is the single degradation used by
    training (multi-resolution augmentation), the resolution sweep and the benchmarks, so their
    numbers mean the same thing. Sizes at or above the input size leave samples untouched.
    """
    b, _, h, w = x.shape
    longest = max(h, w)
    if not isinstance(size, torch.Tensor):
        if size >= longest:
            return x
        size = torch.full((b,), int(size))
    size = size.to(x.device).clamp(max=longest)
    rows = _operator_table(h, mode, str(x.device), x.dtype)[_target_len(h, size, longest)]
    cols = _operator_table(w, mode, str(x.device), x.dtype)[_target_len(w, size, longest)]
    out = rows[:, None] @ x @ cols[:, None].transpose(-1, -2)
    # clamp: bicubic overshoots [0, 1] at edges
    return out.clamp_(0, 1)


@dataclass
class AugmentConfig:
    """Training-time augmentation; every field is one named trick that can be switched off.

    ``degrade_p`` is multi-resolution training: with probability p each sample is seen at its own
    random size in [degrade_min, degrade_max] px (area down, ``degrade_mode`` back up).
    """

    flip: bool = True
    rotate: float = 10.0  # max degrees, uniform in [-rotate, rotate]
    scale: float = 0.1  # zoom uniform in [1 - scale, 1 + scale]
    translate: float = 0.1  # max shift as a fraction of the image size
    crop: int = 0  # random crop of this size at train time, centre crop at test (0: off)
    erase_p: float = 0.0  # random erasing probability (Zhong et al. 2017)
    erase_area: tuple[float, float] = (0.02, 0.25)
    degrade_p: float = 0.0
    degrade_min: int = 8
    degrade_max: int = 48
    degrade_mode: str = "bilinear"
    grayscale_p: float = 0.0  # RGB input: probability of turning a sample grey (luma on all 3 channels)

    @property
    def is_affine(self) -> bool:
        return self.rotate > 0 or self.scale > 0 or self.translate > 0


def random_affine(x: torch.Tensor, rotate: float, scale: float, translate: float, flip: bool) -> torch.Tensor:
    """Rotation, zoom, shift and horizontal flip folded into one per-sample affine resampling."""
    b = x.shape[0]
    dev = x.device
    angle = (torch.rand(b, device=dev) * 2 - 1) * math.radians(rotate)
    zoom = 1 + (torch.rand(b, device=dev) * 2 - 1) * scale
    shift = (torch.rand(b, 2, device=dev) * 2 - 1) * translate * 2  # affine_grid spans [-1, 1]
    mirror = torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if flip else torch.ones(b, device=dev)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos * mirror, -sin, shift[:, 0]], 1), torch.stack([sin * mirror, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_flip(x: torch.Tensor) -> torch.Tensor:
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(mask, x.flip(-1), x)


def random_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Per-sample random ``size`` x ``size`` crop by gathering index grids (no per-sample loop)."""
    b, c, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (b, 1), device=x.device)
    ox = torch.randint(0, w - size + 1, (b, 1), device=x.device)
    ar = torch.arange(size, device=x.device)
    rows, cols = (oy + ar)[:, None, :, None], (ox + ar)[:, None, None, :]
    batch, chan = torch.arange(b, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, chan, rows, cols]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def random_erase(x: torch.Tensor, p: float, area: tuple[float, float]) -> torch.Tensor:
    """Random erasing: a rectangle per sample (area fraction and aspect drawn per sample) set to noise."""
    b, _, h, w = x.shape
    dev = x.device
    frac = torch.empty(b, device=dev).uniform_(*area)
    log_ratio = torch.empty(b, device=dev).uniform_(math.log(0.3), math.log(3.3))
    eh = (torch.sqrt(frac * torch.exp(log_ratio)) * h).clamp(1, h)
    ew = (torch.sqrt(frac / torch.exp(log_ratio)) * w).clamp(1, w)
    y0 = torch.rand(b, device=dev) * (h - eh)
    x0 = torch.rand(b, device=dev) * (w - ew)
    yy = torch.arange(h, device=dev).view(1, h, 1)
    xx = torch.arange(w, device=dev).view(1, 1, w)
    inside = (yy >= y0.view(b, 1, 1)) & (yy < (y0 + eh).view(b, 1, 1)) & (xx >= x0.view(b, 1, 1)) & (xx < (x0 + ew).view(b, 1, 1))
    inside &= (torch.rand(b, device=dev) < p).view(b, 1, 1)
    return torch.where(inside[:, None], torch.rand_like(x), x)


def random_grayscale(x: torch.Tensor, p: float) -> torch.Tensor:
    """With probability ``p`` per sample, RGB -> luma (ITU-R 601, as FaceSet.to_grayscale) on all 3 channels.

    Grayscale (1-channel) batches are returned as they are.
    """
    if p <= 0 or x.shape[1] != 3:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    gray = (x * w).sum(1, keepdim=True).expand_as(x)
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
    return torch.where(mask, gray, x)


def random_degrade(x: torch.Tensor, p: float, r_min: int, r_max: int, mode: str) -> torch.Tensor:
    """Multi-resolution augmentation: the double random draw (whether, then which size) per sample."""
    b, _, h, w = x.shape
    sizes = torch.randint(r_min, r_max + 1, (b,), device=x.device)
    sizes = torch.where(torch.rand(b, device=x.device) < p, sizes, torch.full_like(sizes, max(h, w)))
    return degrade(x, sizes, mode)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Training augmentation of a float batch in [0, 1]: geometry, then resolution, then crop and erase.

    Geometry comes first because it happens to the face before the far camera captures it;
    degradation then simulates the capture; crop and erasing act on what the network sees.
    """
    if cfg.is_affine:
        x = random_affine(x, cfg.rotate, cfg.scale, cfg.translate, cfg.flip)
    elif cfg.flip:
        x = random_flip(x)
    if cfg.grayscale_p > 0:
        x = random_grayscale(x, cfg.grayscale_p)
    if cfg.degrade_p > 0:
        x = random_degrade(x, cfg.degrade_p, cfg.degrade_min, cfg.degrade_max, cfg.degrade_mode)
    if cfg.crop:
        x = random_crop(x, cfg.crop)
    if cfg.erase_p > 0:
        x = random_erase(x, cfg.erase_p, cfg.erase_area)
    return x


def eval_transform(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """What the model sees at test time: the centre crop when it was trained on crops."""
    return center_crop(x, cfg.crop) if cfg.crop else x
