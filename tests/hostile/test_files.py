"""Hostile files (issue 28, a first slice): broken datasets and checkpoints are one line naming the
file, exit code 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.hostile.test_cli_inputs import SCENE, one_line


def npz_with_object_images(path: Path) -> None:
    np.savez(path, images=np.array([object(), 1], dtype=object), labels=np.array([0, 1]), class_names=np.array(["a", "b"]))


def truncated_npz(path: Path) -> None:
    np.savez(path.with_suffix(".full.npz"), images=np.zeros((4, 48, 48), np.uint8), labels=np.zeros(4, np.int64), class_names=np.array(["a"]))
    path.write_bytes(path.with_suffix(".full.npz").read_bytes()[:300])


def non_utf8_csv(path: Path) -> None:
    path.write_bytes(b"emotion,pixels,Usage\n0," + b"\xff\xfe" * 10 + b",Training\n")


@pytest.mark.parametrize("make, name", [(npz_with_object_images, "faces.npz"), (truncated_npz, "faces.npz"), (non_utf8_csv, "fer2013.csv")])
def test_broken_datasets(tmp_path, capsys, make, name):
    path = tmp_path / name
    make(path)
    code, line = one_line(capsys, "data", "info", path, "--no-progress")
    assert code == 2 and str(path) in line and line.startswith("lrfer: error: "), line


@pytest.mark.parametrize(
    "description",
    ["{not json", "[1, 2]", '"a string"', "[" * 200_000 + "]" * 200_000, json.dumps({"format": "something-else/9"})],
    ids=["not-json", "a-list", "a-string", "nested-200000-deep", "foreign-format"],
)
def test_checkpoints_with_a_bad_description(tmp_path, capsys, description):
    path = tmp_path / "model.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(path), metadata={"lrfer": description})
    code, line = one_line(capsys, "predict", SCENE, "--checkpoint", path)
    assert code == 2 and str(path) in line and line.startswith("lrfer: error: "), line


def _edited_checkpoint(tmp_path, edit) -> Path:
    """A real (tiny) checkpoint whose model description ``edit`` changes in place."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    from tests.cli.test_cli import tiny_checkpoint

    path = tiny_checkpoint(tmp_path / "ok.safetensors", width=4, blocks=[1])
    with safe_open(str(path), "np") as f:
        meta = json.loads(f.metadata()["lrfer"])
    edit(meta)
    out = tmp_path / "edited.safetensors"
    save_file(load_file(str(path)), str(out), metadata={"lrfer": json.dumps(meta)})
    return out


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["model"].pop("name"),
        lambda m: m["model"]["kwargs"].update(bogus=1),
        lambda m: m["model"].update(classes=["a", "b"]),
        lambda m: m.update(model=[1]),
        lambda m: m["model"].update(num_classes="seven"),
    ],
    ids=["no-model-name", "unknown-keyword", "classes-do-not-match-the-weights", "description-is-a-list", "num-classes-not-a-number"],
)
def test_checkpoints_with_an_edited_model_description(tmp_path, capsys, edit):
    path = _edited_checkpoint(tmp_path, edit)
    code, line = one_line(capsys, "predict", SCENE, "--checkpoint", path)
    assert code == 2 and str(path) in line and line.startswith("lrfer: error: "), line
