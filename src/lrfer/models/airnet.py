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

Whitening initialisation of the first layer, as airbench's: :meth:`AirNet.whiten_stem`, run
by the engine with ``stem_init = "whiten"`` (``freeze = ["stem.0"]`` keeps it fixed, as airbench
does). Not taken from airbench (it targets an A100): its frozen-weight BN, lookahead and logit
scaling. lrfer's engine already gives label smoothing, flip TTA and per-image standardisation
(``input_norm``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._base import FERModel
from ._registry import register_model


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

    @torch.no_grad()
    def whiten_stem(self, faces: torch.Tensor, eps: float = 5e-4) -> int:
        """Set the stem's filters to the data's whitening basis; returns how many were set.

        airbench's initialisation: the patches the stem sees (``faces`` as the model gets them,
        normalised) are decomposed into the eigenvectors of their covariance, and the top ones,
        each scaled by 1/sqrt(its eigenvalue), become filters in +/- pairs (the pair keeps a
        direction's both signs through the GELU). The stem's outputs then start decorrelated and of
        equal variance, which is what the next layers train fastest on. At most ``out_channels // 2``
        directions, and no more than a patch has dimensions; remaining filters keep their
        initialisation.
        """
        conv = self.stem[0]
        x = faces.float() / 255 if faces.dtype == torch.uint8 else faces.float()
        x = self.normalize(x.to(conv.weight.device))
        k = conv.kernel_size[0]
        patches = F.unfold(x, k).transpose(1, 2).reshape(-1, conv.in_channels * k * k).double()
        patches = patches - patches.mean(0)
        eigvals, eigvecs = torch.linalg.eigh(patches.T @ patches / len(patches))  # ascending
        n = min(conv.out_channels // 2, eigvals.numel())
        basis = (eigvecs[:, -n:] / (eigvals[-n:] + eps).sqrt()).T.float()  # (n, C*k*k), largest last
        conv.weight[: 2 * n] = torch.cat([basis, -basis]).view(2 * n, conv.in_channels, k, k)
        return 2 * n


@register_model
def airnet_fer(num_classes: int = 7, in_chans: int = 1, **kwargs) -> AirNet:
    """airbench-style conv-pool net, widths 32/64/128 (0.29M parameters): the CPU recipe's network."""
    return AirNet(num_classes, in_chans, **kwargs)
