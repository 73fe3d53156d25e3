"""Fine-tuning from a trained lrfer model (``init_weights`` = a checkpoint, or "default"): the
features come from the checkpoint (its EMA weights when it has them), its classifier only when the
class names are the same, and "default" names the shipped model."""

from __future__ import annotations

import pytest
import torch

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.models.init_weights import load_init_weights
from lrfer.predict.classifier import DEFAULT_CHECKPOINT
from lrfer.train.config import load_config
from lrfer.train.engine import fit
from tests.conftest import make_faceset
from tests.train.test_engine import tiny_config

FER = ("angry", "happy", "neutral")
CK = ("angry", "contempt", "happy")  # the same count, other classes


def tiny(classes, seed: int):
    torch.manual_seed(seed)
    return create_model("resnet18_fer_slim", num_classes=len(classes), in_chans=1, width=8, blocks=[1, 1])


def saved_with_ema(path, classes=FER):
    """A checkpoint whose EMA weights differ from its model weights, so a test can tell which was read."""
    model, ema = tiny(classes, 1), tiny(classes, 2)
    save_checkpoint(path, model, model_spec(model, classes, 1, 24, 20), ema=ema)
    return path, ema


def test_lrfer_checkpoint_same_classes_loads_everything_from_the_ema(tmp_path):
    path, ema = saved_with_ema(tmp_path / "fer.safetensors")
    dst = tiny(FER, 3)
    rep = load_init_weights(dst, path, classes=FER)
    assert not rep["skipped"] and not rep["missing"]
    for k, v in ema.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k


def test_lrfer_checkpoint_other_classes_keeps_the_new_classifier(tmp_path):
    path, ema = saved_with_ema(tmp_path / "fer.safetensors")
    dst = tiny(CK, 3)
    fresh = {k: v.clone() for k, v in dst.state_dict().items()}
    rep = load_init_weights(dst, path, classes=CK)
    # same shape, other meaning: the classifier is not taken
    assert set(rep["skipped"]) == {"classifier.weight", "classifier.bias"}
    assert all("other classes" in r and "contempt" in r for r in rep["skipped"].values())
    assert set(rep["missing"]) == {"classifier.weight", "classifier.bias"}
    for k, v in dst.state_dict().items():
        want = fresh[k] if k.startswith("classifier.") else ema.state_dict()[k]
        assert torch.equal(v, want), k


def test_init_weights_default_names_the_shipped_model(tmp_path):
    cfg = load_config("fer2013_multires", init_weights="default").validate()
    assert cfg.init_weights_path == str(DEFAULT_CHECKPOINT)
    with pytest.raises(LrferError, match="no such file"):
        load_config("fer2013_multires", init_weights=str(tmp_path / "missing.safetensors")).validate()


def test_fit_starts_from_the_checkpoint(tmp_path):
    """With a zero learning rate the trained convolutions are exactly the checkpoint's: fit loaded
    them (and only the classifier of the other classes was left to its initialisation)."""
    teacher, ema = saved_with_ema(tmp_path / "fer.safetensors")
    spec = load_checkpoint(teacher).spec
    cfg, _ = tiny_config(tmp_path, epochs=1, init_weights=str(teacher), lr=0.0, ema_decay=0.0,
                         model_kwargs=dict(spec["kwargs"].items()))  # fmt: skip
    faces = make_faceset(48, classes=CK, size=24)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    tuned = load_checkpoint(res.last_path).weights("model")
    convs = [k for k, v in ema.state_dict().items() if v.ndim == 4]  # batch-norm statistics move even at lr 0
    assert len(convs) >= 4
    for k in convs:
        assert torch.equal(tuned[k], ema.state_dict()[k]), k
    assert not torch.equal(tuned["classifier.weight"], ema.state_dict()["classifier.weight"])


def test_freeze_keeps_the_named_layers_and_trains_the_rest(tmp_path):
    path, ema = saved_with_ema(tmp_path / "fer.safetensors")
    spec = load_checkpoint(path).spec
    cfg, _ = tiny_config(tmp_path, epochs=1, init_weights=str(path), ema_decay=0.0, freeze=["stem", "stages.0"],
                         model_kwargs=dict(spec["kwargs"]))  # fmt: skip
    faces = make_faceset(48, classes=CK, size=24)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    tuned, start = load_checkpoint(res.last_path).weights("model"), ema.state_dict()
    params = dict(tiny(CK, 0).named_parameters())  # parameters only: batch-norm statistics move anyway
    frozen = [k for k in params if k.startswith(("stem.", "stages.0."))]
    trained = [k for k in params if k.startswith("stages.1.") and k.endswith("conv1.weight")]
    assert frozen and trained
    assert all(torch.equal(tuned[k], start[k]) for k in frozen)
    assert all(not torch.equal(tuned[k], start[k]) for k in trained)


def test_freeze_of_a_name_the_model_lacks_is_an_error(tmp_path):
    cfg, _ = tiny_config(tmp_path, epochs=1, freeze=["stages.9"])
    faces = make_faceset(16, size=24)
    with pytest.raises(LrferError, match="freeze: no parameter .* under 'stages.9'"):
        fit(cfg, faces.select_split("Training"), None, tmp_path / "run")
