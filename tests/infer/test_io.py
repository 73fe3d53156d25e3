"""Reading face crops of every kind, per-file statuses, and the shipped default model on real faces."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from lrfer import files
from lrfer.cli import main
from lrfer.data.readers import load_dataset
from lrfer.files import ImageReadError
from lrfer.infer.io import expand_paths, predict_files, read_image
from lrfer.infer.recognizer import Recognizer
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier
from tests.conftest import ROOT_DIR

EXAMPLES = ROOT_DIR / "examples" / "faces"


@pytest.fixture(scope="module")
def default_classifier() -> FaceClassifier:
    return FaceClassifier.load(device="cpu")


def test_read_image_modes(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert read_image(tmp_path / "rgb.png", 1).shape == (20, 30)
    assert read_image(tmp_path / "rgb.png").shape == (20, 30, 3)
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent: composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png", 1).min() == 255
    deep = (np.arange(100, dtype=np.uint16).reshape(10, 10) * 600)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    g = read_image(tmp_path / "deep.png", 1)
    assert g.dtype == np.uint8 and g.min() == 0 and g.max() == 255  # scaled by range, not clipped
    Image.fromarray(np.zeros((8, 8), np.uint8)).convert("P").save(tmp_path / "pal.gif")
    assert read_image(tmp_path / "pal.gif", 1).shape == (8, 8)


@pytest.mark.parametrize(
    "content, fragment",
    [(b"", "empty file"), (b"this is not an image", "not a readable image")],
)
def test_read_image_rejects_bad_files(tmp_path, content, fragment):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageReadError, match=fragment):
        read_image(p)


def test_truncated_image(tmp_path):
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageReadError, match="truncated|unreadable"):
        read_image(tmp_path / "t.png")


def test_default_model_ships_and_recognises_a_real_smile(default_classifier):
    assert DEFAULT_CHECKPOINT.stat().st_size < 20 * 2**20
    crops = Recognizer(default_classifier, detector=None)
    rows = list(predict_files(crops, [EXAMPLES / "astronaut_048px.png", EXAMPLES / "astronaut_100px.png"]))
    assert [r["label"] for r in rows] == ["happy", "happy"]
    assert all(abs(sum(r["probabilities"].values()) - 1) < 1e-3 for r in rows)


def test_bad_files_get_a_status_and_the_rest_still_run(default_classifier, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    rows = list(predict_files(Recognizer(default_classifier, detector=None), [EXAMPLES / "astronaut_024px.png", tmp_path / "empty.png"]))
    assert rows[0]["status"] == "ok" and rows[1]["status"] == "empty file (0 bytes)"
    assert "label" not in rows[1]


def test_cli_predict_exit_codes(capsys, tmp_path):
    assert main(["predict", "--no-detect", str(EXAMPLES)]) == 0
    out = capsys.readouterr().out
    assert out.count("happy") >= 3  # table rows for the 100, 48 and 24 px crops at least
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    assert main(["predict", str(tmp_path / "junk.jpg")]) == 2  # nothing could be processed: bad input
    assert "not a readable image" in capsys.readouterr().err


def test_default_model_beats_chance_by_far_on_real_faces(default_classifier, fer2013_npz):
    faces = load_dataset(fer2013_npz).select_split("PublicTest")
    faces = default_classifier.prepare(faces.subset(np.arange(600)))
    probs = default_classifier.predict_proba(faces.images)
    acc = float((probs.argmax(1) == faces.labels).float().mean())
    assert acc > 0.6  # the majority class is 25%
    small = default_classifier.predict_proba(faces.images, degrade_to=16)
    assert float((small.argmax(1) == faces.labels).float().mean()) > 0.5


def test_datasets_and_predict_decode_alike(tmp_path):
    """One decoder: a dataset folder and `lrfer predict` read the same pixels from awkward files."""
    rgba = np.zeros((12, 12, 4), np.uint8)
    rgba[..., 1] = 200
    rgba[..., 3] = np.arange(12, dtype=np.uint8)[:, None] * 20  # transparency varies by row
    (tmp_path / "happy").mkdir()
    Image.fromarray(rgba, "RGBA").save(tmp_path / "happy" / "a.png")
    Image.fromarray(np.arange(144, dtype=np.uint16).reshape(12, 12) * 400).save(tmp_path / "happy" / "b.png")
    faces = load_dataset(tmp_path, color=True)
    for k, name in enumerate(faces.ids):
        assert np.array_equal(faces.images[k].numpy(), read_image(tmp_path / name).transpose(2, 0, 1))
    assert faces.images[0, 1, 0].tolist() != faces.images[0, 1, -1].tolist()  # composited on white, not dropped


def test_one_pixel_limit(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(files, "MAX_PIXELS", 500)
    with pytest.raises(ImageReadError, match="30x30 pixels is above the 500 pixel limit"):
        read_image(tmp_path / "big.png")


def test_hidden_files_are_not_images(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "._a.png").write_bytes(b"macOS resource fork")
    (tmp_path / "notes.txt").write_text("not an image")
    assert expand_paths([tmp_path]) == [tmp_path / "a.png"]


def test_sha256_file(tmp_path):
    data = np.random.default_rng(0).integers(0, 256, (1 << 20) + 7, dtype=np.uint8).tobytes()  # spans two blocks
    (tmp_path / "f.bin").write_bytes(data)
    assert files.sha256_file(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()
