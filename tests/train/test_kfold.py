"""Subject-independent k-fold cross-validation: every face tested once, no subject on both sides, restartable."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import model_spec, save_checkpoint
from lrfer.train.config import with_front_end
from lrfer.train.kfold import cross_validate
from tests.conftest import make_faceset
from tests.train.test_engine import tiny_config


def grouped_faces(n: int = 120, subjects: int = 12):
    faces = make_faceset(n, size=48)
    faces.groups = np.array([f"S{(i // 3) % subjects:03d}" for i in range(n)])  # every subject shows every class
    return faces


def test_three_folds_test_every_face_once_and_learn(tmp_path):
    cfg, _ = tiny_config(tmp_path, epochs=5)
    faces = grouped_faces(192)
    s = cross_validate(cfg, faces, tmp_path / "cv", k=3)
    assert s["folds_done"] == 3 and sum(r["n_test"] for r in s["folds"]) == len(faces)
    tested = [subj for r in s["folds"] for subj in r["test_subjects"]]
    assert len(tested) == len(set(tested)) == 12  # each subject held out exactly once
    assert s["accuracy_pooled"] > 0.6  # 3 synthetic classes, chance 0.33
    on_disk = json.loads((tmp_path / "cv" / "kfold.json").read_text())
    assert on_disk["accuracy_pooled"] == s["accuracy_pooled"]


def test_finished_folds_are_not_run_again(tmp_path):
    cfg, _ = tiny_config(tmp_path, epochs=1)
    faces = grouped_faces()
    cross_validate(cfg, faces, tmp_path / "cv", k=3, folds=[0])
    mtime = (tmp_path / "cv" / "fold_00" / "last.safetensors").stat().st_mtime_ns
    s = cross_validate(cfg, faces, tmp_path / "cv", k=3, folds=[0, 1])
    assert (tmp_path / "cv" / "fold_00" / "last.safetensors").stat().st_mtime_ns == mtime
    assert [r["fold"] for r in s["folds"]] == [0, 1]
    with pytest.raises(LrferError, match="out of range"):
        cross_validate(cfg, faces, tmp_path / "cv", k=3, folds=[3])


def test_front_end_wraps_the_recipe_model(tmp_path):
    cfg, _ = tiny_config(tmp_path)
    wrapped = with_front_end(cfg, stn=True)
    assert wrapped.model == "fronted"
    assert wrapped.model_kwargs == {"classifier": cfg.model, "classifier_kwargs": cfg.model_kwargs, "stn": True, "sr_trainable": False}
    assert with_front_end(cfg) is cfg
    with pytest.raises(LrferError, match="already has a front end"):
        with_front_end(wrapped, stn=True)


def test_folds_refuse_weights_that_trained_on_part_of_the_set(tmp_path):
    """The shipped model saw half of CK+48's subjects (extra_train): folds started from it would
    score faces it learnt, so cross_validate refuses, in one line, before any training."""
    faces = grouped_faces(48)
    source = tmp_path / "ck.npz"
    faces.meta = {"source": {"format": "npz", "path": str(source), "options": {}}}
    cfg, _ = tiny_config(tmp_path)
    model = create_model(cfg.model, num_classes=faces.num_classes, in_chans=1, **cfg.model_kwargs)
    saw = save_checkpoint(tmp_path / "saw.safetensors", model, model_spec(model, faces.classes, 1, 48), info={"config": {"extra_train": str(source)}})
    other = save_checkpoint(tmp_path / "other.safetensors", model, model_spec(model, faces.classes, 1, 48), info={"config": {"extra_train": str(tmp_path / "x.npz")}})
    with pytest.raises(LrferError, match="trained with part of ck.npz mixed in") as err:
        cross_validate(dataclasses.replace(cfg, init_weights=str(saw)), faces, tmp_path / "cv", k=2)
    assert "never saw this set" in str(err.value.args)
    assert not (tmp_path / "cv").exists()
    s = cross_validate(dataclasses.replace(cfg, init_weights=str(other), epochs=1), faces, tmp_path / "cv2", k=2, folds=[0])
    assert s["folds_done"] == 1
