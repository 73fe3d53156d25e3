"""An exported classifier run by ONNX Runtime: the runtime's classifier, with no PyTorch.

The graph (written by :func:`lrfer.export.export_onnx`) takes float32 ``(N, C, S, S)`` in [0, 1]
and returns probabilities: the model's normalisation, the temperature and the softmax are inside
it. What a runtime needs to feed it is in the model's ``metadata_props`` (all strings):
``lrfer_format``, ``name``, ``classes`` (JSON list), ``in_chans``, ``image_size``, ``crop``
(0 = none), ``input_size``, ``temperature``, ``source`` (checkpoint file name) and
``source_sha256``; a quantized model adds ``quantization``; a model with a stored abstention
rule or training class shares adds ``abstain`` and ``class_prior`` (JSON, see
:mod:`lrfer.runtime.decision` and :mod:`lrfer.runtime.prior`). A checkpoint with readings
(:mod:`lrfer.train.reading`) adds a second output, ``embedding``, and ``reading`` (which one
``probabilities`` gives) and ``readings`` (JSON: each other head's ``weight``, ``bias``,
``temperature``, ``abstain`` and ``class_prior``), which :class:`OnnxClassifier` applies to the
embedding in numpy. Faces are prepared by :mod:`lrfer.runtime.faces`, which computes what the
torch path computes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..errors import LrferError
from ..progress import Progress
from .decision import Abstain, rule_from
from .faces import predict_views
from .prior import train_prior_from

ONNX_FORMAT = "lrfer-onnx/1"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
EMBEDDING_NAME = "embedding"
PathLike = os.PathLike | str

#: The shipped default model as an ONNX graph (float32), made from ``model.safetensors`` beside it
#: by ``tools/export_default.py``; its int8 twin ``model.int8.onnx`` is beside it too.
DEFAULT_ONNX = Path(__file__).resolve().parent.parent / "assets" / "default" / "model.onnx"

_INSTALL_HINT = "install the ONNX packages: pip install onnx onnxruntime"


def require(module: str):
    """The optional package ``module`` (onnx, onnxruntime), or a one-line LrferError saying how to install it."""
    try:
        return __import__(module)
    except ImportError:
        raise LrferError(f"the '{module}' package is not installed", _INSTALL_HINT) from None


def parse_onnx_metadata(raw: dict[str, str], path: Any) -> dict[str, Any]:
    """Typed lrfer metadata from an ONNX model's ``metadata_props`` (as a dict); LrferError if absent/foreign.

    ``path`` only names the model in errors. An onnxruntime session gives the props as
    ``get_modelmeta().custom_metadata_map``; :func:`lrfer.export.read_onnx_metadata` reads them with onnx."""
    hint = "export the model with `lrfer export` (lrfer.export.export_onnx)"
    fmt = raw.get("lrfer_format")
    if fmt is None:
        raise LrferError(f"{path} is an ONNX model without lrfer metadata (classes, input size)", hint)
    if fmt != ONNX_FORMAT:
        raise LrferError(f"{path} has format {fmt!r}, this lrfer reads {ONNX_FORMAT!r}", hint)
    try:
        meta = {
            "name": raw["name"],
            "classes": tuple(json.loads(raw["classes"])),
            "in_chans": int(raw["in_chans"]),
            "image_size": int(raw["image_size"]),
            "crop": int(raw["crop"]) or None,
            "input_size": int(raw["input_size"]),
            "temperature": float(raw["temperature"]),
            "source": raw.get("source", ""),
            "source_sha256": raw.get("source_sha256", ""),
        }
    except (KeyError, ValueError, TypeError) as err:
        raise LrferError(f"{path} has incomplete lrfer metadata ({type(err).__name__}: {err})", hint) from None
    if "quantization" in raw:
        meta["quantization"] = raw["quantization"]
    for key in ("abstain", "class_prior", "readings"):
        if key in raw:
            meta[key] = _json_field(raw[key], key, path, hint)
    meta["reading"] = raw.get("reading", "default")
    return meta


def _json_field(text: str, key: str, path: Any, hint: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise LrferError(f"{path}: its '{key}' metadata is not valid JSON", hint) from None


def providers(ort: Any, device: Any) -> list[str]:
    """ONNX Runtime's execution providers for ``device`` (``None``, ``"cpu"``, ``"cuda[:N]"``,
    ``"auto"`` or a torch.device): CUDA first when asked for and this onnxruntime build has it
    (``onnxruntime-gpu``), the CPU always."""
    kind = None if device is None else str(getattr(device, "type", device)).split(":")[0]
    if kind not in (None, "cpu", "cuda", "auto", "mps"):
        raise LrferError(f"unknown device '{device}'", "use 'cpu', 'cuda' or 'auto'")
    if kind in ("cuda", "auto") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: Path, threads: Optional[int] = None, device: Any = None) -> Any:
    """An onnxruntime session on ``path``; a file that is missing or not ONNX is a one-line error."""
    ort = require("onnxruntime")
    if not path.is_file():
        raise LrferError(f"no such ONNX model: {path}", "give the path of a .onnx file written by `lrfer export`")
    if threads is not None and threads < 1:
        raise LrferError(f"threads={threads}", "use 1 or more, or leave it unset")
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    # No busy-waiting between runs: the classifier shares the CPU with a detection thread (video,
    # photos, cameras), which a spinning worker would slow (a video went from about 45 to 47 frames/s
    # on the 2-core VM, profiled by hand, 2026-12-05).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = providers(ort, device)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
    except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf / ... types
        first = str(err).splitlines()[0][:200]
        raise LrferError(f"{path} is not a loadable ONNX model ({first})", "export it again with `lrfer export`") from None


def prepare_faces(faces: Any, *, in_chans: int, image_size: int, classes: tuple[str, ...]) -> Any:
    """A :class:`lrfer.data.faceset.FaceSet` in a model's channels and size, labels re-indexed onto
    its classes: what every classifier's ``prepare`` does (duck-typed, so this module needs no torch)."""
    if in_chans == 1:
        faces = faces.to_grayscale()
    return faces.resized(image_size).with_classes(classes)


