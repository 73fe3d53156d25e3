"""Model A of Liu, Zhang & Xin (2019) (``dsxception``): size, structure, shapes and its recipe."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lrfer.models import create_model
from lrfer.models.xception import MiddleBlock, SeparableConv2d
from lrfer.train.config import load_config
from lrfer.train.engine import fit
from tests.conftest import make_faceset

PAPER_PARAMS = 2_720_439


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("num_classes", [7, 8])
def test_parameter_count_matches_the_paper(num_classes):
    n = n_params(create_model("dsxception", num_classes=num_classes, in_chans=1))
    assert abs(n - PAPER_PARAMS) / PAPER_PARAMS < 0.02, n
    if num_classes == 7:
        assert n == 2_719_239  # the documented count (-0.044%)


def test_structure_follows_the_paper_outline():
    m = create_model("dsxception")
    entry_seps = [s for s in m.entry.modules() if isinstance(s, SeparableConv2d)]
    assert len(entry_seps) == 6
    stem_convs = [c for c in m.stem.modules() if isinstance(c, nn.Conv2d)]
    assert len(stem_convs) == 2 and all(c.kernel_size == (3, 3) for c in stem_convs)
    middle = [b for b in m.middle if isinstance(b, MiddleBlock)]
    assert len(middle) == 4
    assert all(sum(isinstance(s, SeparableConv2d) for s in b.modules()) == 3 for b in middle)
    exit_seps = [s for s in m.exit.modules() if isinstance(s, SeparableConv2d)]
    exit_convs = [c for c in m.exit.modules() if isinstance(c, nn.Conv2d) and c.groups == 1 and c.kernel_size == (3, 3)]
    assert len(exit_seps) == 2 and len(exit_convs) == 1
    for s in entry_seps + exit_seps:
        assert s.depthwise.groups == s.depthwise.in_channels and s.pointwise.kernel_size == (1, 1)
    assert any(isinstance(mod, nn.PReLU) for mod in m.modules())
    assert any(isinstance(mod, nn.BatchNorm2d) for mod in m.modules())
    assert any(isinstance(mod, nn.Dropout) for mod in m.modules())
    # entry flow: 48x48 -> 6x6x256
    with torch.no_grad():
        assert m.entry(m.stem(torch.rand(2, 1, 48, 48))).shape == (2, 256, 6, 6)


def test_middle_modules_are_residual():
    m = create_model("dsxception").eval()
    block = next(b for b in m.middle if isinstance(b, MiddleBlock))
    x = torch.rand(2, 256, 6, 6)
    with torch.no_grad():
        assert torch.allclose(block(x), x + block.body(x))


@pytest.mark.parametrize("num_classes", [7, 8])
def test_forward_backward_at_48_44_and_minimum(num_classes):
    torch.manual_seed(0)
    m = create_model("dsxception", num_classes=num_classes, in_chans=1)
    for size in (48, 44, 8):  # 8 px: the documented minimum (1x1 after the three entry pools)
        m.zero_grad()
        logits = m(torch.rand(2, 1, size, size))
        assert logits.shape == (2, num_classes) and torch.isfinite(logits).all()
        logits.logsumexp(1).sum().backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_embedding_is_the_pooled_exit_conv():
    m = create_model("dsxception").eval()
    x = torch.rand(3, 1, 48, 48)
    emb, logits = m.embed_and_classify(x)
    assert m.num_features == 384 and emb.shape == (3, 384)
    assert torch.allclose(logits, m(x), atol=1e-5)


def test_recipe_loads_and_trains_a_few_steps(tmp_path):
    cfg = load_config("dsxception_fer2013").validate()
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("dsxception", "adamax", 0.01, 64, 250)
    assert cfg.center_loss > 0 and cfg.tta == "tencrop" and cfg.augment.crop == 44
    assert cfg.center_loss * cfg.batch_size == pytest.approx(0.01, rel=0.1)  # lambda 0.01 on the batch-mean form
    aug = cfg.augment
    assert aug.flip and aug.rotate > 0 and aug.translate > 0 and aug.scale > 0 and aug.degrade_p == 0
    assert (cfg.train_split, cfg.val_split) == ("Training", "PublicTest")
    assert "Liu, Zhang, Xin 2019" in cfg.paper["title"] and "71.608" in cfg.paper["reported"]

    faces = make_faceset(48, size=48)
    run_cfg = load_config("dsxception_fer2013", epochs=1, limit_train=32, batch_size=16, device="cpu", image_size=24, augment={"crop": 20})
    res = fit(run_cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    row = res.history[0]
    assert math.isfinite(row["train_loss"]) and 0 <= row["val_acc"] <= 1  # validated with ten-crop TTA
    assert (tmp_path / "run" / "last.safetensors").exists()
