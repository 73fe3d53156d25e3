"""The uniform model interface every lrfer network follows.

Input: float tensor ``(B, C, H, W)`` in [0, 1] (uint8 / 255). Each model normalises its own input,
so that checkpoints, ONNX exports and the inference path need no separate preprocessing config.
``forward_features`` returns the feature map, ``forward_head(x, pre_logits=True)`` the pooled
embedding (used by centre loss, feature distillation and ensembles), ``forward`` the logits.
"""

from __future__ import annotations

import torch
from torch import nn


class FERModel(nn.Module):
    #: per-model defaults (timm's ``default_cfg``): the input the model was designed for.
    default_cfg: dict = {"input_size": (1, 48, 48), "mean": 0.5, "std": 0.25}

    def __init__(self, num_classes: int, in_chans: int, mean: float = 0.5, std: float = 0.25, input_norm: str = "fixed"):
        super().__init__()
        if input_norm not in ("fixed", "per_image"):
            raise ValueError(f"input_norm must be 'fixed' or 'per_image', got {input_norm!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        # "per_image" standardises each face by its own mean and contrast: FER2013's faces (and
        # far-camera footage) vary widely in exposure, and removing that speeds up early training.
        self.input_norm = input_norm
        self.register_buffer("input_mean", torch.tensor(float(mean)), persistent=False)
        self.register_buffer("input_std", torch.tensor(float(std)), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm == "per_image":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(0.02)  # a flat (e.g. black) face stays finite
            return (x - mean) / std
        return (x - self.input_mean) / self.input_std

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool (and, for MLP heads, embed) the feature map, then classify.

        Subclasses set ``global_pool`` (feature map -> embedding), ``head_drop`` and ``classifier``.
        """
        x = self.global_pool(x)
        if pre_logits:
            return x
        return self.classifier(self.head_drop(x))

    @property
    def num_features(self) -> int:
        """Size of the pre-logits embedding."""
        return self.classifier.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(self.normalize(x)))

    def embed_and_classify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(embedding, logits) in one pass, for losses that need both."""
        emb = self.forward_head(self.forward_features(self.normalize(x)), pre_logits=True)
        return emb, self.classifier(self.head_drop(emb))
