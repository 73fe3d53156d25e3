"""Model A of Liu, Zhang & Xin (2019): an Xception-like network of depthwise-separable convolutions
for 48x48 grayscale faces, trained with softmax + centre loss.

The paper gives the outline and the size (2,720,439 parameters); this implementation follows the
outline and lands within 0.05% of that count (7 classes, 1 channel; counted as
``sum(p.numel() for p in model.parameters())``, i.e. without BN running statistics):

- entry flow, 48x48 -> 6x6x256: two 3x3 convs (32, 64 channels, stride 1: a 48 px face has no
  resolution to spare for Xception's stride-2 stem), then six depthwise-separable convs as three
  Xception blocks of two (64->128->128, 128->256->256, 256->256->256), each ending in a 3x3
  stride-2 max-pool (48 -> 24 -> 12 -> 6) and bypassed by Xception's 1x1 stride-2 conv + BN
  shortcut;
- middle flow: four modules of three depthwise-separable convs (256 channels) with an identity
  residual connection around each module (Xception's middle flow);
- exit flow: two depthwise-separable convs (256 -> 256 -> 384) and one 3x3 conv (384 -> 384);
- global average pooling -> dropout -> fully connected layer -> softmax (the softmax is in the loss).

Choices where the paper is vague (and why):
- every conv (separable or not) is followed by batch norm and a PReLU with one slope per channel
  (PyTorch's ``nn.PReLU(C)``), except inside residual modules, where Xception's pre-activation
  order PReLU -> sep-conv -> BN is used so that the identity path stays clean;
- a depthwise-separable conv is a 3x3 depthwise conv followed by a 1x1 pointwise conv, without
  biases (BN follows), as in Xception;
- the last "conv" of the exit flow is an ordinary 3x3 conv to ``embed_dim=384`` channels and the
  classifier is a fully connected layer after global average pooling, rather than a conv with one
  channel per class (mini-Xception style): the centre loss needs a pre-logits embedding, and
  that embedding is the pooled 384-d output of this conv;
- dropout: ``drop_rate=0.5`` before the classifier and ``block_drop=0.1`` (plain dropout) after the
  entry and middle flows;
- widths (stem 32, 64 | entry 128, 256, 256 | middle 256 | exit 256, 384 | conv 384): the entry
  follows Xception's doubling up to the stated 256 channels at 6x6; the exit widths were then
  picked, among non-narrowing choices from {256, 384, 512, 728, 768, 1024}, as the one closest to the
  paper's count: 2,719,239 parameters with 7 classes (-0.044% from 2,720,439; 2,719,624 with 8).
  About half of them (1.33M) are the final 3x3 conv. The paper's exact layout most likely differs
  in details it does not give (PReLU sharing, biases, the head), which the outline cannot recover.

Input: designed for 48x48 (or the 44x44 crops of the training recipe, which also end at 6x6);
the three max-pools have padding 1 (output ceil(n/2)), so any input >= 8 px works (8 px ends at
1x1 before the exit flow).
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import FERModel
from ._registry import register_model


class SeparableConv2d(nn.Module):
    """3x3 depthwise conv + 1x1 pointwise conv (no biases: BN follows)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def conv_bn_act(cin: int, cout: int, separable: bool) -> nn.Sequential:
    conv = SeparableConv2d(cin, cout) if separable else nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.PReLU(cout))


class EntryBlock(nn.Module):
    """Two separable convs and a 3x3 stride-2 max-pool, plus a 1x1 stride-2 conv shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            SeparableConv2d(cin, cout), nn.BatchNorm2d(cout), nn.PReLU(cout),
            SeparableConv2d(cout, cout), nn.BatchNorm2d(cout),
            nn.MaxPool2d(3, stride=2, padding=1),
        )  # fmt: skip
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.PReLU(cout)

    def forward(self, x):
        return self.act(self.body(x) + self.shortcut(x))


class MiddleBlock(nn.Module):
    """Three pre-activated separable convs (PReLU -> sep-conv -> BN) with an identity residual."""

    def __init__(self, c: int, n: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n):
            layers += [nn.PReLU(c), SeparableConv2d(c, c), nn.BatchNorm2d(c)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


class DSXception(FERModel):
    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        stem: tuple[int, int] = (32, 64),
        entry: tuple[int, ...] = (128, 256, 256),
        middle_blocks: int = 4,
        middle_convs: int = 3,
        exit_widths: tuple[int, int] = (256, 384),
        embed_dim: int = 384,
        drop_rate: float = 0.5,
        block_drop: float = 0.1,
        input_norm: str = "fixed",
    ):
        super().__init__(num_classes, in_chans, input_norm=input_norm)
        self.stem = nn.Sequential(conv_bn_act(in_chans, stem[0], False), conv_bn_act(stem[0], stem[1], False))
        blocks, c = [], stem[1]
        for w in entry:
            blocks.append(EntryBlock(c, w))
            c = w
        self.entry = nn.Sequential(*blocks, nn.Dropout(block_drop))
        self.middle = nn.Sequential(*[MiddleBlock(c, middle_convs) for _ in range(middle_blocks)], nn.PReLU(c), nn.Dropout(block_drop))
        self.exit = nn.Sequential(
            conv_bn_act(c, exit_widths[0], True),
            conv_bn_act(exit_widths[0], exit_widths[1], True),
            conv_bn_act(exit_widths[1], embed_dim, False),
        )
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head_drop = nn.Dropout(drop_rate)
        self.classifier = nn.Linear(embed_dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # zero-init the last BN of each residual module: every module starts as the identity
        for m in self.modules():
            if isinstance(m, MiddleBlock):
                nn.init.zeros_(m.body[-1].weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.exit(self.middle(self.entry(self.stem(x))))


@register_model
def dsxception(num_classes: int = 7, in_chans: int = 1, **kwargs) -> DSXception:
    """Model A of Liu, Zhang & Xin (2019): Xception-like depthwise-separable CNN for 48x48 faces (2.72M)."""
    return DSXception(num_classes, in_chans, **kwargs)
