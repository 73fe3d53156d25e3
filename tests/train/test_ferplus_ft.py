"""Fine-tuning the shipped model on FER2013 labels blended with FERPlus votes (issue 27), and the
class shares a model so trained learnt (what a deployment prior must divide by)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lrfer.data.labels import CANONICAL
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects, image_digests
from lrfer.errors import LrferError
from lrfer.models.checkpoint import load_checkpoint
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier
from lrfer.train.config import load_config
from lrfer.train.engine import _prepare_data, fit
from lrfer.train.prior import extra_train_path, target_shares, training_prior
from tests.conftest import CKPLUS_NPZ, make_faceset

FER7 = CANONICAL[:7]


def with_votes(faces, seed: int = 0):
    """``faces`` with made-up vote distributions that lean to neutral, as FERPlus's do on FER2013."""
    g = torch.Generator().manual_seed(seed)
    votes = torch.rand(len(faces), faces.num_classes, generator=g)
    votes[:, faces.classes.index("neutral")] += 2.0
    return dataclasses.replace(faces, soft_labels=votes / votes.sum(1, keepdim=True))


def test_recipe_fine_tunes_the_shipped_network_with_votes_blended_in():
    cfg = load_config("fer2013_ferplus_ft").validate()
    assert cfg.init_weights_path == str(DEFAULT_CHECKPOINT)
    shipped = load_checkpoint(DEFAULT_CHECKPOINT).spec
    assert cfg.model == shipped["name"] and cfg.model_kwargs.items() <= shipped["kwargs"].items()
    assert 0 < cfg.soft_label_weight < 1 and cfg.label_mode == "hard"  # a blend: FER2013's label keeps a share
    assert cfg.augment.degrade_p > 0 and cfg.augment.degrade_min <= 8  # the default's small-face training stays on
    assert cfg.lr <= 0.01 and cfg.epochs <= 5  # adapted, not relearnt: CPU-sized


def test_recipe_trains_a_few_steps_from_the_shipped_weights(tmp_path):
    faces = with_votes(make_faceset(32, classes=FER7))
    cfg = load_config("fer2013_ferplus_ft", epochs=1, limit_train=16, batch_size=8, eval_batch_size=32, device="cpu")
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "ft")
    assert len(res.history) == 1 and math.isfinite(res.history[0]["train_loss"])
    tuned = load_checkpoint(res.last_path).weights("model")
    shipped = FaceClassifier.load(None).model.state_dict()
    assert set(tuned) == set(shipped)  # every tensor of the shipped model, classifier included
    assert not torch.equal(tuned["stem.0.weight"], shipped["stem.0.weight"])  # and every layer trains


def test_target_shares_are_the_labels_counts_or_the_blended_targets_mean():
    faces = with_votes(make_faceset(30, classes=("angry", "happy", "neutral")))
    hard = target_shares(faces, {"label_mode": "hard"})
    assert np.allclose(hard, np.bincount(faces.labels.numpy()) / len(faces))
    w = 0.3
    blended = target_shares(faces, {"soft_label_weight": w})
    onehot = torch.nn.functional.one_hot(faces.labels, 3).double()
    expect = ((1 - w) * onehot + w * faces.soft_labels.double()).mean(0).numpy()
    assert np.allclose(blended, expect) and blended[2] > hard[2]  # the votes move the shares to neutral
    assert np.allclose(target_shares(faces, load_config("fer2013_ferplus_ft", soft_label_weight=w)), expect)
    assert np.allclose(target_shares(faces, {"label_mode": "soft"}), faces.soft_labels.double().mean(0).numpy())


def test_training_prior_of_a_checkpoint_reads_its_config(tmp_path):
    """`lrfer calibrate --train-split` and tools/default_trust.py store these shares: a model trained
    on blended targets gets the targets' shares, with the label counts named as the source."""
    faces = with_votes(make_faceset(32, classes=("angry", "happy", "neutral"), size=24))
    cfg = load_config("fer2013_ferplus_ft", init_weights="", model_kwargs={"width": 8, "blocks": [1, 1], "zero_init_residual": False},
                      image_size=24, augment={"crop": 20, "degrade_max": 24}, epochs=1, batch_size=8, device="cpu", val_split="none")
    res = fit(cfg, faces.select_split("Training"), None, tmp_path / "run")
    clf = FaceClassifier.load(res.last_path)
    rec = training_prior(clf, faces, "Training")
    train = faces.select_split("Training")
    expect = target_shares(train, cfg)
    assert np.allclose([rec["shares"][c] for c in clf.classes], expect, atol=1e-5)
    assert "angry 6" in rec["source"] and "soft labels included" in rec["source"]
    with pytest.raises(Exception, match="no such split"):
        training_prior(clf, faces, "Validation")


