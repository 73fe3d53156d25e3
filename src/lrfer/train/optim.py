"""What the classifier's optimisation is made of: the optimizer and its parameter groups, the
learning-rate schedule (a pure function of the step, so resume needs no scheduler state), the
weight EMA, and the parameters a fine-tuning run keeps fixed."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..errors import LrferError
from .config import TrainConfig


def freeze_parameters(model: nn.Module, prefixes: list[str]) -> int:
    """Fix every parameter whose name starts with one of ``prefixes`` (``cfg.freeze``); returns how
    many tensors were frozen. A prefix that names no parameter is a typo, not a no-op."""
    def under(name: str, prefix: str) -> bool:  # "stages.1" covers stages.1.*, not stages.10.*
        return name == prefix or name.startswith(prefix + ".")

    params = dict(model.named_parameters())
    for prefix in prefixes:
        if not any(under(n, prefix) for n in params):
            tops = sorted({n.split(".")[0] for n in params})
            raise LrferError(f"freeze: no parameter of '{getattr(model, 'model_name', type(model).__name__)}' is under '{prefix}'",
                             f"name modules of the model, e.g. {', '.join(tops[:4])}")  # fmt: skip
    frozen = [p.requires_grad_(False) for n, p in params.items() if any(under(n, prefix) for prefix in prefixes)]
    return len(frozen)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Parameter groups: no weight decay on norms and biases; the classifier at ``head_lr_mult``."""
    head_ids = {id(p) for p in model.classifier.parameters()} if hasattr(model, "classifier") else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        key = (p.ndim <= 1, id(p) in head_ids)
        groups.setdefault(key, []).append(p)
    param_groups = [
        {"params": ps, "weight_decay": 0.0 if no_decay else cfg.weight_decay, "lr_mult": cfg.head_lr_mult if head else 1.0}
        for (no_decay, head), ps in sorted(groups.items())
    ]
    name = cfg.optimizer.lower()
    betas = (cfg.momentum, cfg.beta2)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=cfg.lr, betas=betas)
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=betas)
    if name == "adamax":
        return torch.optim.Adamax(param_groups, lr=cfg.lr, betas=betas)
    raise LrferError(f"unknown optimizer '{cfg.optimizer}'", "use sgd, adam, adamw or adamax")


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int, plateau_scale: float, time_frac: float = 0.0) -> float:
    """Learning-rate multiplier at an optimizer step: a pure function, so resume needs no scheduler state.

    ``time_frac`` is the share of ``cfg.time_budget_minutes`` spent: the schedule stands at the step
    or at the clock, whichever is further along, so it ends when the budget or the epochs do.
    """
    total = cfg.epochs * steps_per_epoch
    step = max(step, int(time_frac * total))
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":  # Smith & Topin: linear up for 30%, cosine down to ~0
        peak = max(1, int(0.3 * total))
        if step < peak:
            return 0.04 + 0.96 * step / peak
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - peak) / max(1, total - peak))))
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
    if cfg.schedule == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    if cfg.schedule == "plateau":
        return plateau_scale
    if cfg.schedule == "constant":
        return 1.0
    raise LrferError(f"unknown schedule '{cfg.schedule}'", "use cosine, onecycle, step, plateau or constant")


class ModelEMA:
    """Exponential moving average of weights (buffers copied), with the usual warm-up of the decay."""

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_p = list(self.module.parameters())
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1 - d)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)
