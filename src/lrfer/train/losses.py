"""Losses: cross-entropy (label smoothing, class weights, soft targets), centre loss, distillation
(logits and features).

Auxiliary losses plug into the engine through one small protocol: ``aux(embedding, logits,
targets) -> loss`` plus an optional ``after_step()`` (centre loss updates its centres there).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LrferError


def class_weights(counts: np.ndarray, scheme: str) -> Optional[torch.Tensor]:
    """Per-class loss weights from training counts.

    - ``none``: no weighting;
    - ``balanced``: w_c = 1 - n_c / N (Massoli et al. 2021: frequent classes weigh less, no class
      weighs more than 1);
    - ``inverse``: w_c = N / (K n_c), the classic inverse-frequency weighting (mean 1 over samples).
    """
    counts = np.asarray(counts, dtype=np.float64)
    if scheme == "none":
        return None
    if scheme == "balanced":
        w = 1.0 - counts / counts.sum()
    elif scheme == "inverse":
        w = counts.sum() / (len(counts) * np.maximum(counts, 1))
    else:
        raise LrferError(f"unknown class weighting '{scheme}'", "use none, balanced or inverse")
    return torch.tensor(w, dtype=torch.float32)


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy against hard labels (int64 ``(B,)``) or soft labels (float ``(B, K)``, e.g.
    FERPlus votes or mixup targets).

    A one-hot soft target gives exactly the hard-label loss, with class weights and label smoothing
    too, so turning mixup on (which makes every target soft) does not rescale the loss.
    """
    if target.dtype.is_floating_point:
        k = logits.shape[1]
        target = target.float()
        smoothed = target * (1 - label_smoothing) + label_smoothing / k
        logp = F.log_softmax(logits.float(), dim=1)
        if weight is None:
            return -(smoothed * logp).sum(1).mean()
        # F.cross_entropy's weighted mean divides by the summed weight of the true classes, for the
        # smoothing term as well; the soft analogue is the weight of the unsmoothed target
        return -(smoothed * logp * weight).sum() / (target * weight).sum()
    return F.cross_entropy(logits.float(), target, weight=weight, label_smoothing=label_smoothing)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """Hinton et al. (2015): KL(teacher || student) at temperature T, scaled by T^2."""
    t = temperature
    return F.kl_div(
        F.log_softmax(student_logits.float() / t, 1), F.log_softmax(teacher_logits.float() / t, 1), log_target=True, reduction="batchmean"
    ) * (t * t)


def feature_distillation_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """Mean squared error between pooled embeddings (the student's already projected to the
    teacher's width): the feature term of cross-resolution training (Massoli et al. 2020)."""
    return F.mse_loss(student_features.float(), teacher_features.float())


class CenterLoss(nn.Module):
    """Centre loss (Wen et al., ECCV 2016): L_c = 1/2 sum_i ||x_i - c_{y_i}||^2 over the batch.

    The gradient wrt x_i is (x_i - c_{y_i}); the centres are not learned by the optimizer but moved
    after each step by the paper's rule
        delta c_j = sum_i [y_i = j](c_j - x_i) / (1 + sum_i [y_i = j]),   c_j <- c_j - alpha * delta c_j.
    The sum (not mean) over the batch is the paper's; ``weight`` (lambda) scales it against
    cross-entropy. Soft targets use their arg-max class.
    """

    def __init__(self, num_classes: int, dim: int, weight: float = 0.01, alpha: float = 0.5):
        super().__init__()
        self.weight = weight
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, dim))
        self._pending: Optional[tuple[torch.Tensor, torch.Tensor]] = None

    def forward(self, embedding: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = targets.argmax(1) if targets.dtype.is_floating_point else targets
        x = embedding.float()
        self._pending = (x.detach(), y)
        return 0.5 * (x - self.centers[y]).pow(2).sum()

    @torch.no_grad()
    def after_step(self) -> None:
        if self._pending is None:
            return
        x, y = self._pending
        k = self.centers.shape[0]
        counts = torch.bincount(y, minlength=k).to(x.dtype)
        sums = torch.zeros_like(self.centers).index_add_(0, y, x)
        # sum_i [y_i=j](c_j - x_i) = n_j c_j - sum_i x_i
        delta = (counts[:, None] * self.centers - sums) / (1 + counts[:, None])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(delta)
            delta /= torch.distributed.get_world_size()
        self.centers -= self.alpha * delta
        self._pending = None
