"""The class shares a trained model learnt, stored with it so that a deployment prior
(:mod:`lrfer.runtime.prior`, docs/trust.md) divides by what the model saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..data.faceset import FaceSet
from ..data.splits import mix_in
from ..errors import LrferError
from ..predict.classifier import FaceClassifier
from ..runtime.prior import prior_record
from .config import TrainConfig
from .engine import extra_training_faces, label_targets


def target_shares(faces: FaceSet, cfg: Any) -> np.ndarray:
    """The class shares a model trained on ``faces`` under ``cfg`` learnt: the mean of its targets.

    ``cfg`` is a TrainConfig or a checkpoint's stored config (``info["config"]``).
    With hard labels these are the class counts' shares; with FERPlus votes blended in, the votes
    move them (towards neutral on FER2013), and a deployment prior (docs/trust.md) must divide by
    these, not by the label counts, or it corrects for a shift the model never had.
    """
    if not isinstance(cfg, TrainConfig):
        cfg = TrainConfig(label_mode=cfg.get("label_mode", "hard"), soft_label_weight=float(cfg.get("soft_label_weight", 0.0)))
    targets = label_targets(faces, cfg)
    if targets.ndim == 1:
        targets = nn.functional.one_hot(targets, faces.num_classes).float()
    shares = targets.double().mean(0).numpy()
    return shares / shares.sum()


def extra_train_path(stored: str, data: FaceSet) -> Path:
    """The set a checkpoint mixed in (``extra_train``) on this machine: the path it trained at, else
    the file of that name beside ``data``'s (the shipped model trained at /work/shared/data; a
    user's CK+48 sits beside their fer2013.npz)."""
    path = Path(stored)
    if path.exists():
        return path
    source = (data.meta.get("source") or {}).get("path")
    beside = Path(source).parent / path.name if source else None
    if beside is not None and beside.exists():
        return beside
    raise LrferError(f"the model mixed {path.name} into its training (extra_train {stored}), and it is neither there nor beside {data.name}",
                     f"put {path.name} beside the data file: the model trained on its faces too")


def training_faces(clf: FaceClassifier, data: FaceSet, split: str) -> tuple[FaceSet, str]:
    """(the faces ``clf`` trained on: ``split`` of ``data``, with the set its stored config mixed in,
    each face as often as an epoch saw it; a line saying so), prepared for ``clf``."""
    if split not in data.splits:
        raise LrferError(f"--train-split {split}: the data has no such split", f"choose one of {', '.join(data.splits)}")
    faces = clf.prepare(data.select_split(split))
    config = clf.checkpoint.info.get("config") or {}
    source = f"{data.name} {split}"
    if config.get("extra_train"):
        extra = TrainConfig(extra_train=str(extra_train_path(config["extra_train"], data)), extra_train_holdout=int(config.get("extra_train_holdout", 2)))
        repeat = int(config.get("extra_train_repeat", 1))
        faces = mix_in(faces, clf.prepare(extra_training_faces(extra.validate())), repeat)
        source += f" with {faces.meta['mixed_in']['faces']} faces of {Path(config['extra_train']).name} (x{repeat})"
    return faces, source


def training_prior(clf: FaceClassifier, data: FaceSet, split: str) -> dict[str, Any]:
    """The class-share record of ``split`` of ``data`` for the classifier ``clf``:
    the shares of the targets its stored config trained on, with the label counts as the source."""
    faces, source = training_faces(clf, data, split)
    config = clf.checkpoint.info.get("config") or {}
    counts = np.bincount(np.asarray(faces.labels), minlength=len(clf.classes))
    if counts.min() == 0:
        raise LrferError(f"--train-split {split} has no faces of {clf.classes[int(counts.argmin())]}", "give the split the model was trained on")
    source += ": " + ", ".join(f"{c} {n}" for c, n in zip(clf.classes, counts))
    if config.get("label_mode") == "soft" or config.get("soft_label_weight"):
        source += " labels; the shares are those of the training targets, soft labels included"
    return prior_record(clf.classes, target_shares(faces, config), source)
