"""Split helpers: subject k-fold, official splits, duplicate exclusion, binary regrouping."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lrfer.data.faceset import FaceSet
from lrfer.data.readers import fer2013_csv, load_dataset
from lrfer.data.splits import (
    BINARY_CLASSES,
    binary_regroup,
    dedup_within,
    exclude_duplicates,
    held_out_subjects,
    image_digests,
    mix_in,
    mixed_into,
    official_split,
    subject_kfold,
)
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


def test_mix_in_puts_the_extra_faces_on_the_base_classes_size_and_targets():
    soft = torch.tensor([[0.2, 0.5, 0.3], [0.0, 1.0, 0.0]])
    base = make_set([10, 20], [0, 1], split=["Training"] * 2, classes=("angry", "happy", "sad"), soft=soft)
    colour = torch.stack([torch.full((3, 8, 8), v, dtype=torch.uint8) for v in (100, 150, 200)])
    extra = FaceSet(images=colour, labels=torch.tensor([0, 1, 2]), classes=("contempt", "sad", "angry"), split=np.array(["all"] * 3),
                    groups=np.array(["a", "a", "b"]), name="ck")  # fmt: skip
    mixed = mix_in(base, extra, repeat=2)
    assert len(mixed) == 2 + 2 * 2  # contempt, which the base lacks, is dropped; the others twice
    assert mixed.classes == base.classes and mixed.images.shape[1:] == (1, 4, 4)  # grey, the base's size
    assert mixed.labels.tolist() == [0, 1, 2, 0, 2, 0]  # sad and angry on the base's indices
    assert torch.equal(mixed.soft_labels[:2], soft)
    assert torch.equal(mixed.soft_labels[2:], torch.nn.functional.one_hot(mixed.labels[2:], 3).float())  # a blend keeps their label
    assert set(mixed.split) == {"Training"} and mixed.meta["mixed_in"] == {"name": "ck", "faces": 2, "repeat": 2}
    with pytest.raises(LrferError, match="repeat is 0"):
        mix_in(base, extra, repeat=0)
    with pytest.raises(LrferError, match="no faces of the classes"):
        mix_in(base, replace(extra, classes=("contempt", "disgust", "fear")))


def test_mixed_into_knows_the_set_by_its_name_wherever_it_lives(tmp_path):
    """A checkpoint keeps the path of the machine it trained on; a clean clone reads the same set
    from another folder (the CI run that found this had ../shared at another path)."""
    faces = replace(make_set([1], [0]), meta={"source": {"format": "npz", "path": str(tmp_path / "elsewhere" / "ckplus48.npz")}})
    assert mixed_into({"extra_train": "/work/shared/data/ckplus48.npz"}, faces)
    assert mixed_into({"extra_train": str(tmp_path / "elsewhere" / "ckplus48.npz")}, faces)
    assert not mixed_into({"extra_train": "/work/shared/data/jaffe.npz"}, faces)
    assert not mixed_into({}, faces) and not mixed_into({"extra_train": None}, faces)
    assert not mixed_into({"extra_train": "/work/shared/data/ckplus48.npz"}, replace(faces, meta={}))


def test_held_out_subjects_of_ckplus48_are_fixed_and_never_shared(shared_ck):
    ck = load_dataset(shared_ck)
    train, held = held_out_subjects(ck, 2)
    assert len(train) + len(held) == len(ck) and 0.4 < len(held) / len(ck) < 0.6
    assert not set(train.groups) & set(held.groups)
    again = held_out_subjects(ck, 2)[1]  # no seed to pass: an evaluation finds the same subjects a run left out
    assert np.array_equal(again.ids, held.ids)
    all_of_it, none = held_out_subjects(ck, 0)
    assert len(all_of_it) == len(ck) and len(none) == 0
