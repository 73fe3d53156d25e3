"""bench/robustness.py's own pieces on hand-made inputs: the photos it builds, and how it scores a
model on a face set and on photos (the metric functions themselves: tests/evaluate/test_alerting.py
and test_end_to_end.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrfer.data.faceset import FaceSet
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects, image_digests

BENCH = Path(__file__).resolve().parents[2] / "bench"
FER7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # bench scripts import each other as `python bench/x.py` does
    import robustness
    import robustness_photos

    return argparse.Namespace(robustness=robustness, photos=robustness_photos)


def test_photos_hold_the_face_where_the_box_says(bench):
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (5, 48, 48), dtype=np.uint8)
    (frames, boxes), *_ = list(bench.photos.photos(faces, 24, seed=3, chunk=8))
    again, _ = next(bench.photos.photos(faces, 24, seed=3, chunk=8))
    other, _ = next(bench.photos.photos(faces, 24, seed=4, chunk=8))
    assert len(frames) == 5 and all(np.array_equal(a, b) for a, b in zip(frames, again))  # the same photos for every model
    assert not all(np.array_equal(a, b) for a, b in zip(frames, other))
    for frame, face, (x1, y1, x2, y2) in zip(frames, faces, boxes.astype(int)):
        assert frame.shape == (256, 256, 3) and x2 - x1 == 24 and y2 - y1 == 24
        assert 0 <= x1 and x2 <= 256 and 0 <= y1 and y2 <= 256
        want = np.asarray(Image.fromarray(face).resize((24, 24), Image.BOX))  # area resampling
        assert np.array_equal(frame[y1:y2, x1:x2, 0], want) and np.array_equal(frame[..., 0], frame[..., 2])
    # at 48 px the face is pasted as stored
    (frames48, boxes48), *_ = list(bench.photos.photos(faces[:1], 48, seed=3))
    x1, y1, x2, y2 = boxes48[0].astype(int)
    assert np.array_equal(frames48[0][y1:y2, x1:x2, 0], faces[0])


def test_photo_scores_drop_unknown_classes_and_count_a_miss_as_wrong(bench):
    true = np.array(["happy", "happy", "sad", "contempt", "angry"])
    answers = ["happy", None, "angry", "contempt", "neutral"]
    row = bench.photos.score_photos(FER7, true, answers, 17)
    # contempt is not a class of a 7-class model: 4 faces scored; right: the first happy face only
    assert row["n"] == 4 and row["found"] == 0.75 and row["accuracy"] == 0.25
    assert row["accuracy_found"] == pytest.approx(1 / 3)
    assert row["happy_read_negative"] == 0.0 and row["negative_read_negative"] == 0.5 and row["neutral_read_negative"] is None
    assert row["recall"] == {"angry": 0.0, "happy": 0.5, "sad": 0.0}


def _entry(bench, classes):
    return bench.robustness.suite.Entry("m", torch.nn.Identity(), tuple(classes), 48, None)


def test_face_set_answers_are_the_top_class_over_all_outputs(bench):
    """A model's neutral answer to a CK+-like face counts (wrong), unlike suite.py's shared-class argmax."""
    suite = bench.robustness.suite
    faces = FaceSet(
        torch.zeros(4, 1, 48, 48, dtype=torch.uint8),
        torch.tensor([0, 1, 2, 2]),
        ("angry", "contempt", "happy"),
        np.array(["all"] * 4),
        ids=np.array(list("abcd")),
    )
    pool = suite.Pool("p", faces.images, np.array(list("dcba")), 48)  # the pool's order need not be the set's
    ev = suite.EvalSet("ckplus", "t", "", "p", faces, {})
    p = torch.zeros(4, 7)
    # pool rows d, c, b, a: d (happy) read happy, c (happy) read neutral, b (contempt) dropped, a (angry) read sad
    p[0, FER7.index("happy")] = p[1, FER7.index("neutral")] = p[2, 0] = p[3, FER7.index("sad")] = 1.0
    res = bench.robustness.score(_entry(bench, FER7), ev, pool, {48: p})
    assert res["n"] == 3 and res["dropped_label_classes"] == ["contempt"]
    row = res["sweep"][0]
    assert row["accuracy"] == pytest.approx(1 / 3)
    assert row["negative_read_negative"] == 1.0 and row["happy_read_negative"] == 0.0


def test_calm_set_rows_carry_the_calm_summary(bench):
    suite = bench.robustness.suite
    faces = FaceSet(
        torch.zeros(4, 1, 64, 64, dtype=torch.uint8), torch.tensor([0, 1, 1, 1]), ("happy", "neutral"), np.array(["all"] * 4), ids=np.array(list("abcd"))
    )
    pool = suite.Pool("calm", faces.images, np.array(list("abcd")), 64)
    ev = suite.EvalSet("calm", "calm", "", "calm", faces, {})
    p = torch.zeros(4, 7)
    p[0, FER7.index("happy")] = p[1, FER7.index("neutral")] = p[2, FER7.index("angry")] = p[3, FER7.index("sad")] = 1.0
    row = bench.robustness.score(_entry(bench, FER7), ev, pool, {64: p})["sweep"][0]
    assert row["happy_recall"] == 1.0 and row["neutral_recall"] == pytest.approx(1 / 3)
    assert row["neutral_read_negative"] == pytest.approx(2 / 3) and row["negative_read_negative"] is None
    assert set(row["neutral_read_as"]) == {"neutral", "angry", "sad"}


def test_tables_show_what_the_results_say(bench, monkeypatch, tmp_path):
    import robustness_tables as tables

    doc = {
        "set": "calm", "title": "Calm", "notes": [],
        "provenance": {"script": "bench/robustness.py", "machine": "vm", "date": "2026-12-05T00:00:00", "commit": "abcdef0123", "dirty_tree": False},
        "results": {"m": {"sweep": [{"size": 64, "n": 10, "accuracy": 0.5, "macro_f1": 0.2, "neutral_recall": 0.3, "happy_recall": 0.85,
                                     "neutral_read_negative": 0.623, "happy_read_negative": 0.07, "neutral_read_as": {"neutral": 0.3, "sad": 0.4, "angry": 0.3}}]}},
    }  # fmt: skip
    text = "\n\n".join(tables.blocks({"calm": doc}))
    assert "| m | 64 | 10 | 50.0 | 20.0 | 30.0 | 85.0 | 62.3 | 7.0 | sad 40, angry 30 |" in text
    assert "| m | 30.0 | 62.3 | 7.0 |" in text  # the glance row



def test_ckplus_is_scored_on_the_subjects_a_ckplus_trained_model_never_saw(bench):
    """bench/suite.py's CK+ set and the photos hold fold 0 of held_out_subjects only: the shipped
    model trained on the other half (extra_train), and every model is scored on the same faces."""
    ck_path = Path(bench.robustness.suite.DEFAULT_DATA_DIR) / "ckplus48.npz"
    if not ck_path.is_file():
        pytest.skip(f"{ck_path} not available")
    ck = load_dataset(ck_path)
    trained, held = held_out_subjects(ck, bench.robustness.suite.CKPLUS_HELDOUT_FOLDS)
    faces, true = bench.photos.ckplus_faces(ck_path)
    assert len(faces) == len(held) and np.array_equal(faces, held.images[:, 0].numpy())
    assert not set(image_digests(torch.from_numpy(faces)[:, None])) & set(image_digests(trained.images))


def test_a_set_of_ones_own_is_scored_at_its_size_and_below(bench, tmp_path, capsys):
    """--set KEY=PATH: a class-per-folder set (RGB, 40 px) is read by lrfer's readers, made grey,
    and every model is scored on it at 40 px and each smaller size; its own results file."""
    rng = np.random.default_rng(0)
    for cls in ("happy", "sad", "neutral"):
        (tmp_path / "mine" / cls).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "mine" / cls / f"{k}.png")
    out = tmp_path / "out"
    code = bench.robustness.main(["--models", "default", "--datasets", "none", "--set", f"mine={tmp_path / 'mine'}", "--sizes", "24,16", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "mine.json").read_text())
    rows = doc["results"]["lrfer_default"]["sweep"]
    assert [r["size"] for r in rows] == [16, 24, 40] and all(r["n"] == 9 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert doc["data"]["class_counts"] == {"happy": 3, "neutral": 3, "sad": 3} and "grayscale" in doc["protocol"]
    assert (out / "mine.png").is_file()
    assert bench.robustness.main(["--models", "default", "--datasets", "none", "--set", f"gone={tmp_path / 'nowhere'}", "--out", str(out)]) == 2
    assert "--set gone:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench.robustness.parse_args(["--set", "calm=x"])  # the suite's own name
    assert exc.value.code == 2


def test_the_shipped_model_s_readings_are_models_of_the_suite(bench):
    """--models default:half runs the shipped network with its `half` head, on face sets and in photos."""
    suite = bench.robustness.suite
    args = argparse.Namespace(models="default,default:half", checkpoint=None, device="cpu", peers_dir="none")
    own, half = suite.build_models(args, print)
    assert (own.name, own.reading, half.name, half.reading) == ("lrfer_default", None, "lrfer_default_half", "half")
    assert half.info["reading"] == "half" and not torch.equal(own.net.classifier.weight, half.net.classifier.weight)
    pipes = bench.photos.pipelines([half], argparse.Namespace(device="cpu", threads=1, batch_size=8))
    assert pipes["lrfer_default_half"].classifier.reading == "half"
    with pytest.raises(Exception, match="no reading 'nope'"):
        suite.build_models(argparse.Namespace(models="default:nope", checkpoint=None, device="cpu", peers_dir="none"), print)
