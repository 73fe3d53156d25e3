"""Train/test splits that do not leak: official splits, subject k-fold, duplicate removal, regrouping.

Small face datasets (CK+, JAFFE) have several near-identical frames per subject, and FER2013 repeats
568 training images in its test splits: a random split of such data measures memory, not
recognition. These helpers make the honest split the easy one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import LrferError
from .faceset import FaceSet
from .labels import BINARY_POSITIVE, canonical_name

#: Split names tried, in order, when :func:`official_split` is not told which to use.
TRAIN_SPLIT_NAMES: tuple[str, ...] = ("Training", "train", "Train", "training")
TEST_SPLIT_NAMES: tuple[str, ...] = ("PublicTest", "test", "Test", "Validation", "validation", "val", "Val")

#: Class names of :func:`binary_regroup` (not canonical: the set is derived, see there).
BINARY_CLASSES: tuple[str, str] = ("non_positive", "positive")


# ====================================================================== duplicates
def image_digests(images: torch.Tensor) -> np.ndarray:
    """One 128-bit BLAKE2 digest per image (its shape included), to compare images across sets cheaply."""
    arr = images.contiguous().numpy()
    base = hashlib.blake2b(repr(tuple(arr.shape[1:])).encode(), digest_size=16)
    out = []
    for row in arr.reshape(len(arr), int(np.prod(arr.shape[1:]))):
        h = base.copy()
        h.update(row)
        out.append(h.digest())
    return np.array(out, dtype="S16")


def duplicate_groups(images: torch.Tensor) -> np.ndarray:
    """Exact-duplicate group id per image: rows with identical pixels share an id, unique rows get -1.

    Ids are numbered 0, 1, ... in order of the group's first row, so that the numbering depends only
    on the images and their order (two loads of one file agree). The readers fill every FaceSet's
    ``dup_group`` with it where the dataset has no duplicate ids of its own.
    """
    n = len(images)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    digests = image_digests(images)
    _, first, inverse, counts = np.unique(digests, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    group_id = np.full(len(counts), -1, dtype=np.int64)
    repeated = np.flatnonzero(counts > 1)
    repeated = repeated[np.argsort(first[repeated], kind="stable")]
    group_id[repeated] = np.arange(len(repeated), dtype=np.int64)
    return group_id[inverse]


def _pick_split(faceset: FaceSet, name: Optional[str], candidates: Sequence[str], role: str) -> str:
    if name is not None:
        return name
    for c in candidates:
        if c in faceset.splits:
            return c
    raise LrferError(
        f"{faceset.name} has no known {role} split (it has {', '.join(faceset.splits)})",
        f"name it: {role}='<split>'; sets without splits (CK+, JAFFE) need subject_kfold instead",
    )


def official_split(
    faceset: FaceSet, train: Optional[str] = None, test: Optional[str] = None
) -> tuple[FaceSet, FaceSet]:
    """The dataset's own train and test parts.

    Without names, the first present of :data:`TRAIN_SPLIT_NAMES` / :data:`TEST_SPLIT_NAMES` is used
    (FER2013: Training / PublicTest, since PrivateTest is kept for the final check; RAF-DB: train /
    test; SFEW, Aff-Wild2: Train / Val(idation)). An unknown name is an LrferError listing the splits.
    """
    train = _pick_split(faceset, train, TRAIN_SPLIT_NAMES, "train")
    test = _pick_split(faceset, test, TEST_SPLIT_NAMES, "test")
    if train == test:
        raise LrferError(f"train and test are both split '{train}'", "name two different splits")
    return faceset.select_split(train), faceset.select_split(test)


def subject_kfold(faceset: FaceSet, k: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds of (train_idx, test_idx) row indices, never splitting a group (subject, video).

    Subjects are shuffled with ``seed`` (so that equal-sized subjects are not always dealt in name
    order), then dealt largest first to the currently smallest fold, so fold sizes differ by at most
    the largest subject. Every row is in exactly one test fold. Indices are sorted int64.
    """
    if faceset.groups is None:
        raise LrferError(
            f"{faceset.name} has no subject groups, so subject-independent folds cannot be made",
            "use a dataset with subject ids (CK+, JAFFE, Aff-Wild2 videos) or an official split",
        )
    if k < 2:
        raise LrferError(f"k={k} folds", "use k >= 2 (10 is the usual choice for CK+)")
    subjects, inverse, sizes = np.unique(faceset.groups, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    if len(subjects) < k:
        raise LrferError(
            f"{faceset.name} has {len(subjects)} subjects, fewer than k={k} folds",
            f"use k <= {len(subjects)}",
        )
    order = np.random.default_rng(seed).permutation(len(subjects))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_subject = np.empty(len(subjects), dtype=np.int64)
    fold_sizes = np.zeros(k, dtype=np.int64)
    for s in order:
        f = int(np.argmin(fold_sizes))
        fold_of_subject[s] = f
        fold_sizes[f] += sizes[s]
    fold_of_row = fold_of_subject[inverse]
    rows = np.arange(len(faceset), dtype=np.int64)
    return [(rows[fold_of_row != f], rows[fold_of_row == f]) for f in range(k)]


def _same_source(a: FaceSet, b: FaceSet) -> bool:
    """Both sets carry one duplicate numbering: the same file read by the same reader and options."""
    source = a.meta.get("source")
    return source is not None and source == b.meta.get("source") and a.dup_group is not None and b.dup_group is not None


def exclude_duplicates(train_set: FaceSet, test_set: FaceSet) -> FaceSet:
    """``test_set`` without the rows whose image also appears in ``train_set``.

    Uses the ``dup_group`` ids when both sets were cut from one loaded dataset (they then share one
    numbering, which also covers duplicates outside the loaded rows, e.g. FER2013's PrivateTest);
    otherwise compares pixel hashes, which needs equal image shapes (different shapes: nothing is
    a duplicate). The number removed is in ``meta["excluded_duplicates"]``.
    """
    if _same_source(train_set, test_set):
        seen = np.unique(train_set.dup_group[train_set.dup_group >= 0])
        leaked = (test_set.dup_group >= 0) & np.isin(test_set.dup_group, seen)
    elif train_set.images.shape[1:] != test_set.images.shape[1:] or len(train_set) == 0:
        leaked = np.zeros(len(test_set), dtype=bool)
    else:
        leaked = np.isin(image_digests(test_set.images), image_digests(train_set.images))
    out = test_set.subset(~leaked)
    out.meta = {**out.meta, "excluded_duplicates": int(leaked.sum())}
    return out


def dedup_within(faceset: FaceSet, drop_conflicts: bool = False) -> FaceSet:
    """One row per exact-duplicate group (the first), so repeats do not weigh twice in training.

    With ``drop_conflicts=True``, groups whose copies carry different labels are dropped entirely
    (FER2013 has 57 such groups: no label for them can be trusted). Uses ``dup_group`` if present,
    else pixel hashes. ``meta["dedup_removed"]`` counts the rows removed.
    """
    groups = faceset.dup_group if faceset.dup_group is not None else duplicate_groups(faceset.images)
    keep = groups < 0
    in_group = np.flatnonzero(~keep)
    if len(in_group):
        _, first = np.unique(groups[in_group], return_index=True)
        keep[in_group[first]] = True
        if drop_conflicts:
            labels = faceset.labels.numpy()[in_group]
            pairs = np.unique(np.stack([groups[in_group], labels], 1), axis=0)
            ids, per_group = np.unique(pairs[:, 0], return_counts=True)
            conflicting = ids[per_group > 1]
            keep[in_group[np.isin(groups[in_group], conflicting)]] = False
    out = faceset.subset(keep)
    out.meta = {**out.meta, "dedup_removed": int((~keep).sum())}
    return out


def binary_regroup(faceset: FaceSet, positive: Sequence[str] = BINARY_POSITIVE) -> FaceSet:
    """Two classes, ``("non_positive", "positive")``: the ``positive`` expressions against all others.

    The class names are deliberately not canonical: this is a derived task (e.g. "is this person
    well?" with happy + surprise as positive) and must not be confused with a real expression when
    models or results are compared by class name. Soft labels are summed into the two classes.
    """
    wanted = {canonical_name(p) for p in positive}
    present = [c for c in faceset.classes if c in wanted]
    if not present:
        raise LrferError(
            f"none of the positive classes {', '.join(sorted(wanted))} is in {faceset.name} "
            f"({', '.join(faceset.classes)})",
            "choose positive classes the dataset has",
        )
    is_positive = torch.tensor([c in wanted for c in faceset.classes])
    labels = is_positive[faceset.labels].to(torch.int64)
    soft = None
    if faceset.soft_labels is not None:
        pos = faceset.soft_labels[:, is_positive].sum(1)
        soft = torch.stack([faceset.soft_labels.sum(1) - pos, pos], 1)
    return replace(
        faceset,
        labels=labels,
        classes=BINARY_CLASSES,
        soft_labels=soft,
        meta={**faceset.meta, "binary_positive": present},
    )


# ====================================================================== mixing sets
def held_out_subjects(faceset: FaceSet, folds: int = 2) -> tuple[FaceSet, FaceSet]:
    """(faces to train on, faces held out): fold 0 of :func:`subject_kfold` with ``k = folds`` and
    seed 0 is held out, whole subjects at a time.

    The split is fixed (seed 0, not a run's seed), so that an evaluation finds the very subjects a
    model mixing this set into its training never saw. ``folds = 0`` holds nothing out."""
    if folds == 0:
        return faceset, faceset.subset(np.zeros(len(faceset), dtype=bool))
    train_idx, test_idx = subject_kfold(faceset, folds, seed=0)[0]
    return faceset.subset(train_idx), faceset.subset(test_idx)


def mixed_into(config: dict, faces: FaceSet) -> bool:
    """Whether a training config (a checkpoint's stored ``info["config"]``) mixed the file
    ``faces`` were read from into its training (``extra_train``).

    The same path, or the same file name: a checkpoint keeps the path of the machine it trained on
    (the shipped model's is ``/work/shared/data/ckplus48.npz``), and a user's copy of the set lives
    elsewhere under the name it is published with. A false match only narrows the score to the
    held-out subjects, with a note; a missed one would score faces the model trained on."""
    extra, source = config.get("extra_train"), (faces.meta.get("source") or {}).get("path")
    if not (extra and source):
        return False
    return Path(extra).name == Path(source).name or Path(extra).resolve() == Path(source).resolve()


def mix_in(base: FaceSet, extra: FaceSet, repeat: int = 1) -> FaceSet:
    """``base`` followed by ``repeat`` copies of ``extra``: one training set on ``base``'s classes,
    channels and size.

    ``extra``'s rows of classes ``base`` lacks are dropped (CK+'s contempt for FER2013), its faces
    are resized to ``base``'s, and where ``base`` has soft labels, ``extra``'s own (or its one-hot
    labels, when it has none) are put on ``base``'s classes, so a blended target stays its label.
    The mixed rows take ``base``'s first split name, so they stay in a later selection of it."""
    if repeat < 1:
        raise LrferError(f"repeat is {repeat}, it must be 1 or more", "1 adds each extra face once an epoch")
    extra = extra.with_classes(base.classes)
    if not len(extra):
        raise LrferError(f"{extra.name} has no faces of the classes {', '.join(base.classes)}", "mix in a set that shares the classes")
    if base.in_chans == 1:
        extra = extra.to_grayscale()
    elif extra.in_chans == 1:
        extra = replace(extra, images=extra.images.expand(-1, base.in_chans, -1, -1).contiguous())
    if extra.image_size != base.image_size:
        if base.image_size[0] != base.image_size[1]:
            raise LrferError(f"{base.name} has faces of {base.image_size}, not square", "resize the base set to a square size first")
        extra = extra.resized(base.image_size[0])
    soft = None
    if base.soft_labels is not None:
        own = extra.soft_labels if extra.soft_labels is not None else torch.nn.functional.one_hot(extra.labels, base.num_classes).float()
        soft = torch.cat([base.soft_labels, *[own.to(base.soft_labels.dtype)] * repeat])

    def both(a, b):
        return None if a is None or b is None else np.concatenate([a, *[b] * repeat])

    name = base.splits[0] if len(base) else "train"
    return replace(
        base,
        images=torch.cat([base.images, *[extra.images] * repeat]),
        labels=torch.cat([base.labels, *[extra.labels] * repeat]),
        split=np.concatenate([base.split, np.full(len(extra) * repeat, name)]),
        soft_labels=soft,
        groups=both(base.groups, extra.groups),
        dup_group=None if base.dup_group is None else np.concatenate([base.dup_group, np.full(len(extra) * repeat, -1)]),
        ids=both(base.ids, extra.ids),
        meta={**base.meta, "mixed_in": {"name": extra.name, "faces": len(extra), "repeat": repeat}},
    )
