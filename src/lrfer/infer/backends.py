"""Inference backends: an ONNX Runtime session (:class:`lrfer.runtime.onnx.OnnxClassifier`) or the
PyTorch :class:`lrfer.predict.classifier.FaceClassifier`, behind one loader.

The runtime path needs no PyTorch: the shipped default model ships as ONNX beside its checkpoint,
and any ``.onnx`` from ``lrfer export`` runs as it is. PyTorch is imported only when something
asks for it: ``backend="torch"``, a GPU, or a ``.safetensors`` checkpoint (exported to ONNX once
and cached). Those imports sit inside the functions below on purpose: importing torch costs
seconds and 650 MB, and a ``pip install lrfer`` without the ``train`` extra has no torch at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import LrferError, closest
from ..files import sha256_file
from ..runtime.classifier import SizedClassifier
from ..runtime.gpu import TRAIN_HINT, has_torch, wants_gpu
from ..runtime.onnx import OnnxClassifier

BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
PathLike = Union[str, os.PathLike]

__all__ = ["BACKENDS", "OnnxClassifier", "SizedClassifier", "load_classifier", "onnx_cache_path"]


def load_classifier(
    path: Optional[PathLike] = None,
    backend: str = "auto",
    device: Any = None,
    *,
    threads: Optional[int] = None,
    reading: Optional[str] = None,
) -> SizedClassifier:
    """A classifier from an export (``.onnx``) or a checkpoint (``.safetensors``).

    ``path=None`` is the shipped default model. ``backend``:
    - ``"onnx"``: ONNX Runtime; the default model runs from its shipped ``.onnx``, a checkpoint
      is exported once and kept in the user cache (:func:`onnx_cache_path`);
    - ``"torch"``: PyTorch on ``device`` (needs the ``train`` extra);
    - ``"auto"``: ONNX Runtime on the CPU, where it runs these small convnets several times faster
      than eager PyTorch with the same outputs (tested to 1e-4), PyTorch on a GPU; a checkpoint
      the exporter cannot handle falls back to PyTorch.

    A ``.onnx`` file always runs on ONNX Runtime, since PyTorch cannot read it. ``threads`` sets
    the ONNX Runtime thread count (the torch backend uses torch's setting). ``reading``: one of the
    model's stored readings (docs/trust.md) instead of its own head; ``None`` keeps its own.
    """
    if backend not in BACKENDS:
        raise LrferError(f"unknown backend '{backend}'", closest(backend, BACKENDS))
    if path is not None and str(path).lower().endswith(".onnx"):
        return OnnxClassifier.load(path, threads=threads, device=device, reading=reading)
    if backend == "torch" or (backend == "auto" and wants_gpu(device)):
        return _torch_classifier(path, device, reading)
    if path is None:
        return OnnxClassifier.load(None, threads=threads, device=device, reading=reading)
    clf = _torch_classifier(path, "cpu")  # the export carries every reading; the session picks one
    try:
        return OnnxClassifier.load(_cached_export(clf), threads=threads, reading=reading)
    except LrferError:
        if backend == "onnx":
            raise
        # the exporter cannot handle this model: PyTorch gives the same answers, slower
        return _torch_classifier(path, "cpu", reading)


def _torch_classifier(path: Optional[PathLike], device: Any, reading: Optional[str] = None):
    """The PyTorch classifier for ``path`` (``None``: the shipped checkpoint); imports torch."""
    if not has_torch():
        what = f"{path} is a PyTorch checkpoint" if path is not None else "the torch backend needs PyTorch"
        raise LrferError(f"{what} and PyTorch is not installed", f"{TRAIN_HINT}, or use its ONNX export (`lrfer export --onnx model.onnx --checkpoint ...`)")
    from ..predict.classifier import FaceClassifier

    return FaceClassifier.load(path, device, reading)


def onnx_cache_path(checkpoint: Path) -> Path:
    """Where the ONNX export of ``checkpoint`` is kept: ``$LRFER_CACHE`` or ``~/.cache/lrfer``,
    named by the checkpoint's content hash, so an edited checkpoint is never served a stale export."""
    root = Path(os.environ.get("LRFER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lrfer")
    return root / "onnx" / f"{checkpoint.stem}-{sha256_file(checkpoint)[:16]}.onnx"


def _cached_export(clf) -> Path:
    from ..export.onnx import UnwritablePathError, export_onnx  # torch: only a checkpoint gets here

    target = onnx_cache_path(Path(clf.checkpoint.path))
    if not target.exists():
        try:
            export_onnx(clf, target)
        except UnwritablePathError:
            # A read-only home: export to a temporary folder for this process instead.
            target = export_onnx(clf, Path(tempfile.mkdtemp(prefix="lrfer-onnx-")) / target.name)
    return target
