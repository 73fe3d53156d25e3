"""Split helpers: subject k-fold, official splits, duplicate exclusion, binary regrouping."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lrfer.data.faceset import FaceSet
from lrfer.data.readers import fer2013_csv, load_dataset
from lrfer.data.splits import BINARY_CLASSES, binary_regroup, dedup_within, exclude_duplicates, image_digests, official_split, subject_kfold
from lrfer.errors import LrferError

from .conftest import write_fer_csv


def make_set(values, labels, split=None, groups=None, classes=("angry", "happy", "sad"), soft=None):
    images = torch.stack([torch.full((1, 4, 4), v, dtype=torch.uint8) for v in values])
    return FaceSet(
        images=images,
        labels=torch.tensor(labels),
        classes=classes,
        split=np.array(split if split is not None else ["all"] * len(values)),
        groups=None if groups is None else np.array(groups),
        soft_labels=soft,
    )


def check_folds(folds, n, groups):
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(n))  # every row tested exactly once
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == n
        assert not set(groups[train]) & set(groups[test])  # no subject on both sides


def test_subject_kfold_synthetic():
    sizes = [9, 1, 4, 4, 3, 3, 2, 2, 2, 6]
    groups = np.repeat([f"S{i:03d}" for i in range(len(sizes))], sizes)
    fs = make_set([0] * len(groups), [0] * len(groups), groups=groups)
    folds = subject_kfold(fs, k=3, seed=1)
    check_folds(folds, len(fs), groups)
    test_sizes = sorted(len(t) for _, t in folds)
    assert sum(test_sizes) == 36 and test_sizes[-1] - test_sizes[0] <= 2  # greedy largest-first: 11/12/13
    assert [t.tolist() for _, t in subject_kfold(fs, k=3, seed=1)] == [t.tolist() for _, t in folds]


def test_subject_kfold_errors():
    with pytest.raises(LrferError, match="no subject groups"):
        subject_kfold(make_set([0, 1], [0, 1]), k=2)
    fs = make_set([0, 1, 2], [0, 1, 2], groups=["a", "a", "b"])
    with pytest.raises(LrferError, match="2 subjects, fewer than k=3"):
        subject_kfold(fs, k=3)
    with pytest.raises(LrferError, match="k >= 2"):
        subject_kfold(fs, k=1)


def test_subject_kfold_shared_ckplus48(shared_ck):
    fs = load_dataset(shared_ck)
    folds = subject_kfold(fs, k=10, seed=0)
    assert len(folds) == 10
    check_folds(folds, len(fs), fs.groups)
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 15  # within about one subject's worth of frames


def test_official_split(tmp_path, fer_rows):
    fs = fer2013_csv(write_fer_csv(tmp_path / "fer2013.csv", fer_rows))
    train, test = official_split(fs)
    assert len(train) == 3 and test.splits == ("PublicTest",)
    _, private = official_split(fs, test="PrivateTest")
    assert len(private) == 1
    with pytest.raises(LrferError, match="did you mean 'PrivateTest'"):
        official_split(fs, test="PrivatTest")
    with pytest.raises(LrferError, match="no known test split"):
        official_split(make_set([0], [0], split=["Training"]))


def test_exclude_duplicates_by_ids_and_by_hash(tmp_path, fer_rows):
    fs = fer2013_csv(write_fer_csv(tmp_path / "fer2013.csv", fer_rows))
    train, test = fs.select_split("Training"), fs.select_split("PublicTest")
    clean = exclude_duplicates(train, test)  # one source: dup ids
    assert clean.ids.tolist() == ["fer2013.csv:row 3"] and clean.meta["excluded_duplicates"] == 1
    other = make_set([1, 2], [0, 1])
    assert len(exclude_duplicates(other, test)) == 2  # other image shape: nothing to match
    hashed = exclude_duplicates(train, replace(test, meta={}))  # no common source: pixel hashes
    assert hashed.ids.tolist() == ["fer2013.csv:row 3"] and hashed.meta["excluded_duplicates"] == 1
    a, b = make_set([1, 2, 3], [0, 0, 0]), make_set([3, 4, 1], [0, 0, 0])
    assert exclude_duplicates(a, b).images[:, 0, 0, 0].tolist() == [4]


def test_dedup_within():
    fs = make_set([5, 5, 1, 5, 2, 2], [0, 0, 1, 0, 1, 2])
    out = dedup_within(fs)
    assert out.images[:, 0, 0, 0].tolist() == [5, 1, 2] and out.meta["dedup_removed"] == 3
    strict = dedup_within(fs, drop_conflicts=True)  # the two copies of image 2 disagree (happy, sad)
    assert strict.images[:, 0, 0, 0].tolist() == [5, 1]


def test_binary_regroup():
    soft = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.1, 0.6, 0.3]])
    fs = make_set([0, 1, 2], [0, 2, 1], soft=soft)
    out = binary_regroup(fs)
    assert out.classes == BINARY_CLASSES and out.labels.tolist() == [0, 0, 1]
    assert torch.allclose(out.soft_labels, torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.4, 0.6]]))
    assert out.meta["binary_positive"] == ["happy"]
    assert binary_regroup(fs, positive=("sadness",)).labels.tolist() == [0, 1, 0]
    with pytest.raises(LrferError, match="none of the positive classes"):
        binary_regroup(fs, positive=("contempt",))


def test_shared_fer2013_leaked_test_rows(shared_fer):
    """README: 280 PublicTest rows repeat a Training image; ids and pixel hashes agree."""
    fs = load_dataset(shared_fer)
    train, test = fs.select_split("Training"), fs.select_split("PublicTest")
    by_ids = exclude_duplicates(train, test)
    assert by_ids.meta["excluded_duplicates"] == 280
    by_hash = exclude_duplicates(train, replace(test, meta={}))  # no common source: pixel hashes
    assert by_hash.meta["excluded_duplicates"] == 280
    unique = dedup_within(train)
    digests = image_digests(unique.images)
    assert len(np.unique(digests)) == len(unique)
