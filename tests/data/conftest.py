"""Tiny datasets written in their real on-disk formats, for the reader and split tests."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(os.environ.get("LRFER_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
FER_NPZ = SHARED / "fer2013.npz"
CK_NPZ = SHARED / "ckplus48.npz"

FERPLUS_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                  "contempt", "unknown", "NF"]


def face(value: int, size=(48, 48), channels: int = 1, seed: int | None = None) -> np.ndarray:
    """A recognisable image: a constant ``value``, or noise when ``seed`` is given."""
    shape = size + ((channels,) if channels > 1 else ())
    if seed is None:
        return np.full(shape, value, dtype=np.uint8)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_fer_csv(path: Path, rows, header=("emotion", "pixels", "Usage")) -> Path:
    """rows: (label, 48x48 array or pixel string, usage)."""
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            fields = []
            for name, value in zip(header, row):
                if name == "pixels" and not isinstance(value, str):
                    value = " ".join(map(str, np.asarray(value).reshape(-1).tolist()))
                fields.append(str(value))
            f.write(",".join(fields) + "\n")
    return path


def write_ferplus_csv(path: Path, rows) -> Path:
    """rows: (usage, image name, 10 vote counts)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FERPLUS_HEADER)
        for usage, name, votes in rows:
            w.writerow([usage, name, *votes])
    return path


@pytest.fixture
def fer_rows():
    """Six FER2013 rows covering the three usages; rows 1 and 4 are the same image."""
    return [
        (0, face(0, seed=1), "Training"),
        (3, face(0, seed=2), "Training"),
        (6, face(0, seed=3), "Training"),
        (4, face(0, seed=4), "PublicTest"),
        (3, face(0, seed=2), "PublicTest"),
        (5, face(0, seed=5), "PrivateTest"),
    ]


# FERPlus vote rows (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF)
FERPLUS_VOTES = [
    [2, 8, 0, 0, 0, 0, 0, 0, 0, 0],  # 0 happy, clear majority
    [2, 0, 0, 4, 4, 0, 0, 0, 0, 0],  # 1 sad/angry tie
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # 2 not a face (no image name, as in the real file)
    [0, 0, 4, 0, 0, 0, 0, 0, 6, 0],  # 3 unknown wins
    [4, 0, 0, 0, 0, 0, 1, 5, 0, 0],  # 4 contempt, plurality but not majority (single fear vote)
    [0, 0, 3, 0, 0, 0, 6, 0, 1, 0],  # 5 fear, majority
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # 6 no votes at all
]
FERPLUS_USAGE = ["Training", "Training", "Training", "Training", "PublicTest", "PrivateTest", "PrivateTest"]


@pytest.fixture
def ferplus_files(tmp_path):
    """fer2013.csv (image of row k is the constant 10k+5) and a fer2013new.csv whose names drift."""
    rows = [(k % 7, face(10 * k + 5), u) for k, u in enumerate(FERPLUS_USAGE)]
    fer = write_fer_csv(tmp_path / "fer2013.csv", rows)
    # real-file drift: the unnamed NF row is skipped by the running name id, later names are one behind
    names = ["fer0000000.png", "fer0000001.png", "", "fer0000002.png", "fer0000003.png", "fer0000004.png",
             "fer0000005.png"]
    new = write_ferplus_csv(tmp_path / "fer2013new.csv", list(zip(FERPLUS_USAGE, names, FERPLUS_VOTES)))
    return fer, new


@pytest.fixture
def shared_fer():
    if not FER_NPZ.is_file():
        pytest.skip(f"{FER_NPZ} not available")
    return FER_NPZ


@pytest.fixture
def shared_ck():
    if not CK_NPZ.is_file():
        pytest.skip(f"{CK_NPZ} not available")
    return CK_NPZ
