"""LRERNet (Ma, Tong & Wang, 2020) and the plain VGG-16 baseline it is compared against.

LRERNet recognises expressions on low-resolution faces with a CSRNet-like network (Li et al.,
CVPR 2018): a VGG-16 convolutional front end without the fully connected layers, then a back end
of three 3x3 *dilated* convolutions in series with rates 1, 2, 3 whose outputs are concatenated
(``concat(out1, out2, out3)`` along channels) and fused by a 1x1 convolution; global pooling, one
fully connected layer, softmax (the softmax is in the loss), trained with softmax + centre loss.

Front end (``frontend_layers``): a 48 px face would shrink to 1x1 after VGG-16's five pools, so we
follow the CSRNet convention the paper builds on and keep the first ten conv layers with the three
pools between them: the feature map is 6x6x512 at 48 px. ``frontend_layers`` is the number of
VGG-16 conv layers kept (1..13), with the pools that lie *between* them (never a trailing pool):
10 -> 3 pools (CSRNet), 13 -> 4 pools. The layer layout (module indices, shapes) is exactly
torchvision's ``vgg16().features`` (``batch_norm=False``) or ``vgg16_bn().features``
(``batch_norm=True``), so torchvision state-dict keys ``features.N.*`` apply unchanged.

Minimum input: 2**(number of pools) px, i.e. 8 px for the default cut (1x1 at the back end);
the paper's operating point is 48 px (``default_cfg``). ``vgg16_fer`` needs 32 px (five pools).

Choices where the paper is vague (and why):
- ImageNet pre-training: the paper starts from VGG-16 pre-trained on ImageNet; those weights are
  not available offline, so models train from scratch by default. ``pretrained_path`` loads a
  user-supplied torchvision VGG-16 (or VGG-16-BN) ImageNet state dict (``.pth`` read with
  ``torch.load(weights_only=True)``, or ``.safetensors``); nothing is ever downloaded.
- ``batch_norm=True`` by default: a 10-13 layer plain VGG trained from scratch with Adam at
  lr 1e-3 (the paper's optimiser) is fragile without normalisation; BN after every conv (the
  torchvision VGG-16-BN layout) makes it train reliably and is what a from-scratch run needs.
  ``batch_norm=False`` gives the original VGG-16 layout, e.g. to load plain ImageNet weights.
- back-end widths: each dilated conv has ``backend_width=256`` channels (the concatenation is
  768) and the 1x1 fusion conv ``fuse_width=256``: half of CSRNet's first back-end width (512),
  enough for 7 classes at 6x6 and it keeps the back end at ~2.6M parameters. Each back-end conv
  is followed by BN (when ``batch_norm``) and ReLU.
- "global pooling" is global *average* pooling; dropout ``drop_rate=0.5`` before the classifier.
  The embedding (pre-logits, where the centre loss acts) is the pooled fused feature (256-d).
- grayscale input: the first conv takes ``in_chans`` channels. When loading RGB ImageNet weights
  into a 1-channel model the first-conv kernels are *summed* over R, G, B (timm's
  ``adapt_input_conv``): a gray face replicated to RGB gives exactly that response, whereas the
  mean would scale the first layer's output by 1/3. Other channel counts repeat the RGB kernels
  and rescale by 3/in_chans. Input normalisation is the toolkit's fixed (x - 0.5) / 0.25, close
  to ImageNet's gray statistics (0.45 / 0.23).

``vgg16_fer``: the plain VGG-16 baseline of the paper: all 13 conv layers and 5 pools (at 48 px
the map ends at 1x1x512), then global average pooling (identity at 32..63 px, so any input size
>= 32 px works), two fully connected layers of ``fc=512`` units (ReLU, dropout 0.5) and the
classifier. VGG-16's 4096-4096 FC layers were sized for a 7x7x512 map at 224 px; on a 1x1x512 map
they would add 19M parameters for nothing, so they are scaled down to 512-512 (15.2M parameters
in all, ~14.7M of them the conv layers).

Parameter counts (7 classes, 1 channel, defaults): ``lrernet`` 10.2M, ``vgg16_fer`` 15.2M.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ._base import FERModel
from ._registry import register_model
from .init_weights import PretrainedPathMixin, load_vgg_features, read_state_dict

# ---------------------------------------------------------------------------- VGG-16 front end
#: torchvision's VGG-16 configuration "D": conv widths, "M" = 2x2 max-pool.
VGG16_CFG: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16_features(in_chans: int = 3, num_convs: int = 13, batch_norm: bool = False, trailing_pool: bool = False) -> tuple[nn.Sequential, int, int]:
    """The first ``num_convs`` conv layers of VGG-16 (pools between them), in torchvision's layout.

    Returns ``(features, out_channels, num_pools)``. Module indices equal those of torchvision's
    ``vgg16().features`` / ``vgg16_bn().features`` for the kept prefix; ``trailing_pool`` keeps the
    pool that follows the last conv (the full VGG-16 has 13 convs and 5 pools).
    """
    if not 1 <= num_convs <= 13:
        raise ValueError(f"VGG-16 has 13 conv layers; frontend_layers={num_convs} is not in 1..13")
    layers: list[nn.Module] = []
    c, convs, pools = in_chans, 0, 0
    for v in VGG16_CFG:
        if v == "M":
            if convs == num_convs and not trailing_pool:
                break
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            pools += 1
            if convs == num_convs:
                break
            continue
        if convs == num_convs:
            break
        layers.append(nn.Conv2d(c, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        c, convs = v, convs + 1
    return nn.Sequential(*layers), c, pools


def _init_vgg(module: nn.Module) -> None:
    """torchvision's VGG initialisation (Kaiming-normal convs, N(0, 0.01) linears)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------------------- LRERNet back end
