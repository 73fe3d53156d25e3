"""Batched augmentation on the training device, the one degradation function and the one resize.

Every random parameter is drawn per sample as a tensor; nothing loops over samples in Python.
Mixup and cutmix are per batch (one permutation, one lambda), as in their papers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

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


#: ITU-R 601 luma weights of (R, G, B): the one colour-to-grey rule of the library.
LUMA = (0.299, 0.587, 0.114)


def luma(x: torch.Tensor) -> torch.Tensor:
    """Grey faces ``(B, 1, H, W)`` from colour faces ``(B, 3, H, W)`` by :data:`LUMA`. uint8 in
    gives rounded uint8 out; float in gives float out, differentiable (a loss may run through it)."""
    if x.dtype == torch.uint8:
        gray = (x.float() * x.new_tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return gray.round().clamp(0, 255).to(torch.uint8)
    return (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def resize_faces(x: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Float faces ``(B, C, H, W)`` to ``size_hw``: bilinear, antialiased when shrinking.

    The one resize between a face's own size and a model's input size, used by training
    (:meth:`FaceSet.resized`, which the engine's training and validation faces go through) and by
    inference (``evaluate.predict.preprocess``, the ensembles), so that a model trained at 32 px
    is tested on faces shrunk the way its training faces were. Until 2026-11-24 training shrank
    by area averaging instead; the 32 px students trained under this rule score 1.7 to 2.4 points
    lower on PublicTest faces shrunk by area than on faces shrunk this way (``bench/resize_rule.py``,
    ``bench/results/resize_rule.json``). Not the resolution degradation (:func:`degrade`), which
    keeps the benchmark's area-down protocol.
    """
    if tuple(x.shape[-2:]) == tuple(size_hw):
        return x
    shrink = size_hw[0] < x.shape[-2] or size_hw[1] < x.shape[-1]
    return F.interpolate(x, size=tuple(size_hw), mode="bilinear", align_corners=False, antialias=shrink)


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



def random_erase(x: torch.Tensor, p: float, area: tuple[float, float], views: int = 1) -> torch.Tensor:
    """Random erasing: a rectangle per sample (area fraction and aspect drawn per sample) set to noise.

    ``views`` > 1: the channels are that many views of the same faces stacked, and all of them get
    the same noise, so the views stay identical inside the rectangle.
    """
    b, c, h, w = x.shape
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
    noise = torch.rand(b, c // views, h, w, device=dev, dtype=x.dtype)  # one view's worth: the same draws as views=1
    return torch.where(inside[:, None], noise.repeat(1, views, 1, 1), x)


def random_grayscale(x: torch.Tensor, p: float) -> torch.Tensor:
    """With probability ``p`` per sample, RGB -> luma (ITU-R 601, as FaceSet.to_grayscale) on all 3 channels.

    Grayscale (1-channel) batches are returned as they are.
    """
    if p <= 0 or x.shape[1] != 3:
        return x
    gray = luma(x).expand_as(x)
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
    return torch.where(mask, gray, x)


def random_degrade(x: torch.Tensor, p: float, r_min: int, r_max: int, mode: str) -> torch.Tensor:
    """Multi-resolution augmentation: the double random draw (whether, then which size) per sample."""
    b, _, h, w = x.shape
    sizes = torch.randint(r_min, r_max + 1, (b,), device=x.device)
    sizes = torch.where(torch.rand(b, device=x.device) < p, sizes, torch.full_like(sizes, max(h, w)))
    return degrade(x, sizes, mode)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, *, with_clean: bool = False):
    """Training augmentation of a float batch in [0, 1]: geometry, then resolution, then crop and erase.

    Geometry comes first because it happens to the face before the far camera captures it;
    degradation then simulates the capture; crop and erasing act on what the network sees.

    ``with_clean=True`` returns ``(augmented, clean)``: ``clean`` is the same batch through the same
    random draws but without the degradation (the high-resolution view a distillation teacher
    sees), pixel-aligned with ``augmented``. The random stream consumed is the same either way.
    """
    if cfg.is_affine:
        x = random_affine(x, cfg.rotate, cfg.scale, cfg.translate, cfg.flip)
    elif cfg.flip:
        x = random_flip(x)
    if cfg.grayscale_p > 0:
        x = random_grayscale(x, cfg.grayscale_p)
    clean = x
    if cfg.degrade_p > 0:
        x = random_degrade(x, cfg.degrade_p, cfg.degrade_min, cfg.degrade_max, cfg.degrade_mode)
    c = x.shape[1]
    if with_clean:
        # the clean view rides along as extra channels: crop and erasing draw per sample, not per
        # channel, so both views get the same window and the same rectangle
        x = torch.cat([x, clean], 1)
    if cfg.crop:
        x = random_crop(x, cfg.crop)
    if cfg.erase_p > 0:
        x = random_erase(x, cfg.erase_p, cfg.erase_area, views=2 if with_clean else 1)
    if with_clean:
        return x[:, :c], x[:, c:]
    return x


