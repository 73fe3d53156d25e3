"""Spatial Transformer (Jaderberg et al., 2015): a learnt affine re-sampling of the face.

A small localisation CNN looks at the face and predicts the 6 parameters of an affine map
``theta`` (2x3); ``F.affine_grid`` + ``F.grid_sample`` re-sample the face through it, so the
module maps ``(B, C, H, W) -> (B, C, H, W)`` and can sit in front of any classifier (see
:mod:`lrfer.models.front_end`, the Qin 2021 front end). Trained end to end with the classifier's
loss, it learns to undo small shifts, rotations and zooms of badly aligned faces.

Choices (and why):

- the last layer is zero-initialised with bias ``[1, 0, 0, 0, 1, 0]``: the transform starts as the
  identity and, with ``align_corners=False`` on both calls, re-sampling at the identity returns the
  input exactly (every sample point falls on a pixel centre), so adding an STN changes nothing
  until training moves it;
- the localisation net pools adaptively to ``pool x pool`` and its max-pools use ``ceil_mode``, so
  it works on any face size from 8 px (a captured low-resolution face) to 96 px;
- it normalises its own input (``(x - 0.5) / 0.25``); the output is the re-sampled input itself,
  still in [0, 1], for the next stage;
- ``padding_mode="border"``: a face moved by the transform is padded with its edge pixels, not
  black, so the classifier does not learn from black margins.
- ``theta_scale`` (default 0.1) slows the localisation net down: ``theta = I + s * (fc(h) - I)``,
  the identity at initialisation as above, but each update moves ``theta`` about ``s*s`` times as
  far under SGD (``s`` times under Adam), the usual "lower learning rate for the localisation
  net". Measured on FER2013 (qin_stn_fer2013, 3 epochs of 3,072 faces, SGD lr 0.05) with ``s = 1``:
  within 72 updates, while the classifier was still at 24 %, the transform had drifted to the same
  shear and 15-20 % shift for every face (theta about [[0.82, -0.47, 0.29], [-0.20, 0.83, 0.43]]):
  the STN followed the untrained classifier's noise. ``theta_scale=1`` is the plain STN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IDENTITY_THETA = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class SpatialTransformer(nn.Module):
    """Localisation CNN -> affine ``theta`` -> ``grid_sample``; identity at initialisation."""

    def __init__(
        self,
        in_chans: int = 1,
        channels: tuple[int, ...] = (16, 32),
        hidden: int = 64,
        pool: int = 4,
        padding_mode: str = "border",
        mode: str = "bilinear",
        theta_scale: float = 0.1,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, w in enumerate(channels):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c, w, k, padding=k // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
            c = w
        layers += [nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(c * pool * pool, hidden), nn.ReLU(inplace=True)]
        self.localization = nn.Sequential(*layers)
        self.fc_theta = nn.Linear(hidden, 6)
        nn.init.zeros_(self.fc_theta.weight)
        with torch.no_grad():
            self.fc_theta.bias.copy_(torch.tensor(IDENTITY_THETA))
        self.register_buffer("identity", torch.tensor(IDENTITY_THETA), persistent=False)
        self.theta_scale = theta_scale
        self.padding_mode = padding_mode
        self.mode = mode

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted affine maps ``(B, 2, 3)`` (output coordinates -> input coordinates)."""
        raw = self.fc_theta(self.localization((x - 0.5) / 0.25))
        return (self.identity + self.theta_scale * (raw - self.identity)).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode=self.mode, padding_mode=self.padding_mode, align_corners=False)
