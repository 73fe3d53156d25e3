"""`lrfer calibrate --coverage/--train-split`, then `lrfer predict --abstain --prior` on both
backends, and `lrfer evaluate`'s risk-coverage (docs/trust.md)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.models.checkpoint import load_checkpoint
from lrfer.runtime.decision import rule_from
from tests.cli.test_cli import assert_clean_error, fer_csv, run, tiny_checkpoint  # noqa: F401 (fer_csv: a fixture)
from tests.conftest import make_faceset

pytest.importorskip("onnxruntime")
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture
def calibrated(capsys, tmp_path, fer_csv):  # noqa: F811
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    code, out, err = run(capsys, "calibrate", "--checkpoint", str(ck), "--data", str(fer_csv), "--split", "PublicTest",
                         "--coverage", "0.5", "--uncertain-below", "16", "--train-split", "Training", "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "abstention: uncertain below confidence" in out and "training class shares" in out
    return ck


def test_calibrate_stores_the_rule_and_the_training_shares(calibrated, fer_csv):  # noqa: F811
    spec = load_checkpoint(calibrated).spec
    rule = rule_from(spec["abstain"])
    assert rule.min_face == 16 and 0 < rule.min_confidence < 1
    assert spec["abstain"]["chosen"]["coverage"] >= 0.5 and spec["abstain"]["chosen"]["split"] == "PublicTest"
    labels = [int(line.split(",")[0]) for line in fer_csv.read_text().splitlines()[1:13]]  # the 12 Training rows
    counts = np.bincount(labels, minlength=7)
    shares = spec["class_prior"]["shares"]
    # classes the Training rows lack would make a prior impossible: the fixture has them all or calibrate refused
    assert [shares[c] for c in CLASSES] == pytest.approx(counts / counts.sum(), abs=1e-6)
    assert set(spec["class_prior"]["em_calibration"]["bias"]) == set(CLASSES)


def _faces(folder: Path, n: int = 12) -> list[Path]:
    faces = make_faceset(n, classes=CLASSES, seed=3)
    folder.mkdir()
    paths = [folder / f"f{i}.png" for i in range(n)]
    for p, img in zip(paths, faces.images[:, 0].numpy()):
        Image.fromarray(img).save(p)
    return paths


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_both_backends_apply_the_stored_rule_and_the_prior(capsys, tmp_path, calibrated):
    _faces(tmp_path / "faces")
    got = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / f"{backend}.csv"
        code, _, err = run(capsys, "predict", str(tmp_path / "faces"), "--no-detect", "--checkpoint", str(calibrated), "--backend", backend,
                           "--abstain", "--prior", "neutral=0.5,happy=0.25", "--csv", str(out))  # fmt: skip
        assert code == 0, err
        got[backend] = _rows(out)
    rule = rule_from(load_checkpoint(calibrated).spec["abstain"])
    for a, b in zip(got["torch"], got["onnx"]):
        assert (a["file"], a["label"], a["uncertain"]) == (b["file"], b["label"], b["uncertain"])
        probs = np.array([[float(a[f"p_{c}"]) for c in CLASSES]])
        assert a["uncertain"] == str(bool(rule.uncertain(probs, [int(a["size"])])[0]))
    # with the rule's confidence threshold lifted to 1, every face is uncertain; without --abstain, none
    code, out, _ = run(capsys, "predict", str(tmp_path / "faces"), "--no-detect", "--checkpoint", str(calibrated), "--min-confidence", "1")
    assert code == 0 and out.count("True") == 12
    code, out, _ = run(capsys, "predict", str(tmp_path / "faces"), "--no-detect", "--checkpoint", str(calibrated))
    assert code == 0 and "uncertain" in out.splitlines()[0] and "True" not in out


def test_the_prior_moves_answers_toward_the_common_class(capsys, tmp_path, calibrated):
    """A prior that makes one class nearly certain turns every answer to it, whichever class it is
    (a random tiny model may already favour one class, so the test goes both ways)."""
    _faces(tmp_path / "faces")
    for common in ("neutral", "happy"):
        code, _, err = run(capsys, "predict", str(tmp_path / "faces"), "--no-detect", "--checkpoint", str(calibrated), "--prior", f"{common}=0.999", "--json", str(tmp_path / "p.json"))
        assert code == 0, err
        rows = json.loads((tmp_path / "p.json").read_text())
        assert [r["label"] for r in rows] == [common] * 12


def test_trust_options_refuse_what_the_model_cannot_do(capsys, tmp_path, calibrated):
    _faces(tmp_path / "faces", 2)
    bare = tiny_checkpoint(tmp_path / "bare.safetensors", width=4, blocks=(1,))
    for args, what in (
        (["--checkpoint", str(bare), "--prior", "neutral=0.5"], "training class shares"),
        (["--checkpoint", str(bare), "--abstain"], "no stored abstention rule"),
        (["--checkpoint", str(calibrated), "--prior", "calm=0.5"], "no class 'calm'"),
        (["--checkpoint", str(calibrated), "--prior", "neutral=0.8,happy=0.5"], "add up to"),
    ):
        code, _, err = run(capsys, "predict", str(tmp_path / "faces"), "--no-detect", *args)
        assert_clean_error(code, err, what)


def test_evaluate_reports_risk_coverage(capsys, tmp_path, calibrated):
    faces = make_faceset(40, classes=CLASSES)
    np.savez(tmp_path / "d.npz", images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes))
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(calibrated), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "ev"), "--no-progress", "--no-latency")
    assert code == 0, err
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    rc = rep["risk_coverage"]
    assert rc["at"][0]["accuracy"] == pytest.approx(rep["accuracy"]) and rc["curve"][-1]["coverage"] == 1.0
    assert (tmp_path / "ev" / "risk_coverage.png").stat().st_size > 1000
    assert "risk-coverage" in out
