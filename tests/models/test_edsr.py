"""EDSR: output shapes, bicubic at initialisation, constant images, x4-from-x2 initialisation, registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.models.edsr import EDSR
from lrfer.models.init_weights import init_from
from tests.conftest import make_faceset


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shapes(scale):
    m = create_model("edsr_light", in_chans=1, scale=scale)
    assert m(torch.rand(2, 1, 12, 10)).shape == (2, 1, 12 * scale, 10 * scale)
    rgb = create_model("edsr_light", in_chans=3, scale=scale)
    assert rgb(torch.rand(1, 3, 8, 8)).shape == (1, 3, 8 * scale, 8 * scale)


def test_paper_config_output_shape():
    with torch.no_grad():
        assert create_model("edsr", in_chans=1, scale=4)(torch.rand(1, 1, 6, 5)).shape == (1, 1, 24, 20)


def test_configurations():
    paper, light = create_model("edsr"), create_model("edsr_light")
    assert (paper.n_blocks, paper.n_feats, paper.body[0].res_scale) == (16, 128, 0.1)
    assert (light.n_blocks, light.n_feats, light.body[0].res_scale) == (4, 32, 1.0)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in paper.modules())
    x4 = create_model("edsr_light", scale=4)
    assert [s.r for s in x4.upsample] == [2, 2]  # x4 = two x2 pixel-shuffle stages
    with pytest.raises(LrferError):
        create_model("edsr_light", scale=5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_starts_as_bicubic(scale):
    m = create_model("edsr_light", scale=scale)
    x = torch.rand(2, 1, 12, 12)
    assert torch.equal(m(x), F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False))


def _constant_deviation(m, levels=(0.0, 0.3, 0.7, 1.0)):
    with torch.no_grad():
        return max(float((m(torch.full((1, 1, 12, 12), v)) - v).abs().max()) for v in levels)


def test_constant_image_stays_constant_at_init_and_after_training():
    torch.manual_seed(0)
    m = create_model("edsr_light", scale=2)
    assert _constant_deviation(m) < 1e-6
    # train on faces mixed with constant images: the learnt residual must not paint a pattern
    faces = make_faceset(64, size=24).images.float() / 255
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for _ in range(25):
        hr = faces[torch.randint(0, 64, (16,))]
        hr[:4] = torch.rand(4, 1, 1, 1).expand(4, 1, 24, 24)
        loss = (m(F.interpolate(hr, scale_factor=0.5, mode="area")) - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(m.tail.weight.detach().abs().sum()) > 0  # it did learn a residual
    assert _constant_deviation(m) < 0.02


def test_init_from_x2_copies_weights(tmp_path):
    torch.manual_seed(0)
    x2 = create_model("edsr_light", scale=2)
    with torch.no_grad():
        for p in x2.parameters():
            p.add_(torch.randn_like(p) * 0.01)  # "trained": differs from any fresh init
    path = save_checkpoint(tmp_path / "x2.safetensors", x2, model_spec(x2, (), 1, 24))
    x4 = create_model("edsr_light", scale=4)
    copied = init_from(x4, path)  # from a checkpoint path (a model works too)
    src, dst = x2.state_dict(), x4.state_dict()
    for prefix in ("head.", "body.", "upsample.0.", "tail."):
        keys = [k for k in src if k.startswith(prefix)]
        assert keys and all(k in copied and torch.equal(dst[k], src[k]) for k in keys)
    assert not any(k.startswith("upsample.1.") for k in copied)
    # the new second stage is nearest-neighbour up-sampling of the features
    f = torch.randn(2, x4.n_feats, 5, 5)
    assert torch.allclose(x4.upsample[1](f), F.interpolate(f, scale_factor=2, mode="nearest"), atol=1e-5)


def test_init_from_rejects_mismatches():
    with pytest.raises(LrferError, match="x2 model into an x4"):
        init_from(create_model("edsr_light", scale=2), create_model("edsr_light", scale=2))
    with pytest.raises(LrferError, match="blocks"):
        init_from(create_model("edsr_light", scale=4), create_model("edsr_light", scale=2, n_feats=16))


def test_registry_and_checkpoint_round_trip(tmp_path):
    m = create_model("edsr", in_chans=1, scale=2)
    assert isinstance(m, EDSR) and m.is_classifier is False
    light = create_model("edsr_light", num_classes=7, in_chans=1, scale=3)  # num_classes is ignored
    with torch.no_grad():
        light.tail.weight.normal_()
    path = save_checkpoint(tmp_path / "sr.safetensors", light, model_spec(light, (), 1, 16))
    ck = load_checkpoint(path)
    assert ck.spec["num_classes"] == 0 and ck.spec["kwargs"] == {"scale": 3}
    rebuilt = ck.build_model()
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), light.eval()(x))
