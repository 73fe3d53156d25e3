"""Spatial Transformer: identity at initialisation, exact re-sampling, gradients reach the localisation net."""

from __future__ import annotations

import pytest
import torch

from lrfer.models.stn import IDENTITY_THETA, SpatialTransformer


@pytest.mark.parametrize("chans,size", [(1, 48), (3, 44), (1, 24), (1, 8), (1, 45)])
def test_identity_at_init_returns_input(chans, size):
    torch.manual_seed(0)
    stn = SpatialTransformer(chans)
    x = torch.rand(3, chans, size, size)
    theta = stn.theta(x)
    assert torch.equal(theta, torch.tensor(IDENTITY_THETA).view(1, 2, 3).expand(3, 2, 3))
    y = stn(x)
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-5)


def test_mirror_transform_flips_exactly():
    # with align_corners=False, x -> -x maps pixel centres onto pixel centres
    stn = SpatialTransformer(1, theta_scale=1.0)
    with torch.no_grad():
        stn.fc_theta.bias.copy_(torch.tensor([-1.0, 0, 0, 0, 1, 0]))
    x = torch.rand(2, 1, 20, 20)
    assert torch.allclose(stn(x), x.flip(-1), atol=1e-5)


def test_gradients_reach_localisation_and_move_the_transform():
    torch.manual_seed(0)
    stn = SpatialTransformer(1)
    x = torch.rand(4, 1, 24, 24)
    target = torch.roll(x, 2, dims=-1)  # a shifted face: the STN should learn to move it
    loss = (stn(x) - target).abs().mean()
    loss.backward()
    assert stn.fc_theta.weight.grad.abs().sum() > 0
    assert stn.fc_theta.bias.grad.abs().sum() > 0
    opt = torch.optim.SGD(stn.parameters(), lr=0.1)
    opt.step()
    assert not torch.equal(stn.theta(x), torch.tensor(IDENTITY_THETA).view(1, 2, 3).expand(4, 2, 3))


def test_theta_scale_slows_the_transform_down():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 24, 24)
    moved = []
    for s in (1.0, 0.1):
        torch.manual_seed(0)
        stn = SpatialTransformer(1, theta_scale=s)
        (stn(x) - torch.roll(x, 2, dims=-1)).abs().mean().backward()
        torch.optim.SGD(stn.parameters(), lr=0.1).step()
        with torch.no_grad():
            moved.append(float((stn.theta(x) - torch.tensor(IDENTITY_THETA).view(1, 2, 3)).abs().max()))
    assert moved[1] == pytest.approx(moved[0] * 0.01, rel=1e-3)  # s*s under SGD
