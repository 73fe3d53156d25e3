"""Hostile bytes (issue 28, fuzzing): each kind of input the fuzzers (``make fuzz``) or the work on
their harness showed to escape the contract, written out by hand, so that each fix has a test that
says what it is for: one LrferError naming the file, never another exception."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fuzz.seeds import META_TENSORS, checkpoint_meta, safetensors_bytes

from lrfer.data.readers import FERPLUS_COLUMNS, affwild2, ckplus, ferplus, npz, rafdb
from lrfer.errors import LrferError
from lrfer.files import ImageReadError, decode_image, read_jsonl
from lrfer.models.checkpoint import load_checkpoint
from lrfer.train.config import load_config


def _raises_naming(path: Path, call) -> LrferError:
    with pytest.raises(LrferError) as info:
        call()
    assert str(path) in str(info.value) and "\n" not in str(info.value), info.value
    return info.value


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("text, expect", [
    (b'epochs = "30"\n', "epochs"),
    (b"lr = true\n", "lr"),
    (b"freeze = 3\n", "freeze"),
    (b"augment = 5\n", "augment"),
    (b"[augment]\nerase_area = 4\n", "augment.erase_area"),
    (b"[augment]\nerase_area = [1, \"x\"]\n", "augment.erase_area"),
    (b"[augment]\ncrop = 4.5\n", "augment.crop"),
    (b"base = 5\n", "base"),
    (b"model = \"resnet18_fer_slim\"\n# \xff\xfe not utf-8\n", "UTF-8"),
], ids=["str-for-int", "bool-for-float", "int-for-list", "augment-not-table", "erase-not-list", "erase-not-numbers",
        "float-for-int", "base-not-str", "not-utf8"])
def test_recipe_of_the_wrong_types(tmp_path, text, expect):
    path = tmp_path / "mine.toml"
    path.write_bytes(text)
    err = _raises_naming(path, lambda: load_config(str(path)).validate())
    assert expect in str(err)


def test_recipe_augment_not_a_table_with_an_augment_flag(tmp_path):
    """``lrfer train --recipe R --degrade-p 0.5`` merges the flag into the recipe's [augment]."""
    path = tmp_path / "mine.toml"
    path.write_bytes(b"augment = 5\n")
    err = _raises_naming(path, lambda: load_config(str(path), augment={"degrade_p": 0.5}))
    assert "augment" in str(err)


def test_recipe_types_accept_what_the_shipped_recipes_write(tmp_path):
    """An int where a float belongs (``warmup_epochs = 1``) and a list for a tuple stay valid."""
    path = tmp_path / "mine.toml"
    path.write_bytes(b"warmup_epochs = 1\nlr = 1\n[augment]\nerase_area = [0, 0.3]\n")
    cfg = load_config(str(path)).validate()
    assert cfg.warmup_epochs == 1 and cfg.augment.erase_area == (0, 0.3)


# ---------------------------------------------------------------- annotation files
def _fixtures(root: Path):
    from fuzz.targets import _fixtures as make

    make(root)
    return root


@pytest.mark.parametrize("line", [b"train_00001.jpg \xc2\xb2\n", b"train_00001.jpg --5\n", b"train_00001.jpg \xff\n"],
                         ids=["superscript-two", "double-minus", "not-utf8"])
def test_rafdb_label_list(tmp_path, line):
    root = _fixtures(tmp_path)
    (root / "raf/EmoLabel/list_patition_label.txt").write_bytes(line)
    _raises_naming(root / "raf/EmoLabel/list_patition_label.txt", lambda: rafdb(root / "raf"))


def test_rafdb_image_name_too_long(tmp_path):
    root = _fixtures(tmp_path)
    (root / "raf/EmoLabel/list_patition_label.txt").write_text("train_" + "k" * 300 + ".jpg 5\n")
    err = _raises_naming(root / "raf/EmoLabel/list_patition_label.txt", lambda: rafdb(root / "raf"))
    assert "missing" in str(err)


def test_affwild2_annotation_not_utf8(tmp_path):
    root = _fixtures(tmp_path)
    ann = root / "aw/EXPR_Set/Train_Set/v1.txt"
    ann.write_bytes(b"Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n\xff\n")
    _raises_naming(ann, lambda: affwild2(root / "aw"))


@pytest.mark.parametrize("code", [b"nan\n", b"inf\n", b"-inf\n", b"1e400\n"])
def test_ckplus_code_not_a_number(tmp_path, code):
    root = _fixtures(tmp_path)
    f = root / "ck/Emotion/S005/001/S005_001_00000002_emotion.txt"
    f.write_bytes(code)
    _raises_naming(f, lambda: ckplus(root / "ck"))


