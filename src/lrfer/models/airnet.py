"""A plain conv-pool network in the style of airbench (Keller Jordan's CIFAR-10 speed runs).

Why it is here: the 30-minute CPU recipe is compute-bound (``bench/cpu_step_profile.py``: 0.8% of
a step is augmentation), so what it needs is more accuracy per second of CPU in the first epochs.
A quarter-width ResNet-18 spends its FLOPs on 16-channel convolutions at full resolution, small
matrix products that suit a CPU poorly; airbench's layout keeps channels wide and
resolution falling fast.

Layout: a 3x3 stem conv, then per stage ``conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU``
(the pool straight after the first conv, as airbench does, so the second conv and the norms run
at the pooled size), global max-pool (or a max-pool to a ``pool_grid`` x ``pool_grid`` grid), one
linear layer. No residual connections: at three stages (32 -> 16 -> 8 -> 4 px for a 32 px face)
the net is shallow enough to train without them.

Not taken from airbench (it targets an A100): its frozen-weight BN, whitening initialisation of
the first layer, lookahead and logit scaling. lrfer's engine already gives label smoothing,
flip TTA and per-image standardisation (``input_norm``).
"""

from __future__ import annotations

from torch import nn

from .base import FERModel
from .registry import register_model


def conv_bn_gelu(cin: int, cout: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, nn.BatchNorm2d(cout), nn.GELU())


class AirNet(FERModel):
    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        widths: tuple[int, ...] = (32, 64, 128),
        stem_width: int = 16,
        drop_rate: float = 0.0,
        input_norm: str = "per_image",
        pool_grid: int = 1,
    ):
        super().__init__(num_classes, in_chans, input_norm=input_norm)
        self.stem = conv_bn_gelu(in_chans, stem_width, pool=False)
        stages, c = [], stem_width
        for w in widths:
            stages.append(nn.Sequential(conv_bn_gelu(c, w, pool=True), conv_bn_gelu(w, w, pool=False)))
            c = w
        self.stages = nn.Sequential(*stages)
        if pool_grid < 1:
            raise ValueError(f"pool_grid must be >= 1, got {pool_grid}")
        # Max rather than average pooling, as airbench: an expression is a few local cues (a mouth
        # corner, a brow), and the strongest response of each channel is what says it is there.
        # pool_grid > 1 keeps where it was (FER faces are aligned: the upper cells see the brows,
        # the lower ones the mouth), which one global maximum per channel throws away.
        self.global_pool = nn.Sequential(nn.AdaptiveMaxPool2d(pool_grid), nn.Flatten())
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(c * pool_grid * pool_grid, num_classes)

    def forward_features(self, x):
        return self.stages(self.stem(x))


@register_model
def airnet_fer(num_classes: int = 7, in_chans: int = 1, **kwargs) -> AirNet:
    """airbench-style conv-pool net, widths 32/64/128 (0.29M parameters): the CPU recipe's network."""
    return AirNet(num_classes, in_chans, **kwargs)
