"""Model B of Liu, Zhang & Xin (2019): torchvision's ResNet-50 fed with faces super-resolved 2x by
an SRGAN generator (:mod:`lrfer.models.srgan`, trained by ``lrfer train-sr --gan``).

Two registered classifiers:

- ``resnet50_fer``: the bare ResNet-50, built by ``torchvision.models.resnet50(weights=None)``
  (3, 4, 6, 3 bottlenecks, 25.6M parameters with a 1000-class head, 23.5M with 7 classes) behind
  lrfer's :class:`~lrfer.models._base.FERModel` interface. The torchvision modules are kept under
  their names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``) and ``fc`` is ``classifier``, so
  :func:`lrfer.models.init_weights.load_init_weights` (``--init-weights FILE``) loads a
  torchvision ImageNet state dict directly: ``fc.`` is mapped to ``classifier.`` (and skipped when
  the class count differs) and the RGB first convolution is summed over its input channels for a
  grayscale model. The first convolution is rebuilt for ``in_chans`` (torchvision's 7x7 stride 2,
  Kaiming-initialised as torchvision does). The standard stem divides the input by 32: the 96 px
  super-resolved face ends at 3x3, a bare 48 px face at 2x2.
- ``resnet50sr``: :class:`~lrfer.models.front_end.FrontedModel` with ``classifier="resnet50_fer"``,
  ``stn=False``, ``sr_mode="enlarge"``: the 48 px face is enlarged by the SR model (frozen by
  default, ``sr_trainable=True`` fine-tunes it) and ResNet-50 classifies the 96 px result. ``sr``
  is an SR checkpoint path (``lrfer train-sr --gan``) or a registry spec, exactly as for
  ``fronted``; the fronted checkpoint stores the SR weights, so it rebuilds without the SR file.
  Without ``sr`` the front end is an untrained ``srresnet_light`` x2, which is *exactly* bicubic
  up-sampling (its bicubic skip and zero-initialised last convolution, see
  :mod:`lrfer.models.srgan`) and stays so while frozen: ``resnet50sr`` without an SR checkpoint is
  the "ResNet-50 on bicubic 96 px faces" baseline, not a random image filter.

Transfer learning. ``pretrained_path`` (a torchvision ResNet-50 ImageNet state dict, ``.pth`` or
``.safetensors``) is loaded into the ResNet-50 at construction with ``load_init_weights``; what was
loaded, adapted and skipped is kept in ``init_report``. The path is not recorded in the model's
kwargs (a checkpoint holds the trained weights and must rebuild without the ImageNet file).
``lrfer train --init-weights FILE`` does the same for both models (a fronted model loads it into its
classifier). An ImageNet network
expects ImageNet-normalised input: set ``mean = 0.449, std = 0.226`` (the grey level of ImageNet's
channel means and deviations) in the classifier kwargs when starting from one.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from ._base import FERModel
from ._registry import register_model
from .front_end import FrontedModel
from .init_weights import PretrainedPathMixin, load_init_weights, without_pretrained_path

#: the SR front end of ``resnet50sr`` when none is given: exactly bicubic x2 (see the module docstring).
DEFAULT_SR = {"name": "srresnet_light", "scale": 2}


class ResNet50FER(PretrainedPathMixin, FERModel):
    """torchvision ResNet-50 behind the FERModel interface (torchvision's tensor names, ``fc`` = ``classifier``)."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        layers: Sequence[int] = (3, 4, 6, 3),
        drop_rate: float = 0.0,
        mean: float = 0.5,
        std: float = 0.25,
        input_norm: str = "fixed",
        pretrained_path: Optional[Union[str, os.PathLike]] = None,
    ):
        super().__init__(num_classes, in_chans, mean=mean, std=std, input_norm=input_norm)
        import torchvision  # here, not at import time: `import lrfer.models` stays light
        from torchvision.models.resnet import Bottleneck, ResNet

        # ``layers`` other than ResNet-50's make a shallower network of the same family (quick tests)
        tv = torchvision.models.resnet50(weights=None) if tuple(layers) == (3, 4, 6, 3) else ResNet(Bottleneck, list(layers))
        self.conv1 = tv.conv1
        if in_chans != 3:
            self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init
        self.bn1, self.relu, self.maxpool = tv.bn1, tv.relu, tv.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = tv.layer1, tv.layer2, tv.layer3, tv.layer4
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(tv.fc.in_features, num_classes)
        self.init_report: Optional[dict[str, Any]] = None
        if pretrained_path:
            self.init_report = load_init_weights(self, pretrained_path)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNet50SR(FrontedModel):
    """Liu et al. 2019 model B: SR x2 (frozen by default), then ResNet-50 on the enlarged face."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        sr: Union[None, str, os.PathLike, dict] = None,
        sr_trainable: bool = False,
        sr_mode: str = "enlarge",
        classifier_kwargs: Optional[dict] = None,
        pretrained_path: Optional[Union[str, os.PathLike]] = None,
    ):
        classifier_kwargs = dict(classifier_kwargs or {})
        if pretrained_path:
            classifier_kwargs["pretrained_path"] = str(pretrained_path)
        super().__init__(
            num_classes,
            in_chans,
            classifier="resnet50_fer",
            classifier_kwargs=classifier_kwargs,
            stn=False,
            sr=dict(DEFAULT_SR) if sr is None else sr,
            sr_trainable=sr_trainable,
            sr_mode=sr_mode,
        )

    @property
    def init_report(self) -> Optional[dict]:
        """What ``pretrained_path`` loaded into the ResNet-50 (None when none was given)."""
        return self.net.init_report

    @property
    def model_kwargs(self) -> dict:
        return FrontedModel.model_kwargs.fget(self)  # type: ignore[attr-defined]

    @model_kwargs.setter
    def model_kwargs(self, kwargs: dict) -> None:
        kwargs = without_pretrained_path(kwargs)
        if "classifier_kwargs" in kwargs:
            kwargs["classifier_kwargs"] = without_pretrained_path(kwargs["classifier_kwargs"] or {})
        FrontedModel.model_kwargs.fset(self, kwargs)  # type: ignore[attr-defined]


@register_model
def resnet50_fer(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> ResNet50FER:
    """torchvision ResNet-50 (23.5M parameters with 7 classes); `pretrained_path` loads an ImageNet state dict."""
    return ResNet50FER(num_classes, in_chans, **kwargs)


@register_model
def resnet50sr(num_classes: int = 7, in_chans: int = 1, **kwargs: Any) -> ResNet50SR:
    """Liu et al. 2019 model B: SRGAN x2 super-resolution (frozen), then ResNet-50 on the 96 px face."""
    return ResNet50SR(num_classes, in_chans, **kwargs)