# ---------------------------------------------------------------- csv and npz
def test_ferplus_vote_beyond_int64(tmp_path):
    root = _fixtures(tmp_path)
    votes = tmp_path / "fer2013new.csv"
    votes.write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                     "Training,a.png,99999999999999999999999,0,0,0,0,0,0,0,0,0\nPublicTest,b.png,1,0,0,0,0,0,0,0,0,0\n")
    _raises_naming(votes, lambda: ferplus(votes, fer2013=root / "pixels.npz"))


def _npz(path: Path, **arrays) -> Path:
    base = {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.array([0, 1]), "class_names": np.array(["happy", "sad"])}
    np.savez(path, **{**base, **arrays})
    return path


@pytest.mark.parametrize("arrays", [
    {"labels": np.array(["a", "b"])},
    {"labels": np.array([0.0, np.nan])},
    {"labels": np.array(1)},
    {"split": np.array([["a", "b"]])},
    {"soft_labels": np.ones((2, 5), np.float32)},
    {"ferplus_votes": np.ones((2, 3), np.int64)},
    {"dup_group": np.array([1e30, 1.0])},
], ids=["text-labels", "nan-label", "0d-labels", "2d-split", "soft-wrong-width", "votes-wrong-width", "dup-overflow"])
def test_npz_arrays_of_the_wrong_kind(tmp_path, arrays):
    path = _npz(tmp_path / "faces.npz", **arrays)
    _raises_naming(path, lambda: npz(path))


def test_npz_ferplus_arrays_of_unequal_length(tmp_path):
    path = tmp_path / "fer2013.npz"
    np.savez(path, images=np.zeros((2, 48, 48), np.uint8), usage=np.array(["Training"]), row_index=np.array([0, 1]),
             ferplus_votes=np.tile([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], (2, 1)), ferplus_columns=np.array(FERPLUS_COLUMNS))
    _raises_naming(path, lambda: npz(path, labels="ferplus"))


def test_npz_member_that_is_no_array(tmp_path):
    """A member without the .npy ending: numpy hands back its raw bytes, which no reader can use.
    (Damaged members, zip features Python lacks and cut .npy headers: the saved fuzz inputs.)"""
    path = _npz(tmp_path / "faces.npz")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("split", b"not an array")
    _raises_naming(path, lambda: npz(path))


# ---------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("edit", [
    lambda m: m.update(info=5),
    lambda m: m.update(state={"__tensor__": "state/nowhere"}),
    lambda m: m.update(state={"__dict__": 7}),
    lambda m: m.update(state={"__dict__": [[[1], 2]]}),
], ids=["info-not-object", "state-missing-tensor", "state-table-not-list", "state-key-a-list"])
def test_checkpoint_metadata_that_would_fail_later(tmp_path, edit):
    meta = checkpoint_meta()
    edit(meta)
    path = tmp_path / "last.safetensors"
    path.write_bytes(safetensors_bytes(json.dumps(meta), META_TENSORS))
    _raises_naming(path, lambda: load_checkpoint(path))


def test_checkpoint_metadata_as_written_still_loads(tmp_path):
    path = tmp_path / "last.safetensors"
    path.write_bytes(safetensors_bytes(json.dumps(checkpoint_meta()), META_TENSORS))
    state = load_checkpoint(path).state
    assert state["epoch"] == 3 and state["optimizer"][0].shape == (2,)


# ---------------------------------------------------------------- images
def test_damaged_tiff_tag_warns_nothing(recwarn):
    """A TIFF whose tag points past the end: Pillow warns while it reads on; decode_image keeps
    that inside (the library never prints), and the file decodes or is refused."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (6, 5), 7).save(out, "TIFF")
    data = bytearray(out.getvalue())
    first_ifd = int.from_bytes(data[4:8], "little")
    entry = first_ifd + 2  # the first tag's count field: claim far more values than the file holds
    data[entry + 4 : entry + 8] = (10_000).to_bytes(4, "little")
    try:
        decode_image(bytes(data))
    except ImageReadError:
        pass
    assert not [w for w in recwarn if "PIL" in (w.filename or "") or "Tag" in str(w.message)], [str(w.message) for w in recwarn]


# ---------------------------------------------------------------- logs
def test_jsonl_line_nested_too_deeply(tmp_path):
    """A metrics.jsonl line of 100000 '[': json recurses, so it is a RecursionError, not a ValueError."""
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n' + "[" * 100_000 + '\n{"epoch": 2}\n')
    _raises_naming(path, lambda: read_jsonl(path))