@dataclass
class Mix:
    """What :func:`mix_batch` did to a batch: sample i became lam * i + (1 - lam) * perm[i]."""

    kind: str  # mixup | cutmix
    lam: float  # weight of the original sample (for cutmix: 1 - the pasted box's area fraction)
    perm: torch.Tensor
    box: Optional[tuple[int, int, int, int]] = None  # cutmix: (top, bottom, left, right), rows/cols [top, bottom)


def _beta(alpha: float) -> float:
    # drawn on the CPU from the global generator: no device sync for a scalar, and the engine's
    # per-epoch torch.manual_seed covers it, which keeps resume exact
    a = torch.tensor(float(alpha))
    return float(torch.distributions.Beta(a, a).sample())


def mix_batch(
    views: Sequence[torch.Tensor],
    targets: torch.Tensor,
    *,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    p: float = 1.0,
) -> tuple[list[torch.Tensor], torch.Tensor, Optional[Mix]]:
    """Mixup (Zhang et al. 2018) or cutmix (Yun et al. 2019) of a batch, on its device.

    ``views`` are image batches ``(B, C, H, W)`` of the same faces (e.g. the student's degraded
    view and the teacher's clean one): all get the same partner and lambda. ``targets`` are float
    ``(B, K)`` class distributions (one-hot or soft) and come back mixed by the same lambda, so
    they still sum to 1. With probability ``1 - p`` the batch is returned as it is (and ``Mix``
    is None). With both alphas set, each mixed batch is mixup or cutmix with equal odds.
    """
    kinds = [k for k, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not kinds or float(torch.rand(())) >= p:
        return list(views), targets, None
    kind = kinds[int(torch.randint(len(kinds), ()))] if len(kinds) > 1 else kinds[0]
    x0 = views[0]
    perm = torch.randperm(x0.shape[0], device=x0.device)
    if kind == "mixup":
        lam = _beta(mixup_alpha)
        out = [v.mul(lam).add_(v[perm], alpha=1 - lam) for v in views]
        box = None
    else:
        h, w = x0.shape[-2:]
        if any(v.shape[-2:] != (h, w) for v in views):
            raise ValueError("cutmix views must have the same height and width")
        r = math.sqrt(1 - _beta(cutmix_alpha))  # the box covers 1 - lam of the area before clipping
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        ch, cw = int(h * r), int(w * r)
        top, bottom = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        left, right = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        # lambda from the box actually pasted: clipping at the border shrinks it
        lam = 1 - (bottom - top) * (right - left) / (h * w)
        out = []
        for v in views:
            v = v.clone()
            v[..., top:bottom, left:right] = v[perm][..., top:bottom, left:right]
            out.append(v)
        box = (top, bottom, left, right)
    mixed = targets.float() * lam + targets[perm].float() * (1 - lam)
    return out, mixed, Mix(kind, lam, perm, box)
