"""EDSR super-resolution (Lim et al., 2017, "Enhanced Deep Residual Networks for Single Image
Super-Resolution"), the SR stage of the Qin 2021 front end (:mod:`lrfer.models.front_end`).

Network: a 3x3 head convolution, ``n_blocks`` residual blocks ``x + res_scale * conv(relu(conv(x)))``
without batch norm (Lim et al.: BN removes the range flexibility SR needs and costs memory), a 3x3
convolution closing the body with a long skip over it, a pixel-shuffle up-sampler (x2 and x3 in
one stage; x4 as two x2 stages, as in the paper), and a 3x3 tail convolution back to ``in_chans``.

Configurations (registered entry points; ``scale`` is 2, 3 or 4):

- ``edsr``: the configuration Qin 2021 reports, 16 blocks of 128 features, residual scaling 0.1
  (Lim et al. scale residuals by 0.1 in their wide model to keep training stable). Note this is
  neither of Lim et al.'s models: EDSR-baseline is 16 blocks x 64, EDSR is 32 x 256.
- ``edsr_light``: 4 blocks of 32 features, no residual scaling, for CPU training and tests.

Departures from Lim et al. (and why):

- **global skip**: the network predicts a residual on top of bicubic up-sampling of its input
  (``skip="bicubic"``, torch's bicubic, a = -0.75) instead of the whole image. Together with the
  next two points the model *starts* as exactly bicubic up-sampling, so its PSNR can only start at
  the bicubic baseline's and training learns the missing detail only.
- the tail convolution is zero-initialised (residual = 0 at initialisation), and each pixel-shuffle
  convolution is ICNR-initialised (Aitken et al., 2017: every sub-pixel phase gets the same
  kernel, i.e. "convolution then nearest-neighbour up-sampling"), which removes checkerboard
  artefacts at the start of training.
- convolutions pad by **replicating** the border instead of zeros: a face crop does not end in a
  black frame, and a spatially constant feature map stays constant through every layer.
  Consequence: a constant image comes out exactly constant at initialisation (the bicubic skip of
  a constant is that constant and the residual is zero) and, after training, constant up to the
  small sub-pixel pattern the pixel-shuffle phases may learn.
- **mean shift**: Lim et al. subtract the DIV2K RGB mean before the head and add it back at the
  end. With a global skip the image mean travels through the skip, so here the shift only centres
  the head's input: 0.5 for grayscale (faces in [0, 1], no dataset statistic needed), the DIV2K
  mean (0.4488, 0.4371, 0.4040) for RGB. Nothing is added back.

Input and output are images in [0, 1], ``(B, C, h, w) -> (B, C, scale*h, scale*w)``; the output
is not clamped (the L1 loss sees the raw prediction; evaluation and the front end clamp).

An x4 model can start from a trained x2 model (Lim et al. pre-train x4 from x2): see :func:`lrfer.models.init_weights.init_from`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LrferError
from ._registry import register_sr_model
from ._sr import SRModel, icnr_, upsample_factors

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, padding_mode="replicate")


class ResBlock(nn.Module):
    """conv-ReLU-conv, scaled, plus the input (no batch norm)."""

    def __init__(self, n_feats: int, res_scale: float):
        super().__init__()
        self.conv1 = conv3x3(n_feats, n_feats)
        self.conv2 = conv3x3(n_feats, n_feats)
        self.act = nn.ReLU(inplace=True)
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.conv2(self.act(self.conv1(x))) * self.res_scale


class UpStage(nn.Module):
    """One pixel-shuffle stage: conv to ``r*r*F`` channels, then PixelShuffle(r)."""

    def __init__(self, n_feats: int, r: int):
        super().__init__()
        self.r = r
        self.conv = conv3x3(n_feats, n_feats * r * r)
        self.shuffle = nn.PixelShuffle(r)
        icnr_(self.conv, r)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class EDSR(SRModel):
    """EDSR super-resolution (Lim et al. 2017) with a bicubic global skip: an image-to-image model."""

    def __init__(
        self,
        in_chans: int = 1,
        scale: int = 2,
        n_blocks: int = 16,
        n_feats: int = 128,
        res_scale: float = 0.1,
        skip: str = "bicubic",
    ):
        super().__init__(in_chans, scale, n_blocks, n_feats, skip)
        if skip not in ("bicubic", "bilinear", "nearest"):
            raise LrferError(f"EDSR skip '{skip}' is not one of bicubic, bilinear, nearest", "use skip='bicubic'")
        mean = DIV2K_RGB_MEAN if in_chans == 3 else (0.5,) * in_chans
        self.register_buffer("input_mean", torch.tensor(mean).view(1, in_chans, 1, 1), persistent=False)
        self.head = conv3x3(in_chans, n_feats)
        self.body = nn.Sequential(*[ResBlock(n_feats, res_scale) for _ in range(n_blocks)], conv3x3(n_feats, n_feats))
        self.upsample = nn.Sequential(*[UpStage(n_feats, r) for r in upsample_factors(scale)])
        self.tail = conv3x3(n_feats, in_chans)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def upsample_input(self, x: torch.Tensor) -> torch.Tensor:
        """The global skip: plain interpolation of the input to the output size."""
        smooth = {"align_corners": False} if self.skip != "nearest" else {}
        return F.interpolate(x, scale_factor=self.scale, mode=self.skip, **smooth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x - self.input_mean)
        h = self.body(h) + h
        return self.upsample_input(x) + self.tail(self.upsample(h))


def _build(in_chans: int, scale: int, defaults: dict, kwargs: dict) -> EDSR:
    return EDSR(in_chans=in_chans, scale=scale, **{**defaults, **kwargs})


@register_sr_model
def edsr(num_classes: int = 0, in_chans: int = 1, scale: int = 2, **kwargs) -> EDSR:
    """EDSR x2/x3/x4 as in Qin 2021: 16 blocks x 128 features, residual scaling 0.1 (SR, not a classifier).

    ``num_classes`` is ignored: an SR model has no classes (it is there for ``create_model``).
    """
    return _build(in_chans, scale, {"n_blocks": 16, "n_feats": 128, "res_scale": 0.1}, kwargs)


@register_sr_model
def edsr_light(num_classes: int = 0, in_chans: int = 1, scale: int = 2, **kwargs) -> EDSR:
    """Light EDSR for CPUs: 4 blocks x 32 features, no residual scaling (SR, not a classifier)."""
    return _build(in_chans, scale, {"n_blocks": 4, "n_feats": 32, "res_scale": 1.0}, kwargs)

