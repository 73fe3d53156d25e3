"""The 30-minute CPU recipe (issue 5): its settings, a short run, and a sweep in the faces' pixels."""

from __future__ import annotations

import pytest
import torch

from lrfer.evaluate.sweep import resolution_sweep
from lrfer.models._registry import create_model
from lrfer.models.resnet_fer import BasicBlock
from lrfer.predict.classifier import FaceClassifier
from lrfer.train.config import load_config
from lrfer.train.engine import fit
from tests.conftest import make_faceset


def test_recipe_settings():
    cfg = load_config("fer2013_cpu30").validate()
    assert cfg.image_size == 32 and cfg.augment.degrade_max == 32 and cfg.augment.degrade_p > 0
    assert cfg.tta == "flip" and cfg.val_every >= cfg.epochs  # validated after the last epoch only
    model = create_model(cfg.model, 7, 1, **cfg.model_kwargs)
    assert 0.6e6 < sum(p.numel() for p in model.parameters()) < 0.8e6
    assert model.input_norm == "per_image"
    # blocks are not zero-initialised: the short schedule cannot wait for them to wake up
    assert all(bool((m.bn2.weight == 1).all()) for m in model.modules() if isinstance(m, BasicBlock))
    default = create_model(cfg.model, 7, 1, width=16)
    assert all(bool((m.bn2.weight == 0).all()) for m in default.modules() if isinstance(m, BasicBlock))


def test_short_run_trains_at_32px_and_sweeps_from_48px(tmp_path):
    cfg = load_config("fer2013_cpu30", epochs=2, batch_size=16, val_every=5, device="cpu")
    faces = make_faceset(96)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert ["val_acc" in r for r in res.history] == [False, True]  # only the last epoch validated
    clf = FaceClassifier.load(str(res.best_path), device="cpu")
    assert clf.image_size == 32
    test = faces.select_split("PublicTest")
    rows = resolution_sweep(clf.model, test, (8, 16, 32, 48), input_size=clf.image_size)
    assert [r["size"] for r in rows] == [8, 16, 32, 48]
    by = {r["size"]: r["accuracy"] for r in rows}
    assert by[48] == by[32]  # both are the 48 px faces resized to the model's 32 px input
    direct = clf.predict_proba(test.images).argmax(1)
    assert by[48] == pytest.approx((direct == test.labels).float().mean().item())
    assert torch.isfinite(torch.tensor(list(by.values()))).all()


def test_airnet_variant_differs_only_in_network_and_clock(tmp_path):
    base, air = load_config("fer2013_cpu30").validate(), load_config("fer2013_cpu30_airnet").validate()
    assert air.model == "airnet_fer" and 0 < air.time_budget_minutes < 30
    # a fair comparison: same faces, augmentation, optimiser and test-time augmentation
    assert air.augment == base.augment
    # (label smoothing differs: 0.2 was measured on the airnet recipe only)
    for field in ("image_size", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "tta"):
        assert getattr(air, field) == getattr(base, field), field
    cfg = load_config("fer2013_cpu30_airnet", epochs=1, batch_size=16, device="cpu")
    faces = make_faceset(64)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert "val_acc" in res.history[-1] and FaceClassifier.load(str(res.best_path), device="cpu").image_size == 32


def test_airnet_kd_variant_adds_offline_distillation_on_the_same_clock():
    air, kd = load_config("fer2013_cpu30_airnet").validate(), load_config("fer2013_cpu30_airnet_kd").validate()
    assert kd.teacher == "default" and kd.distill_offline and kd.distill_weight > 0
    # the teacher's pass is on the budget's clock (the engine counts it), so the budget is the same
    assert kd.time_budget_minutes == air.time_budget_minutes > 0
    # fewer degraded faces: distillation holds the low sizes up, so the 48 px ones get more
    assert 0 < kd.augment.degrade_p < air.augment.degrade_p
    # label smoothing: the distillation runs kept the airnet recipe's earlier 0.1
    may_differ = {"teacher", "distill_offline", "distill_weight", "distill_temperature", "augment", "label_smoothing", "recipe", "paper"}
    a, k = air.to_dict(), kd.to_dict()
    assert {key for key in a if a[key] != k[key]} <= may_differ
    assert {key for key in a["augment"] if a["augment"][key] != k["augment"][key]} == {"degrade_p"}


def test_gpu5_recipe_is_clocked_compiled_and_trains_small(tmp_path):
    cfg = load_config("fer2013_gpu5").validate()
    assert 0 < cfg.time_budget_minutes < 5 and cfg.compile and cfg.amp and cfg.channels_last
    # at small scale on the CPU: the recipe as it is, without the compiler (a GPU-side speed-up)
    small = load_config("fer2013_gpu5", epochs=1, batch_size=16, compile=False, device="cpu", time_budget_minutes=0)
    faces = make_faceset(48)
    res = fit(small, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert "val_acc" in res.history[-1] and FaceClassifier.load(str(res.best_path), device="cpu").image_size == 48
