"""What the super-resolution families (:mod:`~lrfer.models.edsr`, :mod:`~lrfer.models.srgan`) share.

An SR network is an image-to-image model, ``(B, C, h, w) -> (B, C, scale*h, scale*w)`` in [0, 1],
not an expression classifier: :class:`SRModel` is its interface (what the SR front end of
:mod:`lrfer.models.front_end` and the SR trainers rely on), and its entry points are registered with
:func:`lrfer.models._registry.register_sr_model`. Both families up-sample with pixel-shuffle stages
(x4 as two x2 stages, as both papers do) whose convolutions start ICNR-initialised (:func:`icnr_`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..errors import LrferError

SCALES = (2, 3, 4)


def upsample_factors(scale: int) -> list[int]:
    """The pixel-shuffle stages of an x``scale`` model: x4 is two x2 stages, x2 and x3 one stage."""
    return [2, 2] if scale == 4 else [scale]


@torch.no_grad()
def icnr_(conv: nn.Conv2d, r: int, kernel: Optional[torch.Tensor] = None, bias: Optional[torch.Tensor] = None) -> None:
    """ICNR initialisation (Aitken et al. 2017): every sub-pixel phase of a PixelShuffle(r) conv gets the same kernel.

    PixelShuffle puts input channel ``c*r*r + phase`` at output channel ``c``, sub-pixel ``phase``;
    repeating each kernel ``r*r`` times makes "conv + shuffle" equal "conv + nearest up-sampling",
    which removes the checkerboard artefacts of sub-pixel convolution at initialisation.
    ``kernel`` (``(F, F, k, k)``) defaults to the conv's own first ``F`` kernels.
    """
    out_c = conv.out_channels // (r * r)
    k = conv.weight[:out_c].clone() if kernel is None else kernel
    b = (conv.bias[:out_c].clone() if conv.bias is not None else None) if bias is None else bias
    conv.weight.copy_(k.repeat_interleave(r * r, dim=0))
    if conv.bias is not None and b is not None:
        conv.bias.copy_(b.repeat_interleave(r * r, dim=0))


class SRModel(nn.Module):
    """A super-resolution network: its scale, size and global skip, checked and kept as attributes."""

    #: not an expression classifier: tools that iterate over all registered models skip it.
    is_classifier = False

    def __init__(self, in_chans: int, scale: int, n_blocks: int, n_feats: int, skip: str):
        super().__init__()
        if scale not in SCALES:
            raise LrferError(f"{type(self).__name__} scale {scale} is not supported", "use 2, 3 or 4")
        self.in_chans = in_chans
        self.scale = scale
        self.n_blocks = n_blocks
        self.n_feats = n_feats
        self.skip = skip
        self.num_classes = 0  # no classes: the attribute is there for code that reads it from any model
