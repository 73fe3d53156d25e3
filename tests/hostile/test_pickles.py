"""Pickles given wherever lrfer takes a weights file (issue 28): never run, one line naming the
file, no advice to turn the safety check off (PyTorch's "set weights_only=False"), exit 2.

Each pickle, if unpickled, would create a marker file: the test asserts it never appears."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from lrfer import Recognizer
from lrfer.errors import LrferError
from tests.cli.test_cli import tiny_checkpoint
from tests.conftest import make_faceset
from tests.hostile.test_cli_inputs import SCENE, VIDEO, one_line


class _Payload:
    """Unpickling this runs ``touch MARKER``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def write_pickle(path: Path, marker: Path) -> Path:
    """A torch-style file whose "state dict" is the payload (the usual shape of a booby-trapped .pth)."""
    path.write_bytes(pickle.dumps({"state_dict": {"conv1.weight": _Payload(marker)}}, protocol=2))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pickles")
    faces = make_faceset(28, classes=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"), splits=("Training", "PublicTest"))
    data = root / "faces.npz"
    np.savez(data, images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), usage=faces.split)
    recipe = root / "tiny.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nbatch_size = 4\nepochs = 1\n')
    return {"data": data, "recipe": recipe, "ckpt": tiny_checkpoint(root / "tiny.safetensors", width=4, blocks=[1])}


# (command line, the pickle's file name); {pk} is the pickle, {data}/{recipe}/{ckpt}/{out} the fixtures
ROUTES = [
    (["predict", SCENE, "--checkpoint", "{pk}"], "evil.pt"),
    (["predict", SCENE, "--route", "16={pk}"], "evil.pth"),
    (["video", VIDEO, "--checkpoint", "{pk}", "--no-progress"], "evil.pth"),
    (["evaluate", "--data", "{data}", "--checkpoint", "{pk}", "--out", "{out}", "--no-progress"], "evil.pt"),
    (["sweep", "--data", "{data}", "--checkpoint", "{pk}", "--out", "{out}", "--no-progress"], "evil.pt"),
    (["sweep", "--data", "{data}", "--member", "{ckpt}", "--member", "{pk}", "--out", "{out}", "--no-progress"], "evil.pth"),
    (["calibrate", "--data", "{data}", "--checkpoint", "{pk}", "--out", "{out}.safetensors", "--no-progress"], "evil.pt"),
    (["export", "--checkpoint", "{pk}", "--onnx", "{out}.onnx"], "evil.pt"),
    (["train", "--recipe", "{recipe}", "--data", "{data}", "--init-weights", "{pk}", "--out", "{out}", "--no-progress"], "evil.pth"),
    (["train", "--recipe", "{recipe}", "--data", "{data}", "--init-weights", "{pk}", "--out", "{out}", "--no-progress"], "evil.safetensors"),
    (["train", "--recipe", "{recipe}", "--data", "{data}", "--teacher", "{pk}", "--out", "{out}", "--no-progress"], "evil.pt"),
    (["train", "--recipe", "{recipe}", "--data", "{data}", "--front-sr", "{pk}", "--out", "{out}", "--no-progress"], "evil.pt"),
    (["train-sr", "--data", "{data}", "--scale", "4", "--init-from", "{pk}", "--out", "{out}", "--epochs", "1", "--no-progress"], "evil.pt"),
    (["train-sr", "--data", "{data}", "--gan", "--feature-net", "{pk}", "--out", "{out}", "--epochs", "1", "--no-progress"], "evil.pth"),
]


def _route_id(argv: list, name: str) -> str:
    flag = next(str(a) for a, b in zip(argv, argv[1:]) if "{pk}" in str(b))
    return f"{argv[0]}{flag}-{name}"


@pytest.mark.parametrize("argv, name", ROUTES, ids=[_route_id(a, n) for a, n in ROUTES])
def test_a_pickle_is_never_run(tmp_path, capsys, files, argv, name):
    marker = tmp_path / "PAYLOAD-RAN"
    pk = write_pickle(tmp_path / name, marker)
    fill = {"pk": pk, "out": tmp_path / "out", **files}
    code, line = one_line(capsys, *[str(a).format(**fill) for a in argv])
    assert not marker.exists()
    assert code == 2 and str(pk) in line and line.startswith("lrfer: error: "), line
    assert "weights_only" not in line and "unsafe" not in line and "arbitrary code" not in line, line


def test_a_pickle_as_the_checkpoint_to_resume(tmp_path, capsys, files):
    """A run folder whose last.safetensors was swapped for a pickle: --resume refuses it, unrun."""
    marker = tmp_path / "PAYLOAD-RAN"
    run = tmp_path / "run"
    run.mkdir()
    write_pickle(run / "last.safetensors", marker)
    code, line = one_line(capsys, "train", "--recipe", files["recipe"], "--data", files["data"], "--out", run, "--resume", "--no-progress")
    assert not marker.exists()
    assert code == 2 and str(run / "last.safetensors") in line, line


def test_a_pickle_given_to_the_api(tmp_path):
    marker = tmp_path / "PAYLOAD-RAN"
    pk = write_pickle(tmp_path / "evil.pt", marker)
    with pytest.raises(LrferError, match="evil.pt"):
        Recognizer(str(pk))
    assert not marker.exists()


def test_the_payload_runs_when_unpickled(tmp_path):
    """The control: the same file, unpickled as plain pickle would, does create the marker."""
    marker = tmp_path / "PAYLOAD-RAN"
    pickle.loads(write_pickle(tmp_path / "evil.pt", marker).read_bytes())  # on purpose: the control
    assert marker.exists()
