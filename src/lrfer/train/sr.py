"""Training an EDSR super-resolution model on faces, and the PSNR / SSIM report (Qin 2021's SR stage).

Data. The high-resolution (HR) targets are the training faces themselves at ``hr_size`` (48 px
for FER2013), or random ``patch`` crops of them; the low-resolution (LR) input is their area
down-sampling by the scale, ``F.interpolate(hr, scale_factor=1/s, mode="area")``: the same
operator as the down step of :func:`lrfer.data.augment.degrade`, so "a face seen at 24 px" means
the same thing in SR training, the front end's ``restore`` mode and the resolution sweep. Horizontal
flips augment (Lim et al. also rotate by 90 degrees; upright faces should stay upright).

Optimisation as Lim et al. (2017): L1 loss, Adam with betas (0.9, 0.999) and eps 1e-8, batches of
16, learning rate 1e-4 halved every ``lr_step`` epochs (they halve every 2e5 of 3e5 updates; with
FER2013's 1,794 updates per epoch, ``lr_step`` counts epochs instead).

Outputs in ``out_dir``: ``best.safetensors`` (highest validation PSNR) and ``last.safetensors``
(self-describing checkpoints: ``load_checkpoint(p).build_model()`` rebuilds the EDSR, and
``create_model("fronted", sr=p)`` puts it in front of a classifier), ``metrics.jsonl``,
``config.json`` and ``sr_report.json``: PSNR and SSIM of the best model against bicubic
up-sampling on the held-out faces at x2 and x4 (and the model's own scale). An x2 model is
evaluated at x4 by applying it twice.

Metrics follow the usual SR benchmark conventions: images in [0, 1] (data range 1), the model's
output clamped to [0, 1], ``scale`` pixels shaved off every border before comparing (as Lim et al.'s
evaluation code), PSNR averaged over images (an exact match is capped at 100 dB), and SSIM of Wang
et al. (2004) with an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, computed on the
valid part of the image (no padding) and averaged over pixels, channels and images. "Bicubic" is
torch's bicubic interpolation (a = -0.75, ``align_corners=False``), not MATLAB's ``imresize``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import random_crop, random_flip
from ..data.faceset import FaceSet
from ..device import resolve_device
from ..errors import LrferError, closest
from ..evaluate.metrics import psnr, ssim
from ..files import atomic_write_text
from ..models import create_model
from ..models.checkpoint import load_checkpoint, model_spec
from ..models.init_weights import init_from
from ..progress import Progress, report
from .run import Run, epoch_order, seed_epoch

#: ``--config`` name -> registered model.
SR_CONFIGS = {"light": "edsr_light", "paper": "edsr"}


# ---------------------------------------------------------------------------- resampling
def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The LR capture of an HR batch: area down-sampling by ``scale``."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="area")


def bicubic_upscale(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The baseline: bicubic up-sampling by ``scale``, clamped to [0, 1]."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def super_resolve(model: nn.Module, lr: torch.Tensor, scale: int) -> Optional[torch.Tensor]:
    """``model`` applied to reach ``scale`` (once, or k times when ``scale = model.scale**k``), clamped; None if it cannot."""
    s = int(model.scale)
    passes = 0
    total = 1
    while total < scale:
        total *= s
        passes += 1
    if total != scale:
        return None
    out = lr
    for _ in range(passes):
        out = model(out).clamp(0, 1)
    return out


def _method(model: nn.Module, name: str, scale: int) -> Optional[str]:
    s = int(model.scale)
    if s == scale:
        return f"{name} x{s}"
    k = round(math.log(scale, s)) if scale > 1 else 0
    return f"{name} x{s} applied {k} times" if s**k == scale else None


# ---------------------------------------------------------------------------- config
@dataclass
class SRConfig:
    """Settings of :func:`train_sr` (defaults: Lim et al.'s optimisation, the light CPU model)."""

    config: str = "light"  # light (edsr_light: 4 x 32) | paper (edsr: 16 x 128, Qin 2021)
    scale: int = 2
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    grayscale: bool = True
    hr_size: int = 48  # faces are resized to this: the HR targets
    patch: int = 0  # random HR crops of this size (0: whole faces); a multiple of the scale
    flip: bool = True
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    lr_step: int = 10  # epochs between halvings of the learning rate
    lr_gamma: float = 0.5
    init_from: str = ""  # x2 checkpoint to start an x4 model from (Lim et al.)
    limit_train: int = 0  # first N training faces only (0: all)
    limit_val: int = 1000  # first N held-out faces for validation and the report (0: all)
    holdout: float = 0.1  # share of the training faces held out when no validation faces are given
    report_scales: tuple[int, ...] = (2, 4)
    eval_batch_size: int = 256
    seed: int = 0
    device: str = "auto"

    @property
    def model(self) -> str:
        return SR_CONFIGS[self.config]

    def validate(self) -> "SRConfig":
        if self.config not in SR_CONFIGS:
            raise LrferError(f"SR config '{self.config}' is not one of {', '.join(SR_CONFIGS)}", closest(self.config, SR_CONFIGS))
        if self.scale not in (2, 3, 4):
            raise LrferError(f"scale {self.scale} is not supported", "use --scale 2, 3 or 4")
        if self.hr_size % self.scale:
            raise LrferError(f"hr_size {self.hr_size} is not a multiple of the scale {self.scale}", "use e.g. 48 (x2, x3, x4)")
        if self.patch and (self.patch % self.scale or self.patch > self.hr_size):
            raise LrferError(f"patch {self.patch} must be a multiple of the scale {self.scale} and at most hr_size {self.hr_size}", "use e.g. patch = 0 (whole faces)")
        if self.init_from and self.scale != 4:
            raise LrferError("--init-from starts an x4 model from an x2 checkpoint", "add --scale 4, or drop --init-from")
        if self.init_from and not Path(self.init_from).exists():
            raise LrferError(f"no such x2 checkpoint: {self.init_from}", "train one first: lrfer train-sr --scale 2")
        if self.batch_size < 1 or self.epochs < 1:
            raise LrferError("epochs and batch_size must be at least 1", "check --epochs / --batch-size")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SRResult:
    out_dir: Path
    best_path: Path
    last_path: Path
    best_psnr: float
    best_epoch: int
    report: dict
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------- data
def _prepare(faces: FaceSet, cfg: SRConfig) -> FaceSet:
    if cfg.grayscale:
        faces = faces.to_grayscale()
    return faces.resized(cfg.hr_size)


def _split_holdout(faces: FaceSet, share: float) -> tuple[FaceSet, FaceSet]:
    """(train, held-out): the last ``share`` of the subjects (groups) or rows, never splitting a subject."""
    n = len(faces)
    if faces.groups is not None:
        groups = np.unique(faces.groups)
        held = set(groups[len(groups) - max(1, int(round(share * len(groups)))) :].tolist())
        mask = np.array([g in held for g in faces.groups])
    else:
        mask = np.zeros(n, dtype=bool)
        mask[n - max(1, int(round(share * n))) :] = True
    return faces.subset(~mask), faces.subset(mask)


def _as_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images.to(device).float().div_(255)


def prepare_sr_data(cfg: SRConfig, faces: FaceSet, val_faces: Optional[FaceSet]) -> tuple[FaceSet, FaceSet]:
    """(training HR faces, held-out HR faces) as :func:`train_sr` uses them (shared with SRGAN training).

    Without ``val_faces`` the last ``cfg.holdout`` of the subjects (or rows) is held out; both sets
    are prepared (grayscale, ``hr_size``) and cut to ``limit_train`` / ``limit_val``.
    """
    if val_faces is None:
        faces, val_faces = _split_holdout(faces, cfg.holdout)
    train_set, val_set = _prepare(faces, cfg), _prepare(val_faces, cfg)
    if cfg.limit_train:
        train_set = train_set.subset(np.arange(min(cfg.limit_train, len(train_set))))
    if cfg.limit_val:
        val_set = val_set.subset(np.arange(min(cfg.limit_val, len(val_set))))
    if len(train_set) == 0 or len(val_set) == 0:
        raise LrferError(f"SR training needs training and held-out faces, got {len(train_set)} and {len(val_set)}", "check the splits and --limit-train")
    return train_set, val_set


def epoch_lr(cfg: SRConfig, epoch: int) -> float:
    """The step schedule: ``cfg.lr`` times ``lr_gamma`` every ``lr_step`` epochs (epochs count from 1)."""
    return cfg.lr * cfg.lr_gamma ** ((epoch - 1) // max(1, cfg.lr_step))


def hr_batches(images: torch.Tensor, cfg: SRConfig, epoch: int, batch_size: int, steps: int):
    """The epoch's HR training batches, float in [0, 1], random-cropped (``patch``) and flipped.

    The order and the augmentation are seeded by ``cfg.seed`` and ``epoch`` (:mod:`lrfer.train.run`), so a run repeats.
    """
    seed_epoch(cfg.seed, epoch)
    order = epoch_order(cfg.seed, epoch, len(images)).to(images.device)
    for i in range(steps):
        hr = images[order[i * batch_size : (i + 1) * batch_size]].float().div_(255)
        if cfg.patch and cfg.patch < cfg.hr_size:
            hr = random_crop(hr, cfg.patch)
        if cfg.flip:
            hr = random_flip(hr)
        yield hr


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_sr(model: nn.Module, images: torch.Tensor, scale: int, *, batch_size: int = 256, device: Optional[torch.device] = None) -> dict:
    """Mean PSNR / SSIM of ``model`` and of bicubic at ``scale`` on uint8 HR faces ``(N, C, H, W)``.

    The HR faces are cropped to a multiple of ``scale``; ``scale`` px are shaved off each border.
    SR fields are None when ``model`` cannot reach ``scale``.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    h, w = images.shape[-2:]
    images = images[..., : h - h % scale, : w - w % scale]
    sums = {"psnr": 0.0, "ssim": 0.0, "bicubic_psnr": 0.0, "bicubic_ssim": 0.0}
    can = True
    for start in range(0, len(images), batch_size):
        hr = _as_float(images[start : start + batch_size], device)
        lr = downscale(hr, scale)
        bic = bicubic_upscale(lr, scale)
        sums["bicubic_psnr"] += float(psnr(bic, hr, shave=scale).sum())
        sums["bicubic_ssim"] += float(ssim(bic, hr, shave=scale).sum())
        sr = super_resolve(model, lr, scale)
        if sr is None:
            can = False
            continue
        sums["psnr"] += float(psnr(sr, hr, shave=scale).sum())
        sums["ssim"] += float(ssim(sr, hr, shave=scale).sum())
    model.train(was_training)
    n = max(1, len(images))
    out: dict[str, Any] = {k: v / n for k, v in sums.items()}
    if not can:
        out["psnr"] = out["ssim"] = None
    out["psnr_gain"] = None if out["psnr"] is None else out["psnr"] - out["bicubic_psnr"]
    out["ssim_gain"] = None if out["ssim"] is None else out["ssim"] - out["bicubic_ssim"]
    return out


def sr_report(model: nn.Module, faces: FaceSet, scales=(2, 4), *, batch_size: int = 256, device: Optional[torch.device] = None, name: str = "") -> dict:
    """PSNR / SSIM of ``model`` against bicubic on ``faces`` (prepared HR faces) at each scale."""
    name = name or getattr(model, "model_name", type(model).__name__)
    rows = []
    for s in sorted({int(s) for s in scales}):
        r = evaluate_sr(model, faces.images, s, batch_size=batch_size, device=device)
        rows.append({"scale": s, "method": _method(model, name, s), **r})
    return {
        "model": name,
        "model_scale": int(model.scale),
        "n_faces": len(faces),
        "face_size": list(faces.image_size),
        "channels": faces.in_chans,
        "degradation": "area down-sampling by the scale (F.interpolate mode='area')",
        "baseline": "bicubic up-sampling (torch, a=-0.75, align_corners=False), clamped to [0, 1]",
        "protocol": "data range 1; SR output clamped to [0, 1]; `scale` px shaved off each border; "
        "PSNR averaged over images (capped at 100 dB); SSIM Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, valid window",
        "results": rows,
    }


# ---------------------------------------------------------------------------- training
def _train_sr_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, cfg: SRConfig, epoch: int,
                    batch_size: int, steps: int, progress: Optional[Progress]) -> dict:  # fmt: skip
    """One epoch of L1 training at the epoch's learning rate: its rate, mean L1 loss and speed."""
    model.train()
    lr = epoch_lr(cfg, epoch)
    for g in optimizer.param_groups:
        g["lr"] = lr
    loss_sum = torch.zeros((), device=images.device)
    t0 = time.perf_counter()
    for i, hr in enumerate(hr_batches(images, cfg, epoch, batch_size, steps)):
        loss = F.l1_loss(model(downscale(hr, cfg.scale)), hr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()
        if (i + 1) % 20 == 0 or i + 1 == steps:
            report(progress, f"sr epoch {epoch}/{cfg.epochs}", i + 1, steps)
    return {"lr": lr, "train_l1": float(loss_sum) / steps, "images_per_s": steps * batch_size / (time.perf_counter() - t0)}


def train_sr(
    cfg: SRConfig,
    faces: FaceSet,
    val_faces: Optional[FaceSet],
    out_dir: str | os.PathLike,
    progress: Optional[Progress] = None,
    info: Optional[dict] = None,
    resume: bool = False,
) -> SRResult:
    """Train an EDSR on ``faces`` (labels unused), validate PSNR on ``val_faces`` every epoch.

    Without ``val_faces`` the last ``cfg.holdout`` of the subjects (or rows) is held out. Writes
    ``best.safetensors``, ``last.safetensors`` (resumable: weights, Adam state, epoch),
    ``metrics.jsonl``, ``config.json`` and ``sr_report.json`` (from the best model) into
    ``out_dir``. With ``resume`` a run continues after the last epoch its ``last.safetensors``
    holds; the batches are seeded by epoch, so it replays what the uninterrupted run would do.
    """

    cfg.validate()
    device = resolve_device(cfg.device)
    train_set, val_set = prepare_sr_data(cfg, faces, val_faces)

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=0, in_chans=train_set.in_chans, scale=cfg.scale, **cfg.model_kwargs)
    copied = init_from(model, cfg.init_from) if cfg.init_from else []
    model.to(device)
    spec = model_spec(model, (), train_set.in_chans, cfg.hr_size // cfg.scale)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)

    images = train_set.images.to(device)
    bs = min(cfg.batch_size, len(images))
    steps = max(1, len(images) // bs)
    run, ckpt = Run.open(Path(out_dir), model, cfg.to_dict(), resume=resume, progress=progress)
    start, best_psnr, best_epoch = 1, -math.inf, 0
    if ckpt is not None:
        state = ckpt.state
        optimizer.load_state_dict(state["optimizer"])
        start, best_psnr, best_epoch = state["epoch"] + 1, state["best_psnr"], state["best_epoch"]
    base_info = {**(info or {}), "task": "super-resolution", "scale": cfg.scale, "hr_size": cfg.hr_size, "initialised_from": cfg.init_from or None, "copied_tensors": len(copied)}

    for epoch in range(start, cfg.epochs + 1):
        trained = _train_sr_epoch(model, optimizer, images, cfg, epoch, bs, steps, progress)
        val = evaluate_sr(model, val_set.images, cfg.scale, batch_size=cfg.eval_batch_size, device=device)
        row = {"epoch": epoch, "lr": trained["lr"], "train_l1": trained["train_l1"], "val_psnr": val["psnr"], "val_ssim": val["ssim"],
               "bicubic_psnr": val["bicubic_psnr"], "images_per_s": trained["images_per_s"]}  # fmt: skip
        improved = val["psnr"] > best_psnr
        if improved:
            best_psnr, best_epoch = val["psnr"], epoch
        state = {"optimizer": optimizer.state_dict(), "epoch": epoch, "best_psnr": best_psnr, "best_epoch": best_epoch}
        meta = {**base_info, "epoch": epoch, "metrics": row, "config": cfg.to_dict()}
        run.save_epoch(row, model, spec, state=state, info=meta, best=model if improved else None)
        report(progress, "sr_epoch_end", epoch, cfg.epochs, **row)

    rep = checkpoint_report(run.best_path, val_set, cfg, device, name=cfg.model)
    rep.update({"best_epoch": best_epoch, "epochs": cfg.epochs, "n_train": len(images), "config": cfg.to_dict(), **(info or {})})
    atomic_write_text(run.out / "sr_report.json", json.dumps(rep, indent=2))
    return SRResult(run.out, run.best_path, run.last_path, best_psnr, best_epoch, rep, run.history)


def checkpoint_report(path: Path, val_set: FaceSet, cfg: SRConfig, device: torch.device, name: str) -> dict:
    """:func:`sr_report` of the SR checkpoint at ``path`` at ``cfg.report_scales`` and its own scale."""
    model = load_checkpoint(path).build_model().to(device)
    rep = sr_report(model, val_set, sorted({*cfg.report_scales, cfg.scale}), batch_size=cfg.eval_batch_size, device=device, name=name)
    rep["checkpoint"] = str(path)
    return rep
