"""The runtime's tests: they run in the full environment, and again (``make test-runtime``) in one
made by ``pip install .`` alone, where ``LRFER_RUNTIME_ONLY=1`` and PyTorch must not be importable.
Nothing here may import torch: the root conftest (which does) is cut off by ``--confcutdir``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "examples" / "far_scene.png"
VIDEO = ROOT / "examples" / "far_scene.mp4"
RUNTIME_ONLY = bool(os.environ.get("LRFER_RUNTIME_ONLY"))
HAS_TORCH = importlib.util.find_spec("torch") is not None


def lrfer(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    """``lrfer ARGS`` in a fresh interpreter of this environment."""
    return subprocess.run([sys.executable, "-m", "lrfer", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


@pytest.fixture(scope="session", autouse=True)
def _private_onnx_cache(tmp_path_factory):
    """Exports made by the onnx/auto backends go to a throwaway cache, not the user's ~/.cache
    (the root conftest, which the runtime environment cannot load, imports this one)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("LRFER_CACHE", str(tmp_path_factory.mktemp("lrfer-cache")))
    yield
    mp.undo()