def test_extra_train_mixes_in_the_training_subjects_only(tmp_path):
    """CK+ mixed into FER2013-style training: its held-out subjects never reach a batch, its faces
    come `extra_train_repeat` times, and the recipe trains a few steps with them."""
    if not CKPLUS_NPZ.is_file():
        pytest.skip(f"{CKPLUS_NPZ} not available")
    faces = with_votes(make_faceset(32, classes=FER7))
    cfg = load_config("fer2013_ferplus_ft", epochs=1, limit_train=16, batch_size=32, eval_batch_size=32, device="cpu",
                      extra_train=str(CKPLUS_NPZ), extra_train_repeat=2)  # fmt: skip
    train, _, _, _ = _prepare_data(cfg.validate(), faces.select_split("Training"), None, torch.device("cpu"), None)
    ck = load_dataset(CKPLUS_NPZ)
    trained, held = held_out_subjects(ck, 2)
    n = train.meta["mixed_in"]["faces"]
    assert len(train) == 16 + 2 * n and n == int((trained.labels != ck.classes.index("contempt")).sum())
    mixed = set(image_digests(train.images[16:]))
    assert len(mixed) > 0.9 * n and not mixed & set(image_digests(held.images))  # no held-out face is trained on
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "ck")
    assert math.isfinite(res.history[0]["train_loss"])


@pytest.mark.parametrize("setting, match", [({"extra_train": "nowhere.npz"}, "no such file"),
                                            ({"extra_train_repeat": 0}, "extra_train_repeat is 0"),
                                            ({"extra_train_holdout": 1}, "extra_train_holdout is 1")])  # fmt: skip
def test_extra_train_settings_are_checked(tmp_path, setting, match):
    (tmp_path / "ck.npz").write_bytes(b"")
    cfg = load_config("fer2013_ferplus_ft", **{"extra_train": str(tmp_path / "ck.npz"), **setting})
    with pytest.raises(Exception, match=match):
        cfg.validate()


def test_training_prior_counts_the_faces_mixed_in(tmp_path):
    """A model trained with CK+ mixed in learnt CK+'s shares too: the stored training prior says so."""
    if not CKPLUS_NPZ.is_file():
        pytest.skip(f"{CKPLUS_NPZ} not available")
    faces = with_votes(make_faceset(32, classes=FER7, size=24))
    cfg = load_config("fer2013_ferplus_ft", init_weights="", model_kwargs={"width": 8, "blocks": [1, 1], "zero_init_residual": False},
                      image_size=24, augment={"crop": 20, "degrade_max": 24}, epochs=1, batch_size=64, device="cpu", val_split="none",
                      extra_train=str(CKPLUS_NPZ), extra_train_repeat=3)  # fmt: skip
    res = fit(cfg, faces.select_split("Training"), None, tmp_path / "run")
    clf = FaceClassifier.load(res.last_path)
    rec = training_prior(clf, faces, "Training")
    ck = held_out_subjects(load_dataset(CKPLUS_NPZ), 2)[0]
    n_ck = int((ck.labels != ck.classes.index("contempt")).sum())
    assert f"with {n_ck} faces of {CKPLUS_NPZ.name} (x3)" in rec["source"]
    disgust = int((ck.labels == ck.classes.index("disgust")).sum())
    n_train = len(faces.select_split("Training"))
    # FER-like faces have almost no disgust here; CK+'s 3 x disgust faces give it most of its share
    assert rec["shares"]["disgust"] > 3 * disgust / (n_train + 3 * n_ck) * 0.9


def test_the_set_mixed_in_is_found_beside_the_data_when_its_path_is_gone(tmp_path):
    """A checkpoint keeps the path it trained at (the shipped model's CK+48 is at /work/shared/data);
    on another machine the file of that name beside the data is taken, else one clear line."""
    (tmp_path / "ckplus48.npz").write_bytes(b"")
    data = dataclasses.replace(make_faceset(4, classes=FER7, size=8), meta={"source": {"path": str(tmp_path / "fer2013.npz")}})
    assert extra_train_path("/nowhere/ckplus48.npz", data) == tmp_path / "ckplus48.npz"
    assert extra_train_path(str(tmp_path / "ckplus48.npz"), data) == tmp_path / "ckplus48.npz"
    with pytest.raises(LrferError, match="neither there nor beside"):
        extra_train_path("/nowhere/jaffe.npz", data)
