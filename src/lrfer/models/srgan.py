"""SRGAN (Ledig et al., 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network"): the SRResNet generator and the SRGAN discriminator, the super-resolution
stage of Liu, Zhang & Xin (2019)'s model B (:mod:`lrfer.models.resnet50sr`).

Generator (SRResNet), as Ledig et al.'s Figure 4: a 9x9 convolution + PReLU head, ``n_blocks``
residual blocks conv-BN-PReLU-conv-BN plus the input, a 3x3 convolution + BN closing the body with
a long skip over it (element-wise sum with the head's output), pixel-shuffle up-sampling stages
(3x3 conv to ``4F`` channels, PixelShuffle(2), PReLU; x4 = two x2 stages as in the paper, x3 one
x3 stage), and a 9x9 convolution back to ``in_chans``. Registered entry points (SR models, not
classifiers, like :mod:`lrfer.models.edsr`, so :mod:`lrfer.models.front_end` takes them as ``sr``):

- ``srresnet``: the paper's 16 blocks x 64 features (1.55M parameters at x4 on RGB, the size of
  Ledig et al.'s network, 1,550,659; 1,382,145 at x2 on grayscale faces);
- ``srresnet_light``: 4 blocks x 32 features (126,209 at x2 grayscale) for CPU training and tests.

Departures from Ledig et al. (and why):

- **bicubic global skip** (``skip="bicubic"``, default): the network predicts a residual on top of
  bicubic up-sampling of its input and the last 9x9 convolution is zero-initialised, so an
  untrained generator is exactly bicubic up-sampling. Same reason as in EDSR here: PSNR starts at
  the bicubic baseline and the short training a CPU (or a 2-minute GPU run) affords only has to
  learn the missing detail. ``skip="none"`` gives Ledig et al.'s network exactly (the skip has no
  parameters, so the counts above hold for both).
- the pixel-shuffle convolutions are ICNR-initialised (:func:`lrfer.models._sr.icnr_`, Aitken et
  al. 2017) against the checkerboard artefacts of sub-pixel convolution at initialisation;
- convolutions pad by **replicating** the border (as EDSR here): a face crop does not end in a
  black frame;
- input and output in [0, 1] (Ledig et al. scale the output to [-1, 1] for the MSE); the output is
  not clamped (the losses see the raw prediction; evaluation and the front end clamp);
- PReLU with one slope per channel (He et al. 2015's channel-wise form; the paper does not say).

Discriminator (:class:`SRGANDiscriminator`, not registered: it is training machinery, neither a
classifier nor an SR model): a 3x3 convolution with 64 features + LeakyReLU(0.2), then seven 3x3
conv-BN-LeakyReLU layers with 64, 128, 128, 256, 256, 512, 512 features at strides 2, 1, 2, 1, 2,
1, 2 (the paper's k3n64s2 ... k3n512s2), then the paper's Dense(1024)-LeakyReLU-Dense(1). Departure:
the dense layers follow a **global average pooling** instead of flattening the 6x6x512 map of a
96 px input, so the same discriminator judges 24 to 96 px faces (a 48 px face ends at 3x3) and has
5.21M instead of 23.56M parameters (RGB, paper widths). It returns logits (the sigmoid is in the BCE loss), and maps its
[0, 1] input to [-1, 1] as the paper's HR images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LrferError
from ._registry import register_sr_model
from ._sr import SRModel, icnr_, upsample_factors

SKIPS = ("bicubic", "none")
#: discriminator sizes: first-layer width (doubled every second layer) and the dense layer.
DISCRIMINATOR_CONFIGS = {"paper": {"base": 64, "fc": 1024}, "light": {"base": 16, "fc": 256}}


def conv(cin: int, cout: int, k: int, bias: bool = True) -> nn.Conv2d:
    """A 'same' convolution that pads by replicating the border (see the module docstring)."""
    return nn.Conv2d(cin, cout, k, padding=k // 2, padding_mode="replicate", bias=bias)


class ResBlockBN(nn.Module):
    """conv-BN-PReLU-conv-BN plus the input (Ledig et al.'s residual block, after Gross & Wilber)."""

    def __init__(self, n_feats: int):
        super().__init__()
        self.conv1 = conv(n_feats, n_feats, 3)
        self.bn1 = nn.BatchNorm2d(n_feats)
        self.act = nn.PReLU(n_feats)
        self.conv2 = conv(n_feats, n_feats, 3)
        self.bn2 = nn.BatchNorm2d(n_feats)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


class UpStagePReLU(nn.Module):
    """One sub-pixel stage: conv to ``r*r*F`` channels, PixelShuffle(r), PReLU."""

    def __init__(self, n_feats: int, r: int):
        super().__init__()
        self.conv = conv(n_feats, n_feats * r * r, 3)
        self.shuffle = nn.PixelShuffle(r)
        self.act = nn.PReLU(n_feats)
        icnr_(self.conv, r)

    def forward(self, x):
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(SRModel):
    """SRResNet / SRGAN generator (Ledig et al. 2017): an image-to-image model, ``(B, C, h, w) -> (B, C, s*h, s*w)``."""

    def __init__(self, in_chans: int = 1, scale: int = 2, n_blocks: int = 16, n_feats: int = 64, skip: str = "bicubic"):
        super().__init__(in_chans, scale, n_blocks, n_feats, skip)
        if skip not in SKIPS:
            raise LrferError(f"SRResNet skip '{skip}' is not one of {', '.join(SKIPS)}", "use skip='bicubic' (default) or 'none' (Ledig et al.)")
        if n_blocks < 1 or n_feats < 1:
            raise LrferError(f"SRResNet needs at least one block and one feature, got {n_blocks} x {n_feats}", "use e.g. n_blocks=16, n_feats=64")
        self.head = nn.Sequential(conv(in_chans, n_feats, 9), nn.PReLU(n_feats))
        self.body = nn.Sequential(*[ResBlockBN(n_feats) for _ in range(n_blocks)])
        self.body_tail = nn.Sequential(conv(n_feats, n_feats, 3), nn.BatchNorm2d(n_feats))
        self.upsample = nn.Sequential(*[UpStagePReLU(n_feats, r) for r in upsample_factors(scale)])
        self.tail = conv(n_feats, in_chans, 9)
        if skip == "bicubic":  # residual 0 at initialisation: the untrained model is bicubic up-sampling
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def upsample_input(self, x: torch.Tensor) -> torch.Tensor:
        """The global skip: bicubic interpolation of the input to the output size (torch's, a = -0.75)."""
        return F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = self.body_tail(self.body(h)) + h
        y = self.tail(self.upsample(h))
        return y + self.upsample_input(x) if self.skip == "bicubic" else y


class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator (Ledig et al. 2017) with a global-pool head: ``(B, C, H, W)`` in [0, 1] -> logits ``(B,)``."""

    def __init__(self, in_chans: int = 1, base: int = 64, fc: int = 1024, slope: float = 0.2):
        super().__init__()
        self.in_chans = in_chans
        layers: list[nn.Module] = [nn.Conv2d(in_chans, base, 3, 1, 1), nn.LeakyReLU(slope, inplace=True)]
        c = base
        for i, stride in enumerate((2, 1, 2, 1, 2, 1, 2)):
            cout = base * 2 ** ((i + 1) // 2)  # 64, 128, 128, 256, 256, 512, 512 for base 64
            # no conv bias before BN (it would be cancelled by the mean subtraction)
            layers += [nn.Conv2d(c, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(slope, inplace=True)]
            c = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, fc), nn.LeakyReLU(slope, inplace=True), nn.Linear(fc, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x * 2 - 1)).squeeze(1)


def srgan_discriminator(in_chans: int = 1, config: str = "paper", **kwargs: Any) -> SRGANDiscriminator:
    """The discriminator in the paper's size (``config="paper"``: 64..512 features, dense 1024) or a light one (16..128, 256)."""
    if config not in DISCRIMINATOR_CONFIGS:
        raise LrferError(f"discriminator config '{config}' is not one of {', '.join(DISCRIMINATOR_CONFIGS)}", "use 'paper' or 'light'")
    return SRGANDiscriminator(in_chans, **{**DISCRIMINATOR_CONFIGS[config], **kwargs})


def _build(in_chans: int, scale: int, defaults: dict, kwargs: dict) -> SRResNet:
    return SRResNet(in_chans=in_chans, scale=scale, **{**defaults, **kwargs})


@register_sr_model
def srresnet(num_classes: int = 0, in_chans: int = 1, scale: int = 2, **kwargs) -> SRResNet:
    """SRResNet / SRGAN generator (Ledig et al. 2017): 16 blocks x 64 features, x2/x3/x4 (SR, not a classifier).

    ``num_classes`` is ignored: an SR model has no classes (it is there for ``create_model``).
    """
    return _build(in_chans, scale, {"n_blocks": 16, "n_feats": 64}, kwargs)


@register_sr_model
def srresnet_light(num_classes: int = 0, in_chans: int = 1, scale: int = 2, **kwargs) -> SRResNet:
    """Light SRResNet for CPUs: 4 blocks x 32 features (SR, not a classifier)."""
    return _build(in_chans, scale, {"n_blocks": 4, "n_feats": 32}, kwargs)

