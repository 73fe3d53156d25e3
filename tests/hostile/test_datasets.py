"""Hostile datasets through ``lrfer evaluate --data`` (issue 28): every reader's broken file is one
line naming it and saying what to do, exit 2, before any work, and the report of an earlier run
in ``--out`` keeps its bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.cli.test_cli import tiny_checkpoint
from tests.conftest import make_faceset
from tests.hostile.test_cli_inputs import one_line

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _faces():
    faces = make_faceset(14, classes=CLASSES)
    return faces.images[:, 0].numpy(), faces.labels.numpy()


def _csv(path: Path, rows: list[str], header: str = "emotion,pixels,Usage") -> None:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))


def _good_rows() -> list[str]:
    images, labels = _faces()
    return [f"{y},{' '.join(map(str, im.ravel()))},PublicTest" for im, y in zip(images, labels)]


def _npz(path: Path, **arrays) -> None:
    images, labels = _faces()
    base = {"images": images, "labels": labels, "class_names": np.array(CLASSES)}
    np.savez(path, **{k: v for k, v in {**base, **arrays}.items() if v is not None})


CSV_CASES = {
    "bad-bytes": lambda p: p.write_bytes(b"emotion,pixels,Usage\n0," + b"\xff\xfe" * 8 + b",PublicTest\n"),
    "wrong-pixel-count": lambda p: _csv(p, [*_good_rows()[:3], "0,1 2 3,PublicTest"]),
    "not-numbers": lambda p: _csv(p, [*_good_rows()[:3], "0," + " ".join(["x"] * 2304) + ",PublicTest"]),
    "label-out-of-range": lambda p: _csv(p, [*_good_rows()[:3], "9," + _good_rows()[0].split(",")[1] + ",PublicTest"]),
    "header-only": lambda p: _csv(p, []),
    "missing-pixels-column": lambda p: _csv(p, ["0,PublicTest"], header="emotion,Usage"),
}

NPZ_CASES = {
    "object-array": lambda p: _npz(p, images=np.array([object(), 1], dtype=object)),
    "no-labels": lambda p: _npz(p, labels=None),
    "no-images": lambda p: _npz(p, images=None),
    "float-pixels": lambda p: _npz(p, images=_faces()[0].astype(np.float64) * 1e9),
    "complex-pixels": lambda p: _npz(p, images=_faces()[0].astype(np.complex64)),
    "rows-mismatch": lambda p: _npz(p, labels=_faces()[1][:5]),
    "label-out-of-range": lambda p: _npz(p, labels=_faces()[1] + 50),
    "negative-label": lambda p: _npz(p, labels=_faces()[1] - 5),
    "one-dimensional-images": lambda p: _npz(p, images=_faces()[0].ravel()),
    "no-rows": lambda p: _npz(p, images=_faces()[0][:0], labels=_faces()[1][:0]),
    "truncated": lambda p: (_npz(p), p.write_bytes(p.read_bytes()[:400])),
}

NPZ_BUGS = {  # found here, fixed in data/readers: numpy's advice to load a file 'unsafely' is not passed on; string labels are one line
    "text-renamed": lambda p: p.write_text("hello\n"),
    "string-labels": lambda p: _npz(p, labels=np.array(["x"] * 14)),
}


def _folder_without_images(root: Path) -> None:
    (root / "happy").mkdir(parents=True)
    (root / "happy" / "notes.txt").write_text("no faces here")


def _folder_with_an_empty_image(root: Path) -> None:
    (root / "happy").mkdir(parents=True)
    (root / "happy" / "a.png").write_bytes(b"")


FOLDER_CASES = {
    "empty-folder": lambda p: p.mkdir(),
    "class-folders-without-images": _folder_without_images,
    "a-zero-byte-image": _folder_with_an_empty_image,
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors", width=4, blocks=[1])


def _params():
    for name in CSV_CASES:
        yield pytest.param("fer2013.csv", CSV_CASES[name], id=f"csv-{name}")
    for name in NPZ_CASES:
        yield pytest.param("faces.npz", NPZ_CASES[name], id=f"npz-{name}")
    for name, make in NPZ_BUGS.items():
        yield pytest.param("faces.npz", make, id=f"npz-{name}")
    for name in FOLDER_CASES:
        yield pytest.param("faces", FOLDER_CASES[name], id=f"folder-{name}")


@pytest.mark.parametrize("name, make", list(_params()))
def test_a_broken_dataset(tmp_path, capsys, checkpoint, name, make):
    data = tmp_path / name
    make(data)
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").write_text('{"accuracy": "of an earlier run"}')
    code, line = one_line(capsys, "evaluate", "--data", data, "--checkpoint", checkpoint, "--out", out, "--no-latency", "--no-progress")
    assert code == 2 and line.startswith("lrfer: error: ") and str(data) in line, line
    assert "unsafe" not in line and "trust the file" not in line, line  # never advice to switch a safety check off
    assert ". " in line.split(str(data), 1)[1], line  # what is wrong. What to do
    assert [p.name for p in out.iterdir()] == ["report.json"] and "earlier run" in (out / "report.json").read_text()
