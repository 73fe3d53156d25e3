"""Hostile output paths and numbers (issue 28): every output flag that cannot be written is one
line naming the flag, before any work, with the user's files as they were; a finished run
replaces its outputs whole, leaving no temporary file; a number out of range is one line naming
its flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lrfer.cli import main
from tests.cli.test_cli import tiny_checkpoint
from tests.conftest import make_faceset
from tests.hostile.test_cli_inputs import SCENE, VIDEO, one_line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    faces = make_faceset(28, classes=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    data = root / "faces.npz"
    np.savez(data, images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), usage=faces.split)
    return {"data": data, "ckpt": tiny_checkpoint(root / "tiny.safetensors", width=4, blocks=[1])}


# {file} is an existing file of the user's, {dir} an existing folder, {tmp} the test's folder
CANNOT_WRITE = [
    (["export", "--checkpoint", "{ckpt}", "--onnx", "{dir}"], "--onnx"),
    (["export", "--checkpoint", "{ckpt}", "--onnx", "{file}/m.onnx"], "--onnx"),
    (["export", "--checkpoint", "{ckpt}", "--onnx", "{tmp}/m.onnx", "--int8", "{file}/q.onnx", "--data", "{data}"], "--int8"),
    (["export", "--checkpoint", "{ckpt}", "--onnx", "{tmp}/m.onnx", "--int8", "{tmp}/q.onnx"], "--int8"),
    (["calibrate", "--checkpoint", "{ckpt}", "--data", "{data}", "--out", "{file}/c.safetensors", "--no-progress"], "--out"),
    (["calibrate", "--checkpoint", "{ckpt}", "--data", "{data}", "--out", "{dir}", "--no-progress"], "--out"),
    (["predict", SCENE, "--csv", "{file}/rows.csv"], "--csv"),
    (["predict", SCENE, "--json", "{dir}"], "--json"),
    (["video", VIDEO, "--out", "{dir}"], "--out"),
    (["video", VIDEO, "--json", "{dir}"], "--json"),
    (["video", VIDEO, "--summary", "{dir}"], "--summary"),
    (["train-sr", "--data", "{data}", "--out", "{file}"], "--out"),
    (["evaluate", "--data", "{data}", "--checkpoint", "{ckpt}", "--out", "{file}/report"], "--out"),
    (["sweep", "--data", "{data}", "--checkpoint", "{ckpt}", "--out", "{file}/sweep"], "--out"),
]


@pytest.mark.parametrize("argv, flag", CANNOT_WRITE, ids=[f"{a[0]}{flag}-{a[a.index(flag) + 1].strip('{}').split('}')[0]}" for a, flag in CANNOT_WRITE])
def test_an_output_that_cannot_be_written(tmp_path, capsys, files, argv, flag):
    user_file, user_dir = tmp_path / "mine.txt", tmp_path / "mine"
    user_file.write_text("keep me")
    user_dir.mkdir()
    (tmp_path / "m.onnx").write_bytes(b"the user's earlier model")
    fill = {"file": user_file, "dir": user_dir, "tmp": tmp_path, **files}
    code, line = one_line(capsys, *[str(a).format(**fill) for a in argv])
    assert code == 2 and flag in line and line.startswith("lrfer: error: "), line
    assert user_file.read_text() == "keep me" and not any(user_dir.iterdir())
    assert (tmp_path / "m.onnx").read_bytes() == b"the user's earlier model"  # checked before the export
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "mine", "mine.txt"]


def test_a_run_folder_that_holds_a_run(tmp_path, capsys, files):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.safetensors").write_bytes(b"an earlier run's checkpoint")
    (run / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    code, line = one_line(capsys, "train", "--model", "resnet18_fer_slim", "--data", files["data"], "--out", run, "--no-progress")
    assert code == 2 and str(run) in line and "--resume" in line and "epoch 2 done" in line, line
    assert (run / "last.safetensors").read_bytes() == b"an earlier run's checkpoint"


def test_finished_runs_replace_their_outputs_whole(tmp_path, capsys, files):
    """Annotated photos, an evaluation report and its figure: replaced, not left beside temporary files."""
    ann, rep = tmp_path / "annotated", tmp_path / "report"
    ann.mkdir()
    rep.mkdir()
    Image.new("RGB", (4, 4)).save(ann / "far_scene.png")
    (rep / "report.json").write_text("old")
    assert main(["predict", str(SCENE), "--annotate", str(ann)]) == 0
    assert Image.open(ann / "far_scene.png").size == (640, 480)
    argv = ["evaluate", "--data", str(files["data"]), "--checkpoint", str(files["ckpt"]), "--out", str(rep), "--no-latency", "--no-progress"]
    assert main(argv) == 0
    assert "accuracy" in json.loads((rep / "report.json").read_text())
    assert sorted(p.name for p in ann.iterdir()) == ["far_scene.png"]
    assert sorted(p.name for p in rep.iterdir()) == ["confusion.png", "report.json", "risk_coverage.png"]
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, name",
    [
        (["predict", SCENE, "--margin", "nan"], "--margin"),
        (["predict", SCENE, "--min-score", "-0.1"], "--min-score"),
        (["predict", SCENE, "--upscale", "inf"], "upscale"),
        (["predict", SCENE, "--upscale", "0"], "upscale"),
        (["predict", SCENE, "--min-face", "1.5"], "--min-face"),
        (["video", VIDEO, "--max-frames", "1e3"], "--max-frames"),
        (["video", VIDEO, "--alpha", "-1"], "--alpha"),
        (["video", VIDEO, "--window", "-3"], "--window"),
        (["train", "--data", "x.npz", "--limit-train", "0"], "--limit-train"),
        (["train", "--data", "x.npz", "--lr", "1e400"], "--lr"),
        (["train", "--data", "x.npz", "--time-budget", "0"], "--time-budget"),
        (["train", "--data", "x.npz", "--fold-seed", "nan"], "--fold-seed"),
        (["train", "--data", "x.npz", "--folds", "0"], "--folds"),
        (["train-sr", "--data", "x.npz", "--scale", "5"], "--scale"),
        (["train-sr", "--data", "x.npz", "--epochs", "-2"], "--epochs"),
        (["sweep", "--data", "x.npz", "--sizes", "0,8"], "--sizes"),
        (["sweep", "--data", "x.npz", "--sizes", "8,nan"], "--sizes"),
    ],
)
def test_numbers_out_of_range(capsys, argv, name):
    code, line = one_line(capsys, *argv)
    assert code == 2 and name in line, line


def test_export_without_a_checkpoint_exports_the_shipped_model(tmp_path, capsys):
    """It failed with "cannot export a NoneType" though the help says it exports the shipped model."""
    out = tmp_path / "m.onnx"
    out.write_bytes(b"the user's earlier model")
    assert main(["export", "--onnx", str(out)]) == 0
    assert out.stat().st_size > 100_000 and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
    assert "Traceback" not in capsys.readouterr().err