class OnnxClassifier:
    """An exported classifier on ONNX Runtime (the CPU, or CUDA where that build is installed).

    Attributes as :class:`lrfer.predict.classifier.FaceClassifier`: ``classes``, ``in_chans``,
    ``image_size``, ``crop``, ``name``, ``temperature`` (already inside the graph), ``device``,
    ``abstain`` (the stored abstention rule or None), ``train_prior`` (the training class shares
    or None); plus ``path`` and ``metadata``. :meth:`predict_proba` returns a numpy array.
    """

    device = "cpu"  # where inputs are prepared; the session copies them itself

    def __init__(self, session: Any, metadata: dict[str, Any], path: Path, reading: Optional[str] = None):
        self.session, self.metadata, self.path = session, metadata, path
        self.classes: tuple[str, ...] = tuple(metadata["classes"])
        self.in_chans: int = metadata["in_chans"]
        self.image_size: int = metadata["image_size"]
        self.crop: Optional[int] = metadata["crop"]
        #: the head applied to the graph's embedding, or None when ``probabilities`` is the answer
        self._head: Optional[tuple[np.ndarray, np.ndarray]] = None
        self.reading: str = metadata.get("reading", "default")
        source = metadata
        if reading not in (None, self.reading):
            source = self._use_reading(reading)
        self.temperature: float = float(source.get("temperature", 1.0))
        self.abstain: Optional[Abstain] = rule_from(source.get("abstain"), str(path))
        self.prior_record: Optional[dict] = source.get("class_prior")  # with the bias correction EM needs
        self.train_prior: Optional[np.ndarray] = train_prior_from(source.get("class_prior"), self.classes, str(path))
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

    def _use_reading(self, name: str) -> dict[str, Any]:
        """Answer with the stored reading ``name``: its head on the embedding; returns its record."""
        readings = self.metadata.get("readings") or {}
        record = readings.get(name) if isinstance(readings, dict) else None
        if record is None:
            have = ", ".join([self.reading, *(readings if isinstance(readings, dict) else [])])
            raise LrferError(f"{self.path} has no reading '{name}' (it has: {have})", "choose one of those, or export the checkpoint again with `lrfer export`")
        if EMBEDDING_NAME not in [o.name for o in self.session.get_outputs()]:
            raise LrferError(f"{self.path} has readings but no '{EMBEDDING_NAME}' output", "export the checkpoint again with `lrfer export`")
        try:
            weight, bias = np.asarray(record["weight"], np.float32), np.asarray(record["bias"], np.float32)
        except (KeyError, ValueError, TypeError) as err:
            raise LrferError(f"{self.path}: its reading '{name}' has no valid head ({err})", "export the checkpoint again with `lrfer export`") from None
        if weight.ndim != 2 or weight.shape[0] != len(self.classes) or bias.shape != (len(self.classes),):
            raise LrferError(f"{self.path}: its reading '{name}' has a head of {weight.shape} for {len(self.classes)} classes", "export the checkpoint again with `lrfer export`")
        self._head, self.reading = (weight, bias), name
        return record

    @classmethod
    def load(cls, path: Optional[PathLike] = None, threads: Optional[int] = None, device: Any = None, reading: Optional[str] = None) -> "OnnxClassifier":
        """Open an ``.onnx`` file written by :func:`lrfer.export.export_onnx` (or quantized);
        ``None``: the shipped default model.

        ``threads``: intra-op threads (``None``: onnxruntime's default, one per physical core).
        ``device``: ``"cuda"`` or ``"auto"`` use the CUDA provider when this onnxruntime build has
        it (``onnxruntime-gpu``), the CPU otherwise. ``reading``: answer with one of the model's
        stored readings (docs/trust.md) instead of the one it was exported with.
        """
        path = Path(path) if path is not None else DEFAULT_ONNX
        session = open_session(path, threads, device)
        meta = parse_onnx_metadata(dict(session.get_modelmeta().custom_metadata_map), path)
        return cls(session, meta, path, reading)

    @property
    def name(self) -> str:
        return self.metadata["name"]

    def prepare(self, faces: Any) -> Any:
        """Faces in the model's channels and size, labels re-indexed onto the model's classes."""
        return prepare_faces(faces, in_chans=self.in_chans, image_size=self.image_size, classes=self.classes)

    def _run(self, x: np.ndarray) -> np.ndarray:
        """The graph's probabilities, or with a reading its head's calibrated softmax on the embedding."""
        if self._head is None:
            return self.session.run([OUTPUT_NAME], {self._input: x})[0]
        weight, bias = self._head
        z = (self.session.run([EMBEDDING_NAME], {self._input: x})[0] @ weight.T + bias) / self.temperature
        z = np.exp(z - z.max(1, keepdims=True))
        return (z / z.sum(1, keepdims=True)).astype(np.float32)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if not self._fixed_batch:
            return self._run(x)
        # A static-batch export: run in chunks of its batch, the last one padded with zeros.
        b, out = self._fixed_batch, []
        for i in range(0, len(x), b):
            chunk = x[i : i + b]
            if len(chunk) < b:
                chunk = np.concatenate([chunk, np.zeros((b - len(chunk), *chunk.shape[1:]), np.float32)])
            out.append(self._run(chunk))
        return np.concatenate(out)[: len(x)]

    def predict_proba(
        self,
        images: Any,
        *,
        tta: str = "none",
        degrade_to: Optional[int] = None,
        batch_size: Optional[int] = None,
        progress: Optional[Progress] = None,
    ) -> np.ndarray:
        """Probabilities ``(N, K)`` float32 for uint8 face crops ``(N, C, H, W)`` of any size.

        ``degrade_to`` (the resolution sweep's simulated face size) is a feature of the torch
        classifier, which evaluation uses; here it is refused rather than ignored."""
        if degrade_to is not None:
            raise LrferError("degrade_to is not supported by the ONNX runtime classifier", "evaluate with the torch classifier (lrfer.predict.classifier.FaceClassifier)")
        return predict_views(
            self._forward, images, num_classes=len(self.classes), in_chans=self.in_chans, batch_size=batch_size,
            tta=tta, crop=self.crop, input_size=self.image_size, progress=progress,
        )  # fmt: skip
