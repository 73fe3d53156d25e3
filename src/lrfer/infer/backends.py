"""Inference backends: the PyTorch :class:`FaceClassifier` or an ONNX Runtime session on an
exported model (:func:`lrfer.export.export_onnx`), behind one surface.

Both prepare faces with the same code (:func:`lrfer.data.transforms.predict_views`: scale,
channels, resize, crop, TTA views, mean over views); only the forward pass differs. The ONNX graph
already contains the model's normalisation, the temperature and the softmax.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Protocol, Union

import numpy as np
import torch

from ..data.faceset import FaceSet
from ..data.transforms import predict_views
from ..device import is_gpu
from ..errors import LrferError, closest
from ..export.onnx import UnwritablePathError, export_onnx, parse_onnx_metadata, require
from ..files import sha256_file
from ..predict.classifier import Classifier, FaceClassifier
from ..progress import Progress

BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
PathLike = Union[str, os.PathLike]


class SizedClassifier(Classifier, Protocol):
    """A :class:`~lrfer.predict.classifier.Classifier` that says which crops it takes: the
    Recognizer cuts faces to ``image_size`` with ``in_chans`` channels. Both back ends are one."""

    in_chans: int
    image_size: int


class OnnxClassifier:
    """An exported classifier run by ONNX Runtime on the CPU (or CUDA where that build is installed).

    Attributes as :class:`FaceClassifier`: ``classes``, ``in_chans``, ``image_size``, ``crop``,
    ``name``, ``temperature`` (already inside the graph), ``device``; plus ``path`` and ``metadata``.
    """

    def __init__(self, session: Any, metadata: dict[str, Any], path: Path):
        self.session = session
        self.metadata = metadata
        self.path = path
        self.classes: tuple[str, ...] = tuple(metadata["classes"])
        self.in_chans: int = metadata["in_chans"]
        self.image_size: int = metadata["image_size"]
        self.crop: Optional[int] = metadata["crop"]
        self.temperature: float = metadata["temperature"]
        self.device = torch.device("cpu")  # where inputs are prepared; the session copies them itself
        graph_input = session.get_inputs()[0]
        self._input = graph_input.name
        batch = graph_input.shape[0]
        self._fixed_batch: int = batch if isinstance(batch, int) else 0
        side = metadata["input_size"]
        if list(graph_input.shape[1:]) != [self.in_chans, side, side]:
            raise LrferError(
                f"{path} takes input {graph_input.shape}, its metadata says ({self.in_chans}, {side}, {side})",
                "export the model again with `lrfer export`",
            )

    @classmethod
    def load(cls, path: PathLike, threads: Optional[int] = None, device: Union[str, torch.device, None] = None) -> "OnnxClassifier":
        """Open an ``.onnx`` file written by :func:`lrfer.export.export_onnx` (or quantized).

        ``threads``: intra-op threads (``None``: onnxruntime's default, one per physical core).
        ``device``: ``"cuda"`` or ``"auto"`` use the CUDA provider when this onnxruntime build has
        it (``onnxruntime-gpu``), the CPU otherwise.
        """
        ort = require("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise LrferError(f"no such ONNX model: {path}", "give the path of a .onnx file written by `lrfer export`")
        if threads is not None and threads < 1:
            raise LrferError(f"threads={threads}", "use 1 or more, or leave it unset")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        providers = _providers(ort, device)
        try:
            session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf / ... types
            first = str(err).splitlines()[0][:200]
            raise LrferError(f"{path} is not a loadable ONNX model ({first})", "export it again with `lrfer export`") from None
        meta = parse_onnx_metadata(dict(session.get_modelmeta().custom_metadata_map), path)
        return cls(session, meta, path)

    @property
    def name(self) -> str:
        return self.metadata["name"]

    def prepare(self, faces: FaceSet) -> FaceSet:
        """Faces in the model's channels and size, labels re-indexed onto the model's classes."""
        return FaceClassifier.prepare(self, faces)  # type: ignore[arg-type]  # needs only in_chans/image_size/classes

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        if not self._fixed_batch:
            return torch.from_numpy(self.session.run(None, {self._input: x})[0])
        # A static-batch export: run in chunks of its batch, the last one padded with zeros.
        b, out = self._fixed_batch, []
        for i in range(0, len(x), b):
            chunk = x[i : i + b]
            if len(chunk) < b:
                chunk = np.concatenate([chunk, np.zeros((b - len(chunk), *chunk.shape[1:]), np.float32)])
            out.append(self.session.run(None, {self._input: chunk})[0])
        return torch.from_numpy(np.concatenate(out)[: len(x)])

    def predict_proba(
        self,
        images: Union[torch.Tensor, np.ndarray],
        *,
        tta: str = "none",
        degrade_to: Optional[int] = None,
        batch_size: Optional[int] = None,
        progress: Optional[Progress] = None,
    ) -> torch.Tensor:
        """Probabilities ``(N, K)`` float32 for uint8 face crops ``(N, C, H, W)`` of any size."""
        return predict_views(
            self._forward, images, num_classes=len(self.classes), in_chans=self.in_chans, batch_size=batch_size,
            tta=tta, crop=self.crop, input_size=self.image_size, degrade_to=degrade_to, progress=progress,
        )  # fmt: skip


def load_classifier(
    path: Optional[PathLike] = None,
    backend: str = "auto",
    device: Union[str, torch.device, None] = None,
    *,
    threads: Optional[int] = None,
) -> SizedClassifier:
    """A classifier from a checkpoint (``.safetensors``) or an export (``.onnx``).

    ``path=None`` is the shipped default model. ``backend``:
    - ``"torch"``: PyTorch on ``device``;
    - ``"onnx"``: ONNX Runtime; a ``.safetensors`` checkpoint is exported once and kept in the
      user cache (:func:`onnx_cache_path`), so later runs start at once;
    - ``"auto"``: ONNX Runtime on the CPU, where it runs these small convnets several times faster
      than eager PyTorch with the same outputs (tested to 1e-4), PyTorch on a GPU; a model the
      exporter cannot handle falls back to PyTorch.

    A ``.onnx`` file always runs on ONNX Runtime, since PyTorch cannot read it. ``threads`` sets
    the ONNX Runtime thread count (the torch backend uses torch's setting).
    """
    if backend not in BACKENDS:
        raise LrferError(f"unknown backend '{backend}'", closest(backend, BACKENDS))
    if path is not None and str(path).lower().endswith(".onnx"):
        return OnnxClassifier.load(path, threads=threads, device=device)
    on_cpu = not is_gpu(device)
    if backend == "torch" or (backend == "auto" and (not on_cpu or not _has_onnxruntime())):
        return FaceClassifier.load(path, device)
    clf = FaceClassifier.load(path, "cpu")
    try:
        return OnnxClassifier.load(_cached_export(clf), threads=threads)
    except LrferError:
        if backend == "onnx":
            raise
        return clf  # the exporter cannot handle this model: PyTorch gives the same answers, slower


def onnx_cache_path(checkpoint: Path) -> Path:
    """Where the ONNX export of ``checkpoint`` is kept: ``$LRFER_CACHE`` or ``~/.cache/lrfer``,
    named by the checkpoint's content hash, so an edited checkpoint is never served a stale export."""
    root = Path(os.environ.get("LRFER_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lrfer")
    return root / "onnx" / f"{checkpoint.stem}-{sha256_file(checkpoint)[:16]}.onnx"


def _cached_export(clf: FaceClassifier) -> Path:
    target = onnx_cache_path(Path(clf.checkpoint.path))
    if not target.exists():
        try:
            export_onnx(clf, target)
        except UnwritablePathError:
            # A read-only home: export to a temporary folder for this process instead.
            target = export_onnx(clf, Path(tempfile.mkdtemp(prefix="lrfer-onnx-")) / target.name)
    return target


def _providers(ort: Any, device: Union[str, torch.device, None]) -> list[str]:
    """ONNX Runtime's execution providers for ``device``: CUDA first when asked for (``"cuda"`` or
    ``"auto"``) and this onnxruntime build has it, the CPU always."""
    try:
        want_cuda = device == "auto" or (device is not None and torch.device(device).type == "cuda")
    except RuntimeError:
        raise LrferError(f"unknown device '{device}'", "use 'cpu', 'cuda' or 'auto'") from None
    if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _has_onnxruntime() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None