class DilatedConcatFusion(nn.Module):
    """Three 3x3 convs in series with dilation rates ``rates`` (padding = rate: size kept);
    their outputs are concatenated in order and fused by a 1x1 convolution."""

    def __init__(self, cin: int, width: int = 256, fuse_width: int = 256, rates: tuple[int, ...] = (1, 2, 3), batch_norm: bool = True):
        super().__init__()

        def unit(ci: int, co: int, k: int, rate: int = 1) -> nn.Sequential:
            pad = rate * (k // 2)
            layers: list[nn.Module] = [nn.Conv2d(ci, co, k, padding=pad, dilation=rate, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(co))
            layers.append(nn.ReLU(inplace=True))
            return nn.Sequential(*layers)

        self.rates = tuple(rates)
        self.branches = nn.ModuleList()
        c = cin
        for r in self.rates:
            self.branches.append(unit(c, width, 3, r))
            c = width
        self.fuse = unit(width * len(self.rates), fuse_width, 1)
        self.out_channels = fuse_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for branch in self.branches:  # in series: each conv takes the previous one's output
            x = branch(x)
            outs.append(x)
        return self.fuse(torch.cat(outs, dim=1))


# ---------------------------------------------------------------------------- the networks
class _VGGFrontEndInit(PretrainedPathMixin):
    """The shared kwargs rule, plus LRERNet/VGG-16's own loading of an ImageNet VGG-16 file
    (:func:`lrfer.models.init_weights.load_vgg_features`)."""

    def _init_weights(self, pretrained_path: Optional[str], in_chans: int) -> None:
        """From-scratch initialisation, then the user's ImageNet VGG-16 front end if given."""
        _init_vgg(self)
        if pretrained_path:
            load_vgg_features(self.features, read_state_dict(pretrained_path), in_chans)

    @property
    def min_input_size(self) -> int:
        return 2**self.num_pools


class LRERNet(_VGGFrontEndInit, FERModel):
    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        frontend_layers: int = 10,
        batch_norm: bool = True,
        backend_width: int = 256,
        fuse_width: int = 256,
        dilations: tuple[int, ...] = (1, 2, 3),
        drop_rate: float = 0.5,
        pretrained_path: Optional[str] = None,
        input_norm: str = "fixed",
    ):
        super().__init__(num_classes, in_chans, input_norm=input_norm)
        self.features, c, self.num_pools = vgg16_features(in_chans, frontend_layers, batch_norm)
        self.backend = DilatedConcatFusion(c, backend_width, fuse_width, tuple(dilations), batch_norm)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(self.backend.out_channels, num_classes)
        self._init_weights(pretrained_path, in_chans)

    def forward_features(self, x):
        return self.backend(self.features(x))


class VGG16FER(_VGGFrontEndInit, FERModel):
    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        batch_norm: bool = True,
        fc: int = 512,
        fc_layers: int = 2,
        drop_rate: float = 0.5,
        pretrained_path: Optional[str] = None,
        input_norm: str = "fixed",
    ):
        super().__init__(num_classes, in_chans, input_norm=input_norm)
        self.features, c, self.num_pools = vgg16_features(in_chans, 13, batch_norm, trailing_pool=True)
        mlp: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        for _ in range(fc_layers):
            mlp += [nn.Linear(c, fc), nn.ReLU(inplace=True), nn.Dropout(drop_rate)]
            c = fc
        # the last dropout is the head's (head_drop): the embedding is the clean FC activation
        self.global_pool = nn.Sequential(*mlp[:-1]) if fc_layers else nn.Sequential(*mlp)
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(c, num_classes)
        self._init_weights(pretrained_path, in_chans)

    def forward_features(self, x):
        return self.features(x)


@register_model
def lrernet(num_classes: int = 7, in_chans: int = 1, **kwargs) -> LRERNet:
    """LRERNet (Ma, Tong & Wang 2020): VGG-16 front end (10 convs) + dilated 1-2-3 concat back end."""
    return LRERNet(num_classes, in_chans, **kwargs)


@register_model
def vgg16_fer(num_classes: int = 7, in_chans: int = 1, **kwargs) -> VGG16FER:
    """The plain VGG-16 baseline of LRERNet's paper: 13 convs, 5 pools, FC 512-512."""
    return VGG16FER(num_classes, in_chans, **kwargs)
