import pytest
import torch

from lrfer.errors import LrferError
from lrfer.models import create_model, list_models


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list_models("classifier"))
def test_forward_backward_and_interface(name):
    m = create_model(name, num_classes=7, in_chans=1)
    x = torch.rand(2, 1, 48, 48)
    logits = m(x)
    assert logits.shape == (2, 7)
    emb, logits2 = m.embed_and_classify(x)
    assert emb.shape == (2, m.num_features)
    m.eval()
    assert torch.allclose(m(x), m.forward_head(m.forward_features(m.normalize(x))), atol=1e-5)
    m.train()
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", list_models("classifier"))
def test_small_input_and_eight_classes(name):
    m = create_model(name, num_classes=8, in_chans=3)
    assert m(torch.rand(2, 3, 44, 44)).shape == (2, 8)


def test_cnn2x2_matches_paper_size():
    m = create_model("cnn2x2", num_classes=7)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 512, 1024]
    assert all(c.kernel_size == (2, 2) for c in convs)
    assert sum(isinstance(mod, torch.nn.MaxPool2d) for mod in m.modules()) == 5
    assert sum(isinstance(mod, torch.nn.Linear) for mod in m.modules()) == 4  # 3 x 512 + output
    assert 3.75e6 < n_params(m) < 3.9e6


def test_resnet_sizes():
    assert 11.0e6 < n_params(create_model("resnet18_fer")) < 11.3e6
    assert 2.7e6 < n_params(create_model("resnet18_fer_slim")) < 2.9e6


def test_unknown_model_suggests_closest():
    with pytest.raises(LrferError, match="did you mean 'cnn2x2'"):
        create_model("cnn2x3")


def test_airnet_layout_and_smallest_input():
    m = create_model("airnet_fer")
    assert 0.28e6 < n_params(m) < 0.30e6
    # three pooled stages: a 32 px face ends as a 4x4 map of 128 channels, an 8 px one as 1x1
    assert m.forward_features(torch.rand(2, 1, 32, 32)).shape == (2, 128, 4, 4)
    assert m(torch.rand(2, 1, 8, 8)).shape == (2, 7)
    assert create_model("airnet_fer", widths=(8, 16), stem_width=4).forward_features(torch.rand(1, 1, 32, 32)).shape == (1, 16, 8, 8)


def test_airnet_whiten_stem_decorrelates_what_the_stem_sees():
    g = torch.Generator().manual_seed(0)
    # smooth faces: neighbouring pixels correlate strongly, so the raw patches are far from white
    faces = torch.nn.functional.avg_pool2d(torch.rand(64, 1, 36, 36, generator=g), 5, 1)
    m = create_model("airnet_fer", stem_width=20).eval()  # 10 pairs asked for, a 3x3 patch has 9 dimensions
    untouched = m.stem[0].weight[18:].clone()
    assert m.whiten_stem(faces) == 18
    assert torch.equal(m.stem[0].weight[18:], untouched) and torch.equal(m.stem[0].weight[9:18], -m.stem[0].weight[:9])
    conv = torch.nn.functional.conv2d(m.normalize(faces), m.stem[0].weight[:9])
    out = conv.transpose(0, 1).reshape(9, -1)
    cov = torch.cov(out).detach()
    off = cov - torch.diag(cov.diag())
    assert off.abs().max() < 1e-3  # decorrelated
    assert (cov.diag() > 0.9).all() and (cov.diag() < 1.0).all()  # unit variance, less eps's share for the weakest
    raw = torch.cov(torch.nn.functional.unfold(m.normalize(faces), 3).transpose(0, 1).reshape(9, -1))
    assert raw[0, 1] / raw[0, 0] > 0.5  # what it started from


def test_airnet_pool_grid_keeps_where_a_feature_was():
    m = create_model("airnet_fer", pool_grid=2).eval()
    assert m.num_features == 4 * 128
    assert m(torch.rand(2, 1, 8, 8)).shape == (2, 7)  # a 1x1 map still fills the grid
    fmap = torch.zeros(1, 128, 4, 4)
    fmap[0, 0, 0, 0] = 1.0  # one channel fires in the top-left corner, then in the bottom-right
    moved = fmap.flip(-1).flip(-2)
    assert torch.equal(m.global_pool(fmap).sum(), m.global_pool(moved).sum())
    assert not torch.equal(m.global_pool(fmap), m.global_pool(moved))
    global_max = create_model("airnet_fer").eval()
    assert torch.equal(global_max.global_pool(fmap), global_max.global_pool(moved))
    with pytest.raises(ValueError, match="pool_grid"):
        create_model("airnet_fer", pool_grid=0)
