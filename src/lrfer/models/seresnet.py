"""SE-ResNet-50 (Hu et al. 2018) as used by Massoli, Cafarelli, Amato & Falchi (2021) for
cross-resolution expression recognition on Aff-Wild2.

ResNet-50 bottlenecks (3, 4, 6, 3 blocks; widths 64..512, expansion 4) with a squeeze-and-excitation
module (reduction 16) on the residual branch of every block, before the addition. 28.1M parameters
with a 1000-class head, 26.1M with 7 classes.

Input size. The paper feeds 224 px faces (the VGGFace2 protocol: resize to 256, random 224 crop).
The standard stem (7x7 stride-2 convolution + max-pool) divides the input by 32: 224 -> 7x7, 112 ->
4x4 (Aff-Wild2's cropped-aligned frames), 48 -> 2x2. For small faces, ``small_input=True`` uses a 3x3
stride-1 stem and no max-pool (as CIFAR ResNets and :mod:`lrfer.models.resnet_fer`), so a 48 px face
ends at 6x6 instead of 2x2, at about 4x the compute of the standard stem at 2x the side.
The default is the paper's standard stem: it keeps every key and shape of the pretrained networks,
and still runs at 44-48 px.

Parameter names follow torchvision's ``resnet50`` (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ...) with timm's SE names (``layer1.0.se.fc1`` / ``se.fc2``, 1x1
convolutions with bias); the classifier is ``classifier`` (torchvision's ``fc``).
:func:`lrfer.models.init_weights.load_init_weights` maps these layouts onto it:

- torchvision / timm (``seresnet50``) state dicts: same names (``fc.`` -> ``classifier.``);
- Cadene ``pretrainedmodels`` ``se_resnet50``: ``layer0.conv1`` -> ``conv1``, ``se_module`` -> ``se``,
  ``last_linear`` -> ``classifier``;
- the Oxford VGGFace2 SE-ResNet-50 (``senet50_ft`` / ``senet50_scratch``, PyTorch conversions of the
  Caffe models): ``conv1_7x7_s2`` -> ``conv1``, ``conv{S}_{B}_1x1_reduce`` -> ``layer{S-1}.{B-1}.conv1``,
  ``_3x3`` -> ``conv2``, ``_1x1_increase`` -> ``conv3``, ``_1x1_down``/``_1x1_up`` -> ``se.fc1``/``se.fc2``,
  ``_1x1_proj`` -> ``downsample.0``, each ``_bn`` -> the matching BatchNorm. Those (and Cadene's)
  networks put the stride in the first 1x1 convolution of a block (Caffe); build the model with
  ``stride_in_1x1=True`` to get the same function. The Caffe models take BGR pixels in 0-255 minus a
  per-channel mean (about 109): the loader flips the first convolution to RGB; set
  ``mean=0.427, std=0.00392`` (that is 109/255 and 1/255) so the input scale matches too.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import FERModel
from ._registry import register_model


class SEModule(nn.Module):
    """Squeeze (global average) and excitation (1x1 conv, ReLU, 1x1 conv, sigmoid) channel gate."""

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=bias)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=bias)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample, per-channel weights in (0, 1), shape ``(B, C, 1, 1)``."""
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(self.act(self.fc1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SEBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, reduction: int = 16, se_bias: bool = True, stride_in_1x1: bool = False):
        super().__init__()
        out = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, s1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, s3, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.se = SEModule(out, reduction, se_bias)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.se(self.bn3(self.conv3(y)))
        return self.relu(y + shortcut)


class SEResNet(FERModel):
    default_cfg = {"input_size": (3, 224, 224), "mean": 0.5, "std": 0.25}

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 3,
        layers: tuple[int, ...] = (3, 4, 6, 3),
        width: int = 64,
        reduction: int = 16,
        small_input: bool = False,
        stride_in_1x1: bool = False,
        se_bias: bool = True,
        drop_rate: float = 0.0,
        zero_init_last: bool = True,
        mean: float = 0.5,
        std: float = 0.25,
        input_norm: str = "fixed",
    ):
        super().__init__(num_classes, in_chans, mean=mean, std=std, input_norm=input_norm)
        self.small_input = small_input
        if small_input:
            self.conv1 = nn.Conv2d(in_chans, width, 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_chans, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(3, 2, 1)
        inplanes = width
        for i, n in enumerate(layers):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(SEBottleneck(inplanes, planes, stride, reduction, se_bias, stride_in_1x1))
                inplanes = planes * SEBottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if zero_init_last:  # every block starts as the identity (Goyal et al. 2017): faster from scratch
            for m in self.modules():
                if isinstance(m, SEBottleneck):
                    nn.init.zeros_(m.bn3.weight)

    def forward_features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x


@register_model
def seresnet50(num_classes: int = 7, in_chans: int = 1, **kwargs) -> SEResNet:
    """SE-ResNet-50 (Massoli et al. 2021): 224/112 px with the standard stem, ``small_input=True`` for 48 px."""
    return SEResNet(num_classes, in_chans, **{"layers": (3, 4, 6, 3), **kwargs})
