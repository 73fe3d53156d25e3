"""`lrfer evaluate-photos`: the whole inference path on labelled whole photos, a missed face counted
wrong, at several face sizes and crop margins (lrfer.infer.photo_eval)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.infer.photo_eval import match, shrink
from tests.cli.test_cli import assert_clean_error, run
from tests.conftest import CKPLUS_NPZ

pytest.importorskip("onnxruntime")


def test_match_takes_a_detection_centred_in_the_box_of_about_its_size_once():
    truth = np.array([[10, 10, 50, 50], [100, 100, 140, 140]], float)
    dets = np.array([
        [12, 12, 48, 48],  # the first face
        [0, 0, 200, 200],  # centred in the second box but five times its side: not it
        [105, 98, 139, 142],  # the second face
        [11, 11, 49, 49],  # the first face again: a second detection of a face is a false one
    ], float)  # fmt: skip
    found, false = match(dets, truth)
    assert found.tolist() == [0, 2] and false == 2
    found, false = match(np.zeros((0, 4)), truth)
    assert found.tolist() == [-1, -1] and false == 0


def test_shrink_brings_the_shorter_side_of_the_box_to_the_size_and_never_enlarges():
    frame = np.zeros((200, 300, 3), np.uint8)
    box = np.array([100.0, 50.0, 180.0, 150.0])  # 80 wide, 100 high
    small, b, shrunk = shrink(frame, box, 20)
    assert shrunk and small.shape == (50, 75, 3)
    assert min(b[2] - b[0], b[3] - b[1]) == pytest.approx(20, abs=0.5)
    same, b2, shrunk = shrink(frame, box, 120)
    assert not shrunk and same is frame and np.array_equal(b2, box)


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    """Whole photos of real CK+ faces (96 px, on a noisy wall), class folders; one photo holds no face."""
    if not CKPLUS_NPZ.exists():
        pytest.skip("CK+ is not in ../shared/data")
    ck = np.load(CKPLUS_NPZ)
    names = np.array([str(c) for c in ck["class_names"]])[ck["labels"]]
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for cls in ("happy", "surprise", "sad", "contempt"):
        folder = root / cls
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(np.char.startswith(names.astype(str), cls[:3]))[:4]):
            wall = np.clip(rng.normal(128, 12, (200, 200)), 0, 255).astype(np.uint8)
            canvas = Image.fromarray(wall)
            canvas.paste(Image.fromarray(ck["images"][i]).resize((96, 96), Image.BICUBIC), (40 + 10 * k, 30 + 8 * k))
            canvas.save(folder / f"{k}.png")
    Image.fromarray(np.full((200, 200), 128, np.uint8)).save(root / "happy" / "wall.png")
    return root


def test_evaluate_photos_scores_every_photo_at_each_size_and_margin(capsys, tmp_path, photo_folder):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "evaluate-photos", "--data", str(photo_folder), "--face-px", "native,17",
                            "--margins", "0,0.2", "--out", str(out), "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "4 photos of contempt left out" in err  # a 7-class model cannot be right about them
    doc = json.loads((out / "photos.json").read_text())
    assert doc["settings"] == ["native@margin0", "native@margin0.2", "17px@margin0", "17px@margin0.2"]
    with open(out / "photos.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 13 and (out / "photos.png").stat().st_size > 0
    wall = next(r for r in rows if r["id"].endswith("wall.png"))
    assert all(wall[f"{k}_label"] == "" for k in doc["settings"])  # no face: missed at every size, never guessed
    for r, key in zip(doc["rows"], doc["settings"]):
        labels = [row[f"{key}_label"] for row in rows]
        assert r["n"] == 13 and r["found"] == pytest.approx(sum(bool(x) for x in labels) / 13)
        # a missed face is a wrong answer: accuracy is over all 13 photos, not the found ones
        assert r["accuracy"] == pytest.approx(sum(x == row["true"] for x, row in zip(labels, rows)) / 13)
    native, small = doc["rows"][0], doc["rows"][2]
    assert native["found"] == pytest.approx(12 / 13) and native["median_face_px"] > 60
    assert small["face_px"] == 17 and 13 <= small["median_face_px"] <= 21 and small["not_shrunk"] == 0
    assert "accuracy" in stdout and "native" in stdout


@pytest.mark.parametrize(
    "argv, fragment",
    [(["--face-px", "native,big"], "'big' is not a pixel size"), (["--margins", "0,-1"], "margins of 0 or more"),
     (["--no-detect"], "scores the detector too")],
)  # fmt: skip
def test_evaluate_photos_refuses_bad_options_in_one_line(capsys, tmp_path, argv, fragment):
    code, _, err = run(capsys, "evaluate-photos", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *argv)
    assert_clean_error(code, err, fragment)
