"""Small 2x2-kernel CNN (Salimov & Yoo, 2021).

Six convolutions with 2x2 kernels and 32, 64, 128, 256, 512, 1024 filters, a 2x2 max-pool after
every convolution but the first, then three fully connected layers of 512 units and the output
layer. At 48x48 the feature map ends at 1x1x1024 and the network has about 3.8M parameters.

Choices where the paper is silent (and why):
- padding: a 2x2 kernel has no centre, so we pad one pixel at the bottom/right ("same" as in Keras,
  the paper's framework). Without padding a 48 px input would shrink to nothing before the last pool.
- batch norm after every convolution and dropout 0.5 between the fully connected layers: the paper's
  training reaches 69% on FER2013 only with regularisation; BN adds 0.1% parameters.
The depth/kernel sweep of the paper's Table 3 uses ``depth`` and ``kernel``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ._base import FERModel
from ._registry import register_model


class SamePad(nn.Module):
    """Keras 'same' padding for stride 1: the extra pixel goes to the bottom/right."""

    def __init__(self, kernel: int):
        super().__init__()
        total = kernel - 1
        self.pad = (total // 2, total - total // 2, total // 2, total - total // 2)

    def forward(self, x):
        return F.pad(x, self.pad)


class Cnn2x2(FERModel):
    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        depth: int = 6,
        kernel: int = 2,
        widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024),
        fc: int = 512,
        fc_layers: int = 3,
        drop_rate: float = 0.5,
        input_size: int = 48,
        input_norm: str = "fixed",
    ):
        super().__init__(num_classes, in_chans, input_norm=input_norm)
        layers: list[nn.Module] = []
        c, size = in_chans, input_size
        for i in range(depth):
            w = widths[min(i, len(widths) - 1)]
            layers += [SamePad(kernel), nn.Conv2d(c, w, kernel), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i > 0 and size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            c = w
        self.features = nn.Sequential(*layers)
        mlp: list[nn.Module] = [nn.Flatten()]
        d = c * size * size
        for _ in range(fc_layers):
            mlp += [nn.Linear(d, fc), nn.ReLU(inplace=True), nn.Dropout(drop_rate)]
            d = fc
        # The last dropout belongs to the head (head_drop) so the embedding is the clean activation.
        self.global_pool = nn.Sequential(*mlp[:-1])
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(d, num_classes)

    def forward_features(self, x):
        return self.features(x)


@register_model
def cnn2x2(num_classes: int = 7, in_chans: int = 1, **kwargs) -> Cnn2x2:
    """The paper's network: 6 conv layers, 2x2 kernels, 3 FC layers of 512."""
    return Cnn2x2(num_classes, in_chans, **kwargs)
