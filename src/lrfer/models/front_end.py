"""Front ends before any registered classifier: Spatial Transformer, then super-resolution (Qin 2021).

``create_model("fronted", num_classes=7, in_chans=1, classifier="resnet18_fer_slim",
classifier_kwargs={...}, stn=True, sr="runs/edsr_x2/best.safetensors", sr_trainable=False)``
builds ``STN -> SR -> classifier`` as one FERModel, trained end to end by the ordinary engine.

Resolution flow. The wrapper takes the same input as every other model (a ``(B, C, H, W)`` face in
[0, 1], 48 px for FER2013), so the engine, evaluation, the resolution sweep and inference need
nothing special. Two modes (``sr_mode``) say what the SR model is for:

- ``"enlarge"`` (default; Qin 2021): the SR model enlarges the input by its scale ``s`` and the
  classifier runs on the larger face, ``48 -> STN (48) -> SR (96) -> classifier at 96 px``. This is
  the paper's set-up: the gain comes from giving the classifier more pixels of detail. It costs
  ``s*s`` times the classifier's compute, and the classifier must accept ``s*H`` px (models that
  pool globally, like ``resnet18_fer*``, do; a fixed-size head such as ``cnn2x2`` needs
  ``classifier_kwargs={"input_size": 96}``). The SR model is trained on 48 px faces area
  down-sampled to 24 (``lrfer train-sr``) and applied to 48 px faces: a scale shift Qin's method
  accepts as well.
- ``"restore"``: the input is first area down-sampled by ``s`` (the same operator as
  :func:`lrfer.data.augment.degrade`'s down step: the simulated low-resolution capture), and the SR
  model restores it to the input size, ``48 -> 24 -> STN (24) -> SR (48) -> classifier at 48 px``.
  The classifier sees exactly the distribution the SR model was trained on; useful to study SR as
  a remedy for low resolution, but a 48 px face always loses the detail the down-sampling removes.

In both modes the STN acts on the face as the SR model receives it, so "STN, then SR, then
classifier" holds literally. Without SR (``sr=None``) the wrapper is STN + classifier at the input
size, and ``sr_mode`` is ignored. The SR output is clamped to [0, 1] before the classifier, which
then normalises it as it would any face.

Frozen or fine-tuned SR. ``sr_trainable=False`` (default, as Qin: EDSR is trained for SR alone,
then used as a fixed pre-processor) sets ``requires_grad_(False)`` on the SR model and keeps it in
eval mode whatever ``train()`` says; gradients still flow *through* it to the STN in front of it.
``sr_trainable=True`` fine-tunes it with the classifier's loss.

Rebuilding from a checkpoint. ``sr`` may be a path to an SR checkpoint (``lrfer train-sr``), or a
registry spec ``{"name": "edsr_light", "scale": 2, ..., "init": PATH}``. A path is resolved at
construction into such a spec (name, in_chans and kwargs read from the SR checkpoint), and that
spec is what ``model_kwargs`` records, so a checkpoint of the fronted model rebuilds without the
SR file: the SR weights are part of the fronted model's own state dict. ``init`` is only used when
the file exists (then its weights are loaded; the enclosing checkpoint's weights override them on
``build_model``). A path given directly must exist: a typo must not silently train on a random SR.

An SR model trained on grayscale faces (``in_chans=1``) is applied channel by channel to RGB input.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LrferError
from ._base import FERModel
from ._registry import create_model, register_model
from .init_weights import load_sr_model
from .stn import SpatialTransformer

SR_MODES = ("enlarge", "restore")


class FrontedModel(FERModel):
    """STN and/or super-resolution front ends before a registered classifier (Qin 2021)."""

    #: ``--init-weights`` loads into ``self.net`` (see :func:`lrfer.models.init_weights.load_init_weights`).
    wraps_classifier = True

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        classifier: str = "resnet18_fer_slim",
        classifier_kwargs: Optional[dict] = None,
        stn: Union[bool, dict] = True,
        sr: Union[None, str, os.PathLike, dict] = None,
        sr_trainable: bool = False,
        sr_mode: str = "enlarge",
    ):
        super().__init__(num_classes, in_chans)
        if sr_mode not in SR_MODES:
            raise LrferError(f"sr_mode '{sr_mode}' is not one of {', '.join(SR_MODES)}", "use 'enlarge' (Qin 2021) or 'restore'")
        if classifier == "fronted":
            raise LrferError("a fronted model cannot wrap another fronted model", "give a classifier name, e.g. resnet18_fer_slim")
        self.net = create_model(classifier, num_classes=num_classes, in_chans=in_chans, **(classifier_kwargs or {}))
        if not getattr(self.net, "is_classifier", True):
            raise LrferError(f"classifier '{classifier}' is not an expression classifier", "give a classifier name, e.g. resnet18_fer_slim")
        self.stn = SpatialTransformer(in_chans, **(stn if isinstance(stn, dict) else {})) if stn else None
        self.sr: Optional[nn.Module] = None
        self.sr_spec: Optional[dict] = None
        if sr:
            self.sr, self.sr_spec = load_sr_model(sr, in_chans)
        self.sr_trainable = sr_trainable
        self.sr_mode = sr_mode
        if self.sr is not None and not sr_trainable:
            self.sr.requires_grad_(False)
            self.sr.eval()
        self.default_cfg = {**getattr(self.net, "default_cfg", FERModel.default_cfg)}

    # -------------------------------------------------------- rebuildable kwargs
    @property
    def model_kwargs(self) -> dict:
        return getattr(self, "_model_kwargs", {})

    @model_kwargs.setter
    def model_kwargs(self, kwargs: dict) -> None:
        """``create_model`` stores its kwargs here; an SR path is replaced by the resolved spec."""
        kwargs = dict(kwargs)
        if self.sr_spec is not None:
            kwargs["sr"] = dict(self.sr_spec)
        self._model_kwargs = kwargs

    # ------------------------------------------------------------- train mode
    def train(self, mode: bool = True) -> "FrontedModel":
        super().train(mode)
        if self.sr is not None and not self.sr_trainable:
            self.sr.eval()  # frozen: eval mode whatever the engine asks
        return self

    # ------------------------------------------------------------ front ends
    @property
    def sr_scale(self) -> int:
        return int(self.sr.scale) if self.sr is not None else 1

    def _super_resolve(self, x: torch.Tensor) -> torch.Tensor:
        # A frozen SR model needs no graph unless something before it (the STN) is being trained.
        need_grad = self.sr_trainable or x.requires_grad
        with torch.set_grad_enabled(torch.is_grad_enabled() and need_grad):
            b, c = x.shape[:2]
            if self.sr.in_chans == 1 and c != 1:  # a grayscale SR model, channel by channel
                y = self.sr(x.reshape(b * c, 1, *x.shape[-2:]))
                return y.reshape(b, c, *y.shape[-2:])
            return self.sr(x)

    def front(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier sees: the input through the STN and the SR model, in [0, 1]."""
        if self.sr is None:
            return self.stn(x) if self.stn is not None else x
        h, w = x.shape[-2:]
        s = self.sr_scale
        if self.sr_mode == "restore":
            x = F.interpolate(x, size=(max(1, h // s), max(1, w // s)), mode="area")
        if self.stn is not None:
            x = self.stn(x)
        y = self._super_resolve(x).clamp(0, 1)
        if self.sr_mode == "restore" and y.shape[-2:] != (h, w):  # input size not a multiple of s
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return y

    # --------------------------------------------- the FERModel interface
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Identity: the front ends take [0, 1] faces; the classifier normalises what they output."""
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(self.net.normalize(self.front(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.net.forward_head(x, pre_logits=pre_logits)

    @property
    def classifier(self) -> nn.Module:
        return self.net.classifier

    @property
    def global_pool(self) -> nn.Module:
        return self.net.global_pool

    @property
    def head_drop(self) -> nn.Module:
        return self.net.head_drop

    @property
    def num_features(self) -> int:
        return self.net.num_features


@register_model
def fronted(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> FrontedModel:
    """Qin 2021 front end: STN, then EDSR super-resolution, then any registered classifier."""
    return FrontedModel(num_classes, in_chans, **kwargs)
