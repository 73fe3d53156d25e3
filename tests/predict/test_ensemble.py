"""Ensembles of checkpoints: probability averaging and feature fusion (Liu, Zhang & Xin 2019)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import model_spec, save_checkpoint
from lrfer.predict.classifier import FaceClassifier
from lrfer.predict.ensemble import FeatureFusionEnsemble, ProbabilityEnsemble, member_embeddings
from lrfer.train.fusion import fit_fusion
from tests.conftest import make_faceset

CLASSES = ("angry", "happy", "neutral")


def tiny_checkpoint(path: Path, name: str, classes=CLASSES, in_chans: int = 1, image_size: int = 24, crop: int = 0, seed: int = 0, **kwargs) -> Path:
    torch.manual_seed(seed)
    model = create_model(name, num_classes=len(classes), in_chans=in_chans, **kwargs)
    save_checkpoint(path, model, model_spec(model, classes, in_chans, image_size, crop))
    return path


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    d = tmp_path_factory.mktemp("members")
    # a grey position-aware CNN at 24 px, and an RGB ResNet at 32 px that sees a centre crop of 28
    a = tiny_checkpoint(d / "a.safetensors", "cnn2x2", depth=2, widths=(4, 8), fc=32, fc_layers=1, input_size=24, seed=1)
    b = tiny_checkpoint(d / "b.safetensors", "resnet18_fer_slim", in_chans=3, image_size=32, crop=28, width=8, blocks=(1, 1), seed=2)
    return a, b


def test_probability_average_equals_mean_of_members(members):
    faces = make_faceset(20, size=48)
    ens = ProbabilityEnsemble(members)
    a, b = (FaceClassifier.load(p, device="cpu") for p in members)
    p = ens.predict_proba(faces.images)
    assert p.shape == (20, 3) and ens.classes == CLASSES
    assert torch.allclose(p, (a.predict_proba(faces.images) + b.predict_proba(faces.images)) / 2, atol=1e-6)
    assert torch.allclose(p.sum(1), torch.ones(20), atol=1e-5)
    weighted = ProbabilityEnsemble([a, b], weights=[3, 1]).predict_proba(faces.images, tta="flip")
    assert torch.allclose(weighted, 0.75 * a.predict_proba(faces.images, tta="flip") + 0.25 * b.predict_proba(faces.images, tta="flip"), atol=1e-6)
    # colour faces: the grey member gets their luma (its own preprocessing), the RGB member the colours
    rgb = torch.cat([faces.images, faces.images // 2, faces.images // 3], 1)
    luma = (rgb.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True).round().to(torch.uint8)
    assert torch.allclose(ens.predict_proba(rgb), (a.predict_proba(luma) + b.predict_proba(rgb)) / 2, atol=1e-6)
    with pytest.raises(LrferError, match="weights"):
        ProbabilityEnsemble([a, b], weights=[1.0])


def test_members_with_other_class_order_are_aligned(tmp_path, members):
    order = ("neutral", "angry", "happy")
    c = tiny_checkpoint(tmp_path / "c.safetensors", "cnn2x2", classes=order, depth=2, widths=(4, 8), fc=32, fc_layers=1, input_size=24, seed=3)
    faces = make_faceset(12, size=24)
    a, cc = FaceClassifier.load(members[0], device="cpu"), FaceClassifier.load(c, device="cpu")
    p = ProbabilityEnsemble([a, cc]).predict_proba(faces.images)
    pc = cc.predict_proba(faces.images)[:, [order.index(k) for k in CLASSES]]
    assert torch.allclose(p, (a.predict_proba(faces.images) + pc) / 2, atol=1e-6)


def test_mismatched_classes_raise(tmp_path, members):
    other = tiny_checkpoint(tmp_path / "o.safetensors", "cnn2x2", classes=("angry", "happy", "sad"), depth=2, widths=(4, 8), fc=32, fc_layers=1, input_size=24)
    for cls in (ProbabilityEnsemble, FeatureFusionEnsemble):
        with pytest.raises(LrferError, match="disagree on the classes"):
            cls([members[0], other])


def test_member_embeddings_are_the_pre_logits(members):
    faces = make_faceset(6, size=48)
    b = FaceClassifier.load(members[1], device="cpu")
    emb = member_embeddings(b, faces.images)
    x = torch.nn.functional.interpolate(faces.images.float() / 255, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    x = x[..., 2:30, 2:30].expand(-1, 3, -1, -1)  # centre 28 crop, grey -> RGB
    with torch.no_grad():
        want = b.model.forward_head(b.model.forward_features(b.model.normalize(x)), pre_logits=True)
    assert emb.shape == (6, b.model.num_features) and torch.allclose(emb, want, atol=1e-5)
    assert torch.allclose(b.model.classifier(emb).softmax(-1), b.predict_proba(faces.images), atol=1e-5)


def test_feature_fusion_learns_and_round_trips(tmp_path, members):
    faces = make_faceset(240, size=48, seed=4)
    train, test = faces.select_split("Training"), faces.select_split("PublicTest")
    ens = FeatureFusionEnsemble(members)
    assert ens.num_features == 32 + 16
    with pytest.raises(LrferError, match="not trained"):
        ens.predict_proba(test.images)
    history = fit_fusion(ens, train, epochs=20, lr=1e-2, batch_size=64)  # no model selection on the test faces
    assert len(history) == 20 and history[-1]["train_acc"] > 0.9
    p = ens.predict_proba(test.images)
    acc = float((p.argmax(1) == test.labels).float().mean())
    assert acc > 0.9, acc
    path = ens.save(tmp_path / "fusion" / "head.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["lrfer_fusion"])
    assert meta["members"] == [str(Path(m).resolve()) for m in members] and meta["classes"] == list(CLASSES) and meta["dims"] == [32, 16]
    again = FeatureFusionEnsemble.load(path, device="cpu")
    assert torch.allclose(again.predict_proba(test.images), p, atol=1e-6)


def test_fit_fusion_repeats_keeps_the_best_validation_head_and_leaves_the_callers_rng_alone(members):
    faces = make_faceset(90, size=48, seed=6)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    heads, histories = [], []
    for _ in range(2):
        ens = FeatureFusionEnsemble(members, hidden=8, dropout=0.3)
        torch.manual_seed(123)
        before = torch.get_rng_state()
        histories.append(fit_fusion(ens, train, val, epochs=4, lr=1e-2, seed=1))
        assert torch.equal(torch.get_rng_state(), before)  # the fit seeds its own draws
        heads.append(ens)
    a, b = heads
    assert histories[0] == histories[1] and len(histories[0]) == 4  # dropout and order seeded by (seed, epoch)
    assert all(torch.equal(t, b.head.state_dict()[k]) for k, t in a.head.state_dict().items())
    kept = float((a.predict_proba(val.with_classes(a.classes).images).argmax(1) == val.with_classes(a.classes).labels).float().mean())
    assert kept == pytest.approx(max(r["val_acc"] for r in histories[0]))


def test_feature_fusion_mlp_head_and_bad_file(tmp_path, members):
    faces = make_faceset(60, size=48, seed=5)
    ens = FeatureFusionEnsemble(members, hidden=16, dropout=0.1)
    fit_fusion(ens, faces, epochs=3)
    assert ens.predict_proba(faces.images).shape == (60, 3)
    path = ens.save(tmp_path / "mlp.safetensors")
    assert FeatureFusionEnsemble.load(path).hidden == 16
    with pytest.raises(LrferError, match="no such fusion head file"):
        FeatureFusionEnsemble.load(tmp_path / "nope.safetensors")
    with pytest.raises(LrferError, match="not a fusion head"):
        FeatureFusionEnsemble.load(members[0])  # a checkpoint, not a fusion head
