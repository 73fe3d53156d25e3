"""The teacher of knowledge distillation: a frozen classifier checked against the student's
data, fed each batch's clean view during training (online), or scoring the training faces once
before it (offline, ``cfg.distill_offline``)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..data.faceset import FaceSet
from ..data.transforms import predict_proba, preprocess
from ..errors import LrferError
from ..models.checkpoint import load_checkpoint
from ..progress import Progress
from .config import TrainConfig, eval_layout


class Teacher(nn.Module):
    """A frozen classifier fed the clean view: eval mode, no gradients, its own input size."""

    def __init__(self, model: nn.Module, input_hw: tuple[int, int]):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.input_hw = input_hw

    def train(self, mode: bool = True) -> "Teacher":
        return self  # stays in eval mode: batch-norm statistics and dropout are the trained teacher's

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[-2:]) != self.input_hw:
            # the same resize as evaluation's, so the teacher sees faces framed as it was trained on
            x = preprocess(x, in_chans=None, input_size=self.input_hw)
        return self.model.embed_and_classify(x)


def load_teacher(path: str, classes: tuple[str, ...], in_chans: int, device: torch.device) -> Teacher:
    """The distillation teacher of a run; one of other classes or channels is an LrferError."""
    ckpt = teacher_checkpoint(path, classes, in_chans)
    return Teacher(ckpt.build_model().to(device), tuple(ckpt.input_size[1:]))


def teacher_checkpoint(path: str, classes: tuple[str, ...], in_chans: int):
    """The teacher's checkpoint, checked against the training faces' classes and channels."""
    ckpt = load_checkpoint(path)
    if ckpt.classes != tuple(classes):
        raise LrferError(
            f"teacher {path} predicts ({', '.join(ckpt.classes)}), the training data has ({', '.join(classes)})",
            "distil from a teacher trained on the same classes in the same order (same dataset and label mapping)",
        )
    if ckpt.spec["in_chans"] != in_chans:
        raise LrferError(
            f"teacher {path} takes {ckpt.spec['in_chans']}-channel faces, the training faces have {in_chans}",
            "use a teacher trained with the same grayscale setting as the student",
        )
    return ckpt


def offline_teacher_targets(cfg: TrainConfig, faces: FaceSet, base: torch.Tensor, device: torch.device, progress: Optional[Progress] = None) -> torch.Tensor:
    """Soft targets of offline distillation (``cfg.distill_offline``), ``(N, K)``.

    The teacher scores the clean ``faces`` once, as evaluation feeds it (its own size and centre
    crop; one view, since a flip would double the pass), at temperature ``distill_temperature``;
    the result is mixed with ``base`` (the labels as class distributions) in the proportion
    distill_weight : 1. Called before the training faces are resized to the student's size, so
    the teacher sees them at full resolution.
    """

    ckpt = teacher_checkpoint(cfg.teacher_path, faces.classes, faces.in_chans)
    probs = predict_proba(ckpt.build_model(), faces.images, device=device, crop=ckpt.spec.get("crop") or None,  # 0: no crop
                          input_size=ckpt.spec.get("image_size"), temperature=cfg.distill_temperature,
                          progress=progress, task="teacher", **eval_layout(cfg, device)).cpu()  # fmt: skip  (minutes on a CPU: a progress bar)
    w = cfg.distill_weight / (1 + cfg.distill_weight)
    return (1 - w) * base + w * probs
