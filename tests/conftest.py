"""Shared fixtures: the real datasets beside the project, and small synthetic FaceSets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lrfer.data.faceset import FaceSet
from tests.runtime.conftest import _private_onnx_cache  # noqa: F401  (autouse: exports go to a throwaway cache, not ~/.cache)

ROOT_DIR = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT_DIR.parent / "shared" / "data"
FER2013_NPZ = SHARED_DATA / "fer2013.npz"
CKPLUS_NPZ = SHARED_DATA / "ckplus48.npz"


@pytest.fixture(scope="session")
def fer2013_npz() -> Path:
    if not FER2013_NPZ.exists():
        pytest.skip(f"{FER2013_NPZ} is not here")
    return FER2013_NPZ


def make_faceset(n: int = 64, classes=("angry", "happy", "neutral"), size: int = 48, seed: int = 0, splits=("Training", "PublicTest")) -> FaceSet:
    """A small labelled set whose classes differ by a visible pattern (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(classes)
    base = torch.rand(n, 1, size, size, generator=g) * 60
    # class k brightens horizontal band k: a low-frequency cue that survives degradation
    band = size // len(classes)
    for k in range(len(classes)):
        base[labels == k, :, k * band : (k + 1) * band, :] += 150
    split = np.array([splits[i % len(splits)] for i in range(n)])
    return FaceSet(base.clamp(0, 255).to(torch.uint8), labels, tuple(classes), split, name="synthetic")


@pytest.fixture
def tiny_faces() -> FaceSet:
    return make_faceset()
