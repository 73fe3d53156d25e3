"""The inference path without PyTorch: photos, video, the outputs' schemas and bad input."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys

import av
import numpy as np
import pytest

from lrfer.infer.recognizer import PHOTO_FIELDS, VIDEO_FIELDS
from tests.runtime.conftest import HAS_TORCH, RUNTIME_ONLY, SCENE, VIDEO, lrfer

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def columns(fields) -> list[str]:
    """A face row's CSV columns: ``probabilities`` becomes one ``p_<class>`` column per class."""
    out = []
    for f in fields:
        out += [f"p_{c}" for c in CLASSES] if f == "probabilities" else [f]
    return out


def test_this_environment_has_no_torch():
    if not RUNTIME_ONLY:
        pytest.skip("the full environment has torch; `make test-runtime` runs this where it must not")
    assert importlib.util.find_spec("torch") is None


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["predict", "--help"], ["video", "--help"]])
def test_commands_start_without_importing_torch(argv):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['lrfer', *{argv!r}]\n"
        "try:\n    runpy.run_module('lrfer', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "bad = sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules)\n"
        "assert not bad, f'imported {bad}'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]


def test_recognizer_on_the_example_scene_imports_no_torch():
    code = (
        "import sys\nfrom lrfer import Recognizer\n"
        f"faces = Recognizer(upscale='auto').predict({str(SCENE)!r})\n"
        "assert len(faces) >= 3, faces\n"
        "assert 'torch' not in sys.modules\n"
        "print(len(faces), faces[0].label)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


def test_predict_json_and_csv_schemas(tmp_path):
    r = lrfer("predict", SCENE, "--json", tmp_path / "faces.json")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "faces.json").read_text())
    faces = [row for row in rows if row["status"] == "ok"]
    assert len(faces) >= 3
    for row in faces:
        assert set(row) == set(PHOTO_FIELDS), sorted(row)
        assert set(row["probabilities"]) == set(CLASSES) and abs(sum(row["probabilities"].values()) - 1) < 1e-3
        assert row["label"] == max(row["probabilities"], key=row["probabilities"].get)
        assert 0 <= row["x1"] < row["x2"] <= row["width"] and 0 <= row["y1"] < row["y2"] <= row["height"]
    r = lrfer("predict", SCENE, "--csv", tmp_path / "faces.csv")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "faces.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == columns(PHOTO_FIELDS)
    assert [t["label"] for t in table] == [row["label"] for row in rows]


def test_video_csv_summary_and_annotated_video(tmp_path):
    out = tmp_path / "out.mp4"
    r = lrfer("video", VIDEO, "--csv", tmp_path / "v.csv", "--out", out, "--summary", tmp_path / "s.json", "--max-frames", 20, "--no-progress")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "v.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == columns(VIDEO_FIELDS)
    frames = {int(t["frame"]) for t in table}
    assert frames <= set(range(20)) and len(frames) >= 15
    tracks = {t["track_id"] for t in table}
    assert 3 <= len(tracks) <= 6, tracks  # three faces in the scene: each keeps (about) one track
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary  # one entry per track
    with av.open(str(out)) as c:
        decoded = [fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)]
    assert len(decoded) == 20 and decoded[0].shape[2] == 3 and np.std(decoded[0]) > 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["predict", "no-such-photo.png"], "no such file"),
        (["video", "no-such-clip.mp4"], "no such"),
        (["predict", SCENE, "--checkpoint", "model.onnx"], "no such ONNX model"),
        (["predict", SCENE, "--detector", "yunett"], "unknown face detector"),
        (["predict", SCENE, "--upscale", "0"], "upscale"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    r = lrfer(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_a_broken_file_in_a_batch_gets_its_row(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    r = lrfer("predict", SCENE, tmp_path / "broken.png", "--json", tmp_path / "rows.json")
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert [row["status"].startswith("not a readable image") for row in rows if row["file"].endswith("broken.png")] == [True]
    assert sum(row["status"] == "ok" for row in rows) >= 3


def test_a_video_that_is_not_one(tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(b"\x00" * 1000)
    r = lrfer("video", fake, "--no-progress")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


@pytest.mark.skipif(HAS_TORCH, reason="checks the message given where PyTorch is missing")
@pytest.mark.parametrize("extra", [["--checkpoint", "src/lrfer/assets/default/model.safetensors"], ["--backend", "torch"]])
def test_torch_only_options_say_what_to_install(extra):
    r = lrfer("predict", SCENE, *extra)
    assert r.returncode == 2 and "lrfer[train]" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_an_exported_model_runs_by_path(tmp_path):
    from lrfer.runtime.onnx import DEFAULT_ONNX

    r = lrfer("predict", SCENE, "--checkpoint", DEFAULT_ONNX, "--json", tmp_path / "a.json")
    assert r.returncode == 0, r.stderr
    s = lrfer("predict", SCENE, "--json", tmp_path / "b.json")
    assert s.returncode == 0, s.stderr
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())


@pytest.mark.skipif(HAS_TORCH, reason="checks the message given where PyTorch is missing")
@pytest.mark.parametrize("argv", [["export", "--onnx", "m.onnx"], ["evaluate", "--data", "faces.npz"], ["train", "--data", "faces.npz"]])
def test_training_commands_say_which_extra_to_install(argv, tmp_path):
    r = lrfer(*argv)
    assert r.returncode == 2 and "pip install 'lrfer[train]'" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_reading_of_the_shipped_model_runs_without_torch(tmp_path):
    """The shipped ONNX carries the readings' heads and the embedding they read."""
    r = lrfer("predict", SCENE, "--reading", "crowd", "--json", tmp_path / "crowd.json")
    assert r.returncode == 0, r.stderr
    s = lrfer("predict", SCENE, "--json", tmp_path / "own.json")
    assert s.returncode == 0, s.stderr
    crowd, own = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("crowd", "own"))
    box = lambda f: (f["x1"], f["y1"], f["x2"], f["y2"])
    assert [box(f) for f in crowd] == [box(f) for f in own] and own  # the same faces, read by another head
    assert any(abs(a["confidence"] - b["confidence"]) > 1e-3 for a, b in zip(crowd, own))
    bad = lrfer("predict", SCENE, "--reading", "nope")
    assert bad.returncode == 2 and "no reading 'nope'" in bad.stderr and "Traceback" not in bad.stderr
