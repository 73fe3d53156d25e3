"""Readers against tiny datasets written in each real on-disk format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrfer import files
from lrfer.data.labels import CANONICAL
from lrfer.data.readers import (
    FORMATS,
    affwild2,
    ckplus,
    class_folders,
    detect_format,
    fer2013_csv,
    ferplus,
    ferplus_labels,
    jaffe,
    load_dataset,
    npz,
    rafdb,
    votes_as_soft_labels,
)
from lrfer.data.splits import duplicate_groups
from lrfer.errors import LrferError

from .conftest import FERPLUS_USAGE, FERPLUS_VOTES, face, save, write_fer_csv, write_ferplus_csv

FER7 = CANONICAL[:7]


# ====================================================================== duplicates
def test_duplicate_groups_numbers_repeats_in_first_appearance_order():
    imgs = torch.stack([torch.full((1, 4, 4), v, dtype=torch.uint8) for v in (5, 1, 5, 2, 1, 5, 9)])
    assert duplicate_groups(imgs).tolist() == [0, 1, 0, -1, 1, 0, -1]
    assert duplicate_groups(imgs[:0]).tolist() == []


# ====================================================================== FER2013 csv
def test_fer2013_csv(tmp_path, fer_rows):
    path = write_fer_csv(tmp_path / "fer2013.csv", fer_rows)
    fs = fer2013_csv(path)
    assert fs.classes == FER7 and fs.name == "fer2013"
    assert fs.images.shape == (6, 1, 48, 48) and fs.images.dtype == torch.uint8
    assert fs.labels.tolist() == [0, 3, 6, 4, 3, 5]
    assert fs.split.tolist() == ["Training"] * 3 + ["PublicTest"] * 2 + ["PrivateTest"]
    assert fs.splits == ("Training", "PublicTest", "PrivateTest")
    for k, (_, img, _) in enumerate(fer_rows):
        assert np.array_equal(fs.images[k, 0].numpy(), img)
    assert fs.ids.tolist()[:2] == ["fer2013.csv:row 0", "fer2013.csv:row 1"]
    assert fs.dup_group.tolist() == [-1, 0, -1, -1, 0, -1]
    assert fs.groups is None and fs.soft_labels is None


def test_fer2013_csv_without_usage_is_split_all(tmp_path, fer_rows):
    rows = [(label, img) for label, img, _ in fer_rows]
    fs = fer2013_csv(write_fer_csv(tmp_path / "f.csv", rows, header=("emotion", "pixels")))
    assert fs.splits == ("all",) and len(fs) == 6


def test_fer2013_csv_other_column_order_and_quotes(tmp_path, fer_rows):
    path = tmp_path / "icml.csv"
    lines = ["emotion, Usage, pixels"]
    for label, img, usage in fer_rows[:2]:
        lines.append(f'{label},{usage},"{" ".join(map(str, img.reshape(-1).tolist()))}"')
    path.write_text("\n".join(lines) + "\n\n")
    fs = fer2013_csv(path)
    assert fs.labels.tolist() == [0, 3] and np.array_equal(fs.images[1, 0].numpy(), fer_rows[1][1])


def test_fer2013_csv_wrong_columns(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("pixels,Usage\n1 2 3,PublicTest\n")
    with pytest.raises(LrferError) as err:
        fer2013_csv(path)
    msg = str(err.value)
    assert "test.csv" in msg and "emotion" in msg and "pixels, Usage" in msg


def test_fer2013_csv_pixel_count_names_line(tmp_path, fer_rows):
    rows = list(fer_rows)
    rows[1] = (3, " ".join(["7"] * 2000), "Training")
    with pytest.raises(LrferError, match=r"f\.csv line 3: the pixels field has 2000 values, expected 2304"):
        fer2013_csv(write_fer_csv(tmp_path / "f.csv", rows))


@pytest.mark.parametrize(
    "pixels, pattern",
    [
        (" ".join(["7"] * 2303 + ["x"]), "holds 'x'"),
        (" ".join(["7"] * 2303 + ["256"]), "'256' is above 255"),
        (" ".join(["7"] * 2303 + ["1000"]), "'1000' is above 255"),
    ],
)
def test_fer2013_csv_bad_pixel_values(tmp_path, fer_rows, pixels, pattern):
    rows = list(fer_rows)
    rows[4] = (3, pixels, "PublicTest")
    with pytest.raises(LrferError, match=rf"line 6: .*{pattern}"):
        fer2013_csv(write_fer_csv(tmp_path / "f.csv", rows))


@pytest.mark.parametrize("label, pattern", [(7, "emotion 7 is out of range"), ("x", "emotion 'x' is not an integer")])
def test_fer2013_csv_bad_label_names_line(tmp_path, fer_rows, label, pattern):
    rows = list(fer_rows)
    rows[2] = (label, rows[2][1], "Training")
    with pytest.raises(LrferError, match=rf"f\.csv line 4: {pattern}"):
        fer2013_csv(write_fer_csv(tmp_path / "f.csv", rows))


def test_fer2013_csv_ragged_row_and_empty(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("emotion,pixels,Usage\n0,1 2,Training,extra\n")
    with pytest.raises(LrferError, match="line 2: 4 fields"):
        fer2013_csv(path)
    path.write_text("emotion,pixels,Usage\n")
    with pytest.raises(LrferError, match="no rows"):
        fer2013_csv(path)


def test_fer2013_csv_matches_shared_npz(tmp_path, shared_fer):
    """The first rows of the real data, written as the Kaggle csv, read back bit-exact."""
    with np.load(shared_fer) as z:
        images, labels, usage = z["images"][28600:28900], z["labels"][28600:28900], z["usage"][28600:28900]
    rows = [(int(y), x, str(u)) for y, x, u in zip(labels, images, usage)]
    fs = fer2013_csv(write_fer_csv(tmp_path / "fer2013.csv", rows))
    assert np.array_equal(fs.images[:, 0].numpy(), images) and np.array_equal(fs.labels.numpy(), labels)
    assert fs.splits == ("Training", "PublicTest")


# ====================================================================== FERPlus
def _values(fs):
    """Row k of the ferplus_files fixture has the constant image 10k+5."""
    return [(int(v) - 5) // 10 for v in fs.images[:, 0, 0, 0]]


def test_ferplus_joins_votes_by_row_not_by_image_name(ferplus_files):
    _, new = ferplus_files
    fs = ferplus(new)  # fer2013.csv found beside it
    assert fs.classes == CANONICAL and fs.name == "ferplus"
    assert _values(fs) == [0, 5]  # majority rows 0 and 5; names would have pointed row 5 at image 4
    assert [fs.classes[i] for i in fs.labels] == ["happy", "fear"]
    assert fs.ids.tolist() == ["fer2013.csv:row 0", "fer2013.csv:row 5"]
    assert fs.split.tolist() == ["Training", "PrivateTest"]
    assert fs.soft_labels.shape == (2, 8)
    assert torch.allclose(fs.soft_labels[0], torch.tensor([0, 0, 0, 0.8, 0, 0, 0.2, 0]))
    assert fs.meta["ferplus"]["excluded"] == {"no_votes": 1, "unknown_or_nf": 2, "no_majority": 2}


def test_ferplus_modes(ferplus_files):
    fer, new = ferplus_files
    name = lambda fs: [fs.classes[i] for i in fs.labels]
    plurality = ferplus(new, fer2013=fer, mode="plurality")
    assert _values(plurality) == [0, 4, 5] and name(plurality) == ["happy", "contempt", "fear"]
    assert plurality.meta["ferplus"]["excluded"]["tie"] == 1
    first = ferplus(new, fer2013=fer, mode="plurality", ties="first")
    assert _values(first) == [0, 1, 4, 5] and name(first)[1] == "sad"  # sadness comes before anger in the file
    prob = ferplus(new, fer2013=fer, mode="probability")
    assert _values(prob) == [0, 1, 4, 5]
    expected = torch.zeros(8)
    expected[CANONICAL.index("angry")] = expected[CANONICAL.index("sad")] = 0.4
    expected[CANONICAL.index("neutral")] = 0.2
    assert torch.allclose(prob.soft_labels[1], expected)
    assert torch.allclose(prob.soft_labels.sum(1), torch.ones(4))
    # FERPlus reference-code outlier removal: the single fear vote of row 4 goes, contempt 5/9 is a majority
    assert _values(ferplus(new, fer2013=fer, mode="majority", min_votes=2)) == [0, 4, 5]
    with pytest.raises(LrferError, match="did you mean 'plurality'"):
        ferplus(new, fer2013=fer, mode="plurality_")


def test_ferplus_label_rules_direct():
    votes = np.array([[3, 0, 0, 0, 0, 0, 0, 0, 3, 0], [0, 0, 0, 0, 0, 0, 0, 0, 2, 3]])
    keep, labels, soft, excluded = ferplus_labels(votes, "plurality", ties="first")
    assert keep.tolist() == [True, False]  # a tie with unknown goes to the emotion, as argmax does
    assert labels[0] == CANONICAL.index("neutral") and excluded["unknown_or_nf"] == 1
    assert ferplus_labels(votes, "plurality")[0].tolist() == [False, False]


def test_ferplus_with_npz_source(tmp_path, ferplus_files):
    _, new = ferplus_files
    keep = np.array([0, 1, 4, 5])  # an archive holding some rows, with their csv row numbers
    src = tmp_path / "sub.npz"
    np.savez(src, images=np.stack([face(10 * k + 5) for k in keep]), labels=keep % 7,
             usage=np.array(FERPLUS_USAGE)[keep], row_index=keep)
    fs = ferplus(new, fer2013=src, mode="plurality", ties="first")
    assert _values(fs) == [0, 1, 4, 5] and fs.ids[2] == "fer2013.csv:row 4"


def test_ferplus_mismatched_files(tmp_path, ferplus_files):
    fer, new = ferplus_files
    short = write_ferplus_csv(tmp_path / "short.csv", [("Training", "a", FERPLUS_VOTES[0])] * 3)
    with pytest.raises(LrferError, match="joined by row order"):
        ferplus(short, fer2013=fer)
    swapped = list(FERPLUS_USAGE)
    swapped[4] = "Training"
    other = write_ferplus_csv(tmp_path / "other.csv", [(u, "", v) for u, v in zip(swapped, FERPLUS_VOTES)])
    with pytest.raises(LrferError, match="line 6 says Usage 'Training'"):
        ferplus(other, fer2013=fer)
    alone = tmp_path / "a" / "b"
    alone.mkdir(parents=True)
    lonely = write_ferplus_csv(alone / "fer2013new.csv", [("Training", "a", FERPLUS_VOTES[0])])
    with pytest.raises(LrferError, match="fer2013=PATH"):
        ferplus(lonely)


# ====================================================================== class folders
def test_class_folders_split_layout(tmp_path):
    root = tmp_path / "fer_folders"
    save(root / "train" / "happy" / "im10.png", face(110))
    save(root / "train" / "happy" / "im2.png", face(102))
    save(root / "train" / "angry" / "im0.jpg", face(50))
    save(root / "train" / "neutral" / "im0.png", face(60, size=(96, 96)))  # odd size: fitted to 48
    save(root / "test" / "happy" / "im0.png", face(120))
    (root / "train" / "happy" / "notes.txt").write_text("not an image")
    fs = class_folders(root)
    assert fs.classes == ("angry", "happy", "neutral")  # sorted folder names, like ImageFolder
    assert fs.image_size == (48, 48) and fs.in_chans == 1
    assert fs.ids.tolist() == ["test/happy/im0.png", "train/angry/im0.jpg", "train/happy/im2.png",
                               "train/happy/im10.png", "train/neutral/im0.png"]
    assert fs.split.tolist() == ["test", "train", "train", "train", "train"]
    assert fs.labels.tolist() == [1, 0, 1, 1, 2]
    assert fs.images[2, 0, 0, 0] == 102 and fs.images[4].float().mean() == 60
    assert load_dataset(root).ids.tolist() == fs.ids.tolist()
    assert detect_format(root) == "folders"


def test_class_folders_flat_sfew_spelling_and_color(tmp_path):
    root = tmp_path / "sfew"
    save(root / "Train" / "Angry" / "a.png", face(0, size=(40, 60), channels=3, seed=1))
    save(root / "Train" / "Happy" / "b.png", face(0, size=(40, 60), channels=3, seed=2))
    save(root / "Val" / "Sad" / "c.png", face(0, size=(40, 60), channels=3, seed=3))
    (root / "Test").mkdir()
    save(root / "Test" / "unlabelled.png", face(1))
    fs = class_folders(root, color=True, size=32)
    assert fs.classes == ("angry", "happy", "sad") and fs.splits == ("Train", "Val")
    assert fs.images.shape == (3, 3, 32, 32)
    assert fs.meta["ignored_folders"] == ["Test"]
    flat = class_folders(root / "Train")
    assert flat.splits == ("all",) and flat.image_size == (40, 60) and flat.in_chans == 1


def test_class_folders_errors(tmp_path):
    root = tmp_path / "bad"
    save(root / "happy" / "a.png", face(1))
    save(root / "misc" / "b.png", face(2))
    with pytest.raises(LrferError, match="misc are not expression classes"):
        class_folders(root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LrferError, match="no labelled faces found"):
        class_folders(empty)
    (empty / "happy").mkdir()
    with pytest.raises(LrferError, match="hold no image files"):
        class_folders(empty)
    with pytest.raises(LrferError, match="unrecognised dataset layout"):
        detect_format(root / "misc")


def test_corrupt_image_is_an_error_unless_skipped(tmp_path):
    root = tmp_path / "faces"
    save(root / "happy" / "good.png", face(3))
    good = (root / "happy" / "good.png").read_bytes()
    (root / "happy" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "sad" / "noise.jpg").parent.mkdir()
    (root / "sad" / "noise.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(LrferError, match=r"cannot read image .*noise\.jpg|cannot read image .*truncated\.png"):
        class_folders(root)
    fs = class_folders(root, skip_bad=True)
    assert len(fs) == 1 and sorted(fs.meta["skipped_files"]) == ["happy/truncated.png", "sad/noise.jpg"]
    assert fs.classes == ("happy", "sad")


def test_decompression_bomb_guard(tmp_path, monkeypatch):
    root = tmp_path / "faces"
    save(root / "happy" / "big.png", face(3, size=(30, 30)))
    monkeypatch.setattr(files, "MAX_PIXELS", 500)
    with pytest.raises(LrferError, match="30x30 pixels is above the 500 pixel limit"):
        class_folders(root)


def test_progress_events(tmp_path):
    root = tmp_path / "faces"
    for k in range(3):
        save(root / "happy" / f"{k}.png", face(k))
    events = []
    load_dataset(root, progress=events.append)
    assert events and events[-1].done == events[-1].total == 3


# ====================================================================== CK+
def test_ckplus48_folders(tmp_path):
    root = tmp_path / "CK+48"
    files = {"anger": ["S010_004_00000017.png", "S010_004_00000018.png"], "surprise": ["S011_001_00000016.png"],
             "contempt": ["S138_008_00000007.png"]}
    for cls, names in files.items():
        for k, n in enumerate(names):
            save(root / cls / n, face(k, seed=len(n) + k + len(cls)))
    assert detect_format(root) == "ckplus"
    fs = load_dataset(root)
    assert fs.classes == ("angry", "contempt", "surprise") and fs.name == "ckplus"
    assert fs.groups.tolist() == ["S010", "S010", "S138", "S011"]
    assert fs.labels.tolist() == [0, 0, 1, 2] and fs.splits == ("all",)


def test_ckplus_original_layout(tmp_path):
    root = tmp_path / "CK+"
    for subject, seq, n, code in (("S005", "001", 5, 3), ("S010", "002", 4, 7), ("S011", "001", 3, None)):
        for f in range(1, n + 1):  # 64x48 frames: the centre 48x48 square has value f, the sides 255
            img = np.full((48, 64), 255, dtype=np.uint8)
            img[:, 8:56] = 10 * f
            save(root / "cohn-kanade-images" / subject / seq / f"{subject}_{seq}_{f:08d}.png", img)
        if code is not None:
            label = root / "Emotion" / subject / seq / f"{subject}_{seq}_{n:08d}_emotion.txt"
            label.parent.mkdir(parents=True)
            label.write_text(f"   {code:.7e}\n")
    assert detect_format(root) == "ckplus"
    fs = ckplus(root, size=24)
    assert fs.classes == ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
    assert fs.images.shape == (6, 1, 24, 24)
    assert [int(v) for v in fs.images[:, 0, 12, 12]] == [30, 40, 50, 20, 30, 40]  # centre crop, last 3 frames
    assert [fs.classes[i] for i in fs.labels] == ["disgust"] * 3 + ["surprise"] * 3
    assert fs.groups.tolist() == ["S005"] * 3 + ["S010"] * 3
    fs = ckplus(root, peak_frames=2, neutral_first=True)
    assert fs.classes[0] == "neutral" and fs.image_size == (48, 48)
    assert [fs.classes[i] for i in fs.labels] == ["neutral", "disgust", "disgust", "neutral", "surprise", "surprise"]
    assert fs.ids[0] == "cohn-kanade-images/S005/001/S005_001_00000001.png"
    (root / "Emotion" / "S005" / "001" / "S005_001_00000005_emotion.txt").write_text("9.0\n")
    with pytest.raises(LrferError, match="emotion code 9.0 is not one of 1-7"):
        ckplus(root)


# ====================================================================== RAF-DB
def test_rafdb(tmp_path):
    root = tmp_path / "basic"
    entries = [("train_00001.jpg", 5), ("train_00002.jpg", 1), ("train_00003.jpg", 7), ("test_0001.jpg", 4),
               ("test_0002.jpg", 2)]
    for name, _ in entries:
        save(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"), face(0, (100, 100), 3, seed=len(name)))
    (root / "EmoLabel").mkdir()
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{n} {k}\n" for n, k in entries))
    assert detect_format(tmp_path) == "rafdb" and detect_format(root) == "rafdb"
    fs = load_dataset(tmp_path)
    assert fs.classes == ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
    assert [fs.classes[i] for i in fs.labels] == ["sad", "surprise", "neutral", "happy", "fear"]
    assert fs.split.tolist() == ["train"] * 3 + ["test"] * 2
    assert fs.images.shape == (5, 1, 100, 100)
    assert rafdb(root, color=True, size=64).images.shape == (5, 3, 64, 64)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 8\n")
    with pytest.raises(LrferError, match="line 1: label 8 is out of range"):
        rafdb(root)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00009.jpg 1\n")
    with pytest.raises(LrferError, match="train_00009_aligned.jpg is missing"):
        rafdb(root)


# ====================================================================== JAFFE
def test_jaffe(tmp_path):
    root = tmp_path / "jaffe"
    for k, name in enumerate(["KA.AN1.39.tiff", "KA.HA2.30.tiff", "NA.SU1.79.tiff", "YM.NE3.51.tiff"]):
        save(root / name, face(0, (64, 64), seed=k))
    (root / "README").write_text("The Japanese Female Facial Expression database")
    assert detect_format(root) == "jaffe"
    fs = load_dataset(root)
    assert fs.classes == ("angry", "happy", "surprise", "neutral")
    assert fs.labels.tolist() == [0, 1, 2, 3]
    assert fs.groups.tolist() == ["KA", "KA", "NA", "YM"] and fs.splits == ("all",)
    assert jaffe(root, size=32).image_size == (32, 32)


# ====================================================================== Aff-Wild2
def test_affwild2(tmp_path):
    root = tmp_path / "affwild2"
    header = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
    videos = {("Train", "v1"): [0, 4, -1, 7, 5, 5], ("Validation", "10-60-1280x720_left"): [6, 6, 1]}
    for (split, video), labels in videos.items():
        ann = root / "EXPR_Set" / f"{split}_Set" / f"{video}.txt"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(header + "\n" + "\n".join(map(str, labels)) + "\n")
        for i in range(1, len(labels) + 1):
            if (video, i) != ("v1", 5):  # a frame without a detected face: absent from cropped_aligned
                save(root / "cropped_aligned" / video / f"{i:05d}.jpg", face(0, (112, 112), 3, seed=i))
    assert detect_format(root) == "affwild2"
    fs = load_dataset(root)
    assert fs.classes == ("neutral", "angry", "disgust", "fear", "happy", "sad", "surprise")
    assert fs.ids.tolist() == ["v1/00001.jpg", "v1/00002.jpg", "v1/00006.jpg", "10-60-1280x720_left/00001.jpg",
                               "10-60-1280x720_left/00002.jpg", "10-60-1280x720_left/00003.jpg"]
    assert fs.labels.tolist() == [0, 4, 5, 6, 6, 1]
    assert fs.split.tolist() == ["Train"] * 3 + ["Validation"] * 3
    assert fs.groups.tolist() == ["v1"] * 3 + ["10-60-1280x720_left"] * 3
    assert fs.meta["affwild2"] == {"missing_frames": 1, "unannotated_frames": 1, "other_dropped": 1}
    assert fs.image_size == (112, 112) and fs.in_chans == 1
    other = affwild2(root, include_other=True, splits=["Train"])
    assert other.classes[-1] == "other" and other.labels.tolist() == [0, 4, 7, 5]
    sub = affwild2(root, stride=2, max_per_video=1, size=56)
    assert sub.ids.tolist() == ["v1/00001.jpg", "10-60-1280x720_left/00001.jpg"] and sub.image_size == (56, 56)
    with pytest.raises(LrferError, match="did you mean 'Train'"):
        affwild2(root, splits=["Trian"])


# ====================================================================== npz
def test_generic_npz_colour_channels_last(tmp_path):
    path = tmp_path / "mine.npz"
    imgs = np.stack([face(0, (20, 20), 3, seed=k) for k in range(4)])
    np.savez(path, images=imgs, labels=np.array([0, 1, 1, 0]), class_names=np.array(["Happiness", "sadness"]),
             split=np.array(["a", "a", "b", "b"]))
    fs = load_dataset(path)
    assert fs.classes == ("happy", "sad") and fs.images.shape == (4, 3, 20, 20)
    assert np.array_equal(fs.images[2].permute(1, 2, 0).numpy(), imgs[2])
    assert fs.splits == ("a", "b") and fs.name == "mine"
    np.savez(path, images=imgs, labels=np.array([0, 1, 2, 0]), class_names=np.array(["happy", "sad"]))
    with pytest.raises(LrferError, match=r"labels\[2\] = 2"):
        npz(path)
    np.savez(path, pics=imgs)
    with pytest.raises(LrferError, match="has no array"):
        npz(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(LrferError, match="cannot read"):
        npz(path)


def test_shared_fer2013_npz(shared_fer):
    fs = load_dataset(shared_fer)
    assert fs.classes == FER7 and fs.name == "fer2013"
    d = fs.describe()["splits"]
    assert d["Training"]["n"] == 28709 and d["PublicTest"]["n"] == 3589
    assert [d["Training"][c] for c in FER7] == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert [d["PublicTest"][c] for c in FER7] == [467, 56, 496, 895, 653, 415, 607]
    assert fs.ids[28709] == "fer2013.csv:row 28709" and fs.dup_group.max() > 0
    with pytest.raises(LrferError, match="split 'PrivateTest' is not in fer2013"):
        fs.select_split("PrivateTest")
    with pytest.raises(LrferError, match="did you mean 'PublicTest'"):
        fs.select_split("Publictest")


def test_votes_as_soft_labels_keep_the_shared_classes_and_fall_back_to_the_label():
    #               neutral happy surprise sad anger disgust fear contempt unknown NF
    votes = np.array([[6, 0, 0, 0, 2, 0, 0, 2, 0, 0],   # contempt dropped: 6/8 neutral, 2/8 angry
                      [0, 0, 0, 0, 0, 0, 0, 0, 3, 7],   # unknown / NF only: the label, one-hot
                      [0, 0, 0, 0, 0, 0, 0, 10, 0, 0],  # contempt only: the label too
                      [0, 5, 5, 0, 0, 0, 0, 0, 0, 0]])
    soft = votes_as_soft_labels(votes, FER7, np.array([6, 2, 1, 3]))
    angry, disgust, fear, happy, surprise, neutral = (FER7.index(c) for c in ("angry", "disgust", "fear", "happy", "surprise", "neutral"))
    assert soft.shape == (4, 7) and np.allclose(soft.sum(1), 1)
    assert soft[0, neutral] == 0.75 and soft[0, angry] == 0.25
    assert soft[1, fear] == 1 and soft[2, disgust] == 1
    assert soft[3, happy] == soft[3, surprise] == 0.5
    with pytest.raises(ValueError, match=r"\(N, 10\)"):
        votes_as_soft_labels(votes[:, :8], FER7, np.zeros(4, dtype=np.int64))


def test_shared_fer2013_npz_carries_its_ferplus_votes_as_soft_labels(shared_fer):
    fs = load_dataset(shared_fer)
    assert fs.soft_labels.shape == (len(fs), 7) and torch.allclose(fs.soft_labels.sum(1), torch.ones(len(fs)))
    agree = (fs.soft_labels.argmax(1) == fs.labels).float().mean().item()
    assert 0.5 < agree < 0.95  # the taggers mostly agree with FER2013, not always: what a blend adds to the labels
    ferplus = load_dataset(shared_fer, labels="ferplus", mode="probability")
    row = {i: k for k, i in enumerate(ferplus.ids)}
    k = next(k for k in range(len(fs)) if fs.ids[k] in row and ferplus.soft_labels[row[fs.ids[k]], CANONICAL.index("contempt")] == 0)
    expected = ferplus.soft_labels[row[fs.ids[k]], :7]
    assert torch.allclose(fs.soft_labels[k], expected / expected.sum())


def test_shared_fer2013_npz_ferplus_mode(shared_fer):
    fs = load_dataset(shared_fer, labels="ferplus", mode="plurality", ties="first")
    assert fs.classes == CANONICAL and fs.num_classes == 8 and fs.soft_labels.shape == (len(fs), 8)
    # README: plurality counts, Training (argmax over all 10 columns; unknown/NF rows dropped)
    train = fs.select_split("Training").class_counts()
    expected = {"neutral": 10309, "happy": 7528, "surprise": 3562, "sad": 3515, "angry": 2467, "disgust": 191,
                "fear": 652, "contempt": 165}
    assert {c: int(train[i]) for i, c in enumerate(fs.classes)} == expected
    majority = load_dataset(shared_fer, labels="ferplus")
    assert majority.num_classes == 8 and len(majority) < len(fs)


def test_shared_ckplus48_npz(shared_ck):
    fs = load_dataset(shared_ck)
    assert fs.classes == ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
    assert fs.class_counts().tolist() == [135, 54, 177, 75, 207, 84, 249]
    assert len(np.unique(fs.groups)) == 118 and fs.splits == ("all",) and fs.name == "ckplus"


# ====================================================================== dispatch
def test_load_dataset_detection_and_errors(tmp_path, fer_rows, ferplus_files):
    fer, new = ferplus_files
    assert detect_format(fer) == "fer2013_csv" and detect_format(new) == "ferplus"
    assert load_dataset(new, mode="probability").num_classes == 8
    assert load_dataset(fer, format="fer2013_csv").num_classes == 7
    with pytest.raises(LrferError, match="no such file or folder"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(LrferError, match="did you mean 'ferplus'"):
        load_dataset(fer, format="ferplsu")
    with pytest.raises(LrferError, match="option.* colour not accepted .* it takes: progress"):
        load_dataset(fer, colour=True)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(LrferError, match="neither FER2013 nor FERPlus"):
        load_dataset(other)
    txt = tmp_path / "x.txt"
    txt.write_text("hello")
    with pytest.raises(LrferError, match="cannot tell the dataset format"):
        load_dataset(txt)
    assert set(FORMATS) >= {"npz", "fer2013_csv", "ferplus", "folders", "ckplus", "rafdb", "jaffe", "affwild2"}
