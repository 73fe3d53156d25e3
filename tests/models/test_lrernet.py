"""LRERNet (Ma, Tong & Wang 2020) and its VGG-16 baseline: shapes, the dilated back end,
pretrained torchvision weights, and the shipped recipes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.models.lrernet import DilatedConcatFusion, vgg16_features
from lrfer.train.config import load_config
from lrfer.train.engine import fit
from tests.conftest import make_faceset

# documented minimum input: 2 ** (number of pools): 3 pools for LRERNet's 10-conv front end, 5 for VGG-16
MIN_SIZE = {"lrernet": 8, "vgg16_fer": 32}


@pytest.mark.parametrize("num_classes", [7, 8])
@pytest.mark.parametrize("name", ["lrernet", "vgg16_fer"])
def test_forward_backward_at_48_and_minimum(name, num_classes):
    torch.manual_seed(0)
    m = create_model(name, num_classes=num_classes, in_chans=1)
    assert m.min_input_size == MIN_SIZE[name]
    for size in (48, MIN_SIZE[name]):
        m.zero_grad()
        logits = m(torch.rand(2, 1, size, size))
        assert logits.shape == (2, num_classes) and torch.isfinite(logits).all()
        logits.logsumexp(1).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_feature_map_sizes_follow_the_csrnet_cut():
    m = create_model("lrernet")
    assert m.num_pools == 3
    assert m.forward_features(torch.rand(2, 1, 48, 48)).shape == (2, 256, 6, 6)
    convs = [c for c in m.features if isinstance(c, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    m13 = create_model("lrernet", frontend_layers=13)
    assert m13.num_pools == 4 and m13.forward_features(torch.rand(2, 1, 48, 48)).shape == (2, 256, 3, 3)
    vgg = create_model("vgg16_fer")
    assert vgg.num_pools == 5 and vgg.forward_features(torch.rand(2, 1, 48, 48)).shape == (2, 512, 1, 1)
    with pytest.raises(ValueError):
        create_model("lrernet", frontend_layers=14)


def test_backend_is_dilated_1_2_3_in_series_concatenated_and_fused():
    m = create_model("lrernet").eval()
    be = m.backend
    assert isinstance(be, DilatedConcatFusion)
    convs = [b[0] for b in be.branches]
    assert [c.dilation for c in convs] == [(1, 1), (2, 2), (3, 3)]
    assert [c.padding for c in convs] == [(1, 1), (2, 2), (3, 3)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3
    assert [c.in_channels for c in convs] == [512, 256, 256]  # in series
    fuse = be.fuse[0]
    assert fuse.kernel_size == (1, 1) and fuse.in_channels == 3 * 256

    # the fusion conv sees exactly concat(out1, out2, out3), each branch fed by the previous one
    seen: dict[str, torch.Tensor] = {}
    hooks = [b.register_forward_hook(lambda mod, i, o, k=k: seen.__setitem__(k, (i[0].clone(), o.clone()))) for k, b in enumerate(be.branches)]
    hooks.append(be.fuse.register_forward_hook(lambda mod, i, o: seen.__setitem__("fuse", (i[0].clone(), o.clone()))))
    with torch.no_grad():
        m.forward_features(torch.rand(2, 1, 48, 48))
    for h in hooks:
        h.remove()
    assert torch.equal(seen[1][0], seen[0][1]) and torch.equal(seen[2][0], seen[1][1])
    assert torch.equal(seen["fuse"][0], torch.cat([seen[0][1], seen[1][1], seen[2][1]], dim=1))
    assert seen["fuse"][0].shape[-2:] == seen[0][0].shape[-2:]  # padding = rate keeps the size


@pytest.mark.parametrize("name,dim", [("lrernet", 256), ("vgg16_fer", 512)])
def test_embed_and_classify_gives_num_features(name, dim):
    m = create_model(name).eval()
    x = torch.rand(3, 1, 48, 48)
    emb, logits = m.embed_and_classify(x)
    assert m.num_features == dim and emb.shape == (3, dim)
    assert torch.allclose(logits, m(x), atol=1e-5)


def test_frontend_layout_is_torchvision_vgg16():
    for bn in (False, True):
        ours, c, pools = vgg16_features(3, 13, bn, trailing_pool=True)
        ref = make_layers(cfgs["D"], batch_norm=bn)
        assert (c, pools) == (512, 5)
        assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def _fake_torchvision_vgg16(batch_norm: bool) -> dict[str, torch.Tensor]:
    """A torchvision vgg16(_bn) state dict (features.* with random values, plus classifier.*)."""
    torch.manual_seed(1)
    feats = make_layers(cfgs["D"], batch_norm=batch_norm)
    with torch.no_grad():
        for mod in feats.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
                mod.weight.uniform_(0.5, 2)
                mod.bias.uniform_(-1, 1)
            elif isinstance(mod, nn.Conv2d):
                mod.bias.uniform_(-1, 1)
    sd = {f"features.{k}": v.clone() for k, v in feats.state_dict().items()}
    sd["classifier.6.weight"] = torch.zeros(1000, 16)  # never used: the FC layers are not loaded
    return sd


def test_pretrained_pth_maps_conv_weights_into_grayscale_lrernet(tmp_path):
    sd = _fake_torchvision_vgg16(batch_norm=False)
    path = tmp_path / "vgg16.pth"
    torch.save(sd, path)
    m = create_model("lrernet", in_chans=1, batch_norm=True, pretrained_path=str(path))
    convs = [c for c in m.features if isinstance(c, nn.Conv2d)]
    src_keys = [k for k in sd if k.startswith("features.") and k.endswith(".weight") and sd[k].ndim == 4]
    assert len(convs) == 10
    # the RGB first-conv kernels are summed to one gray channel: same response to a gray image
    assert torch.allclose(convs[0].weight, sd[src_keys[0]].sum(1, keepdim=True))
    for conv, key in zip(convs[1:], src_keys[1:]):
        assert torch.equal(conv.weight, sd[key])
        assert torch.equal(conv.bias, sd[key.replace(".weight", ".bias")])
    # a checkpoint must rebuild the model without the ImageNet file
    assert "pretrained_path" not in m.model_kwargs and m.model_kwargs["batch_norm"] is True
    ckpt_path = save_checkpoint(tmp_path / "m.safetensors", m, model_spec(m, tuple("abcdefg"), 1, 48))
    path.unlink()
    rebuilt = load_checkpoint(ckpt_path).build_model()
    assert torch.equal([c for c in rebuilt.features if isinstance(c, nn.Conv2d)][0].weight, convs[0].weight)


def test_pretrained_safetensors_bn_layout_into_rgb_vgg16_fer(tmp_path):
    from safetensors.torch import save_file

    sd = _fake_torchvision_vgg16(batch_norm=True)
    path = tmp_path / "vgg16_bn.safetensors"
    save_file(sd, str(path))
    m = create_model("vgg16_fer", in_chans=3, batch_norm=True, pretrained_path=str(path))
    for k, v in m.features.state_dict().items():
        assert torch.equal(v, sd[f"features.{k}"]), k
    # gray replicated to RGB and the summed gray kernel give the same first-layer response
    g = create_model("vgg16_fer", in_chans=1, batch_norm=True, pretrained_path=str(path)).eval()
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(g.features[0](x), m.features[0](x.expand(-1, 3, -1, -1)), atol=1e-5)


def test_pretrained_errors_are_clear(tmp_path):
    with pytest.raises(LrferError, match="no such weights file"):
        create_model("lrernet", pretrained_path=str(tmp_path / "missing.pth"))
    path = tmp_path / "short.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(LrferError, match="conv layers"):
        create_model("lrernet", pretrained_path=str(path))


RECIPES = ["lrernet_fer2013", "lrernet_rafdb", "lrernet_ckplus", "vgg16_fer_rafdb"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_loads_and_trains_a_few_steps(recipe, tmp_path):
    cfg = load_config(recipe).validate()
    assert cfg.model in ("lrernet", "vgg16_fer")
    assert (cfg.optimizer, cfg.lr, cfg.momentum) == ("adam", 1e-3, 0.8)
    assert cfg.grayscale and cfg.center_loss > 0 and cfg.augment.flip and cfg.augment.rotate > 0
    assert cfg.center_loss * cfg.batch_size == pytest.approx(0.01, rel=0.1)  # lambda 0.01 on the batch-mean form
    assert cfg.augment.degrade_p == 0
    assert "Ma, Tong, Wang 2020" in cfg.paper["title"] and "73.62" in cfg.paper["reported"]
    expected_splits = {"lrernet_fer2013": ("Training", "PublicTest"), "lrernet_ckplus": ("all", "none")}
    assert (cfg.train_split, cfg.val_split) == expected_splits.get(recipe, ("train", "test"))

    # tiny run on synthetic faces: the recipe's optimiser, losses and augmentation, small sizes
    small = 32 if cfg.model == "vgg16_fer" else 16
    tiny = {"epochs": 1, "limit_train": 32, "batch_size": 16, "device": "cpu", "image_size": small}
    if cfg.val_split == "none":  # CK+: one split "all", no validation set (bench/ runs the folds)
        faces = make_faceset(32, size=48, splits=("all",))
        res = fit(load_config(recipe, **tiny), faces.select_split(cfg.train_split), None, tmp_path / "run")
    else:
        faces = make_faceset(48, size=48)
        run_cfg = load_config(recipe, **tiny, train_split="Training", val_split="PublicTest")
        res = fit(run_cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
        assert 0 <= res.history[0]["val_acc"] <= 1
    assert math.isfinite(res.history[0]["train_loss"])
    assert (tmp_path / "run" / "last.safetensors").exists()
