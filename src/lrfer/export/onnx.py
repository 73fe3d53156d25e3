"""Export a classifier checkpoint to ONNX, and quantize the export to int8.

The graph takes what the model sees after the library's preprocessing: float32 ``(N, C, S, S)``
in [0, 1], ``S`` the model's input side (its crop when it was trained on crops). Everything after
that is inside the graph: the model's own input normalisation, the network, the checkpoint's
temperature and the softmax, so its output ``probabilities`` ``(N, K)`` equals
``FaceClassifier.predict_proba`` for the same faces. Resizing, cropping and TTA stay outside
(in :func:`lrfer.data.transforms.predict_views`, and in numpy :mod:`lrfer.runtime.faces`), so that :class:`lrfer.runtime.onnx.OnnxClassifier`
prepares faces as the torch code path does.

What a runtime needs to feed the graph is stored in the model's ``metadata_props`` (listed in
:mod:`lrfer.runtime.onnx`, which reads them and runs the graph without PyTorch).

onnx and onnxruntime are imported only when a function here needs them.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from ..data.transforms import model_input
from ..errors import LrferError
from ..files import atomic_write_bytes, sha256_file
from ..models.checkpoint import load_checkpoint
from ..predict.classifier import FaceClassifier
from ..runtime.onnx import EMBEDDING_NAME, INPUT_NAME, ONNX_FORMAT, OUTPUT_NAME, parse_onnx_metadata, require

PathLike = Union[str, os.PathLike]


class _Probabilities(nn.Module):
    """The network with its calibrated softmax: what the exported graph computes; with
    ``embedding``, also the embedding its head reads (for the readings, applied by the runtime)."""

    def __init__(self, model: nn.Module, temperature: float, embedding: bool = False):
        super().__init__()
        self.model = model
        self.temperature = float(temperature)
        self.embedding = embedding

    def forward(self, x: torch.Tensor):
        emb, logits = self.model.embed_and_classify(x) if self.embedding else (None, self.model(x))
        if self.temperature != 1.0:  # no Div node for an uncalibrated model
            logits = logits / self.temperature
        return (logits.softmax(-1), emb) if self.embedding else logits.softmax(-1)


def readings_metadata(clf: FaceClassifier) -> dict[str, Any]:
    """The checkpoint's stored readings as the runtime applies them to the graph's embedding: each
    head's weight and bias (float32 values as JSON numbers) with its record."""
    ckpt = clf.checkpoint
    out = {}
    for name, record in ckpt.readings.items():
        head = {k.rsplit(".", 1)[-1]: v for k, v in ckpt.weights(f"reading/{name}").items()}
        out[name] = {**record, "weight": head["weight"].float().tolist(), "bias": head["bias"].float().tolist()}
    return out


@contextlib.contextmanager
def _exporter_log_silenced():
    """No TorchScript graph dump on stdout while exporting.

    The TorchScript exporter turns its log on whatever the caller asks (torch 2.9-2.14 tests the
    truthiness of a function, not its result) and, when an operator cannot be exported, prints the
    whole graph to stdout through ``torch._C._jit_onnx_log``. The failure itself still arrives as
    an exception, which export_onnx turns into a one-line LrferError.
    """
    log = getattr(torch._C, "_jit_onnx_log", None)
    if log is None:
        yield
        return
    torch._C._jit_onnx_log = lambda *args: None
    try:
        yield
    finally:
        torch._C._jit_onnx_log = log


def _as_classifier(source: Union["FaceClassifier", PathLike, None]) -> "FaceClassifier":
    if source is None:  # the shipped default model (`lrfer export --onnx m.onnx` with no --checkpoint)
        return FaceClassifier.load(None, "cpu")
    if isinstance(source, FaceClassifier):
        return source
    if isinstance(source, (str, os.PathLike)):
        if str(source).lower().endswith(".onnx"):
            raise LrferError(f"{source} is already an ONNX model", "export from the .safetensors checkpoint it came from")
        return FaceClassifier(load_checkpoint(source), "cpu")  # LrferError for SR / foreign files
    raise LrferError(
        f"cannot export a {type(source).__name__}",
        "give a classifier checkpoint path or a FaceClassifier (FaceClassifier.load(path))",
    )


class UnwritablePathError(LrferError):
    """The export's target cannot be written (a read-only folder, no permission, a full disk).

    Its own type so that a caller with somewhere else to write (the ONNX cache falls back to a
    temporary folder) can tell it from a model that cannot be exported."""


def _atomic_write(path: Path, data: bytes) -> Path:
    """Written atomically (a reader never sees half a model); an unwritable path is a user error."""
    if path.is_dir():
        raise LrferError(f"{path} is a folder", "give a file path such as model.onnx")
    try:
        return atomic_write_bytes(path, data)
    except OSError as err:
        raise UnwritablePathError(f"cannot write {path} ({err.strerror or err})", "choose a writable path") from None


def _set_metadata(model_proto, meta: dict[str, str]) -> None:
    keep = [p for p in model_proto.metadata_props if p.key not in meta]
    del model_proto.metadata_props[:]
    for p in keep:
        model_proto.metadata_props.add(key=p.key, value=p.value)
    for k, v in meta.items():
        model_proto.metadata_props.add(key=k, value=str(v))


def export_onnx(
    source: Union["FaceClassifier", PathLike, None],
    out_path: PathLike,
    *,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Path:
    """Write ``source`` (a classifier checkpoint path, a :class:`FaceClassifier`, or ``None`` for
    the shipped default model) as an ONNX
    graph from preprocessed faces to probabilities (see the module docstring); returns the path.

    ``dynamic_batch=False`` fixes the batch to 1 (for runtimes that need static shapes).
    """
    onnx = require("onnx")
    clf = _as_classifier(source)
    side = clf.crop or clf.image_size
    # A copy on the CPU in fp32: export must not move or convert the caller's model.
    readings = readings_metadata(clf)
    outputs = [OUTPUT_NAME, EMBEDDING_NAME] if readings else [OUTPUT_NAME]
    net = _Probabilities(copy.deepcopy(clf.model).float().cpu().eval(), clf.temperature, embedding=bool(readings)).eval()
    dummy = torch.rand(2 if dynamic_batch else 1, clf.in_chans, side, side)
    buf = io.BytesIO()
    with warnings.catch_warnings(), _exporter_log_silenced():
        # torch >= 2.9 marks the TorchScript exporter deprecated; it is kept because it needs no
        # onnxscript and gives plain, fully folded graphs for these convnets.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                net, (dummy,), buf, dynamo=False, opset_version=int(opset),
                input_names=[INPUT_NAME], output_names=outputs, do_constant_folding=True,
                dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]} if dynamic_batch else None,
            )  # fmt: skip
        except torch.onnx.errors.UnsupportedOperatorError as err:
            first = str(err).splitlines()[0]
            need = re.search(r"added in version (\d+)", first)
            raise LrferError(
                f"'{clf.name}' cannot be exported at ONNX opset {opset}: {first.split('. ')[0]}",
                f"export with opset={need.group(1)}" if need else "try a newer opset",
            ) from None
    proto = onnx.load_from_string(buf.getvalue())
    src = getattr(getattr(clf, "checkpoint", None), "path", None)
    src = Path(src) if src is not None else None
    meta = {
        "lrfer_format": ONNX_FORMAT,
        "name": clf.name,
        "classes": json.dumps(list(clf.classes)),
        "in_chans": clf.in_chans,
        "image_size": clf.image_size,
        "crop": clf.crop or 0,
        "input_size": side,
        "temperature": repr(float(clf.temperature)),
        "source": src.name if src is not None else "",
        "source_sha256": sha256_file(src) if src is not None and src.is_file() else "",
    }
    spec = getattr(getattr(clf, "checkpoint", None), "spec", {})
    for key in ("abstain", "class_prior"):  # what the runtime reads back (docs/trust.md)
        if spec.get(key) is not None:
            meta[key] = json.dumps(spec[key], sort_keys=True)
    if readings or clf.reading != "default":
        meta["reading"] = clf.reading
        meta["readings"] = json.dumps(readings, sort_keys=True)
    _set_metadata(proto, meta)
    proto.producer_name = "lrfer"
    proto.doc_string = f"lrfer {clf.name}: float32 (N, {clf.in_chans}, {side}, {side}) in [0, 1] -> probabilities over {', '.join(clf.classes)}"
    onnx.checker.check_model(proto)
    return _atomic_write(Path(out_path), proto.SerializeToString())


def read_onnx_metadata(path: PathLike) -> dict[str, Any]:
    """The lrfer metadata of an exported model: ``name``, ``classes`` (tuple), ``in_chans``,
    ``image_size``, ``crop`` (None if none), ``input_size``, ``temperature``, ``source``,
    ``source_sha256`` and, when present, ``quantization``, ``abstain`` and ``class_prior``."""
    onnx = require("onnx")
    path = Path(path)
    if not path.is_file():
        raise LrferError(f"no such ONNX model: {path}", "give the path of a .onnx file written by `lrfer export`")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError / ValueError / OSError
        raise LrferError(f"{path} is not a readable ONNX model ({type(err).__name__})", "export it again with `lrfer export`") from None
    return parse_onnx_metadata({p.key: p.value for p in proto.metadata_props}, path)


def quantize_int8(
    onnx_in: PathLike,
    onnx_out: PathLike,
    calibration_images: Union[np.ndarray, torch.Tensor],
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
    batch_size: int = 32,
) -> Path:
    """Static int8 quantization (QDQ, per-channel weights) of an lrfer ONNX export.

    ``calibration_images``: real face crops, uint8 ``(N, C, H, W)`` (or ``(N, H, W)`` gray) of any
    size, prepared as the classifier prepares faces; a few hundred are enough. Activation ranges
    are their min/max. ``reduce_range`` keeps weights to 7 bits, which avoids accumulator
    saturation on x86 CPUs without VNNI at a negligible accuracy cost. The softmax and the
    temperature stay in float (8-bit probabilities would be too coarse).
    """
    onnx = require("onnx")
    require("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    onnx_in, onnx_out = Path(onnx_in), Path(onnx_out)
    meta = read_onnx_metadata(onnx_in)
    x = torch.as_tensor(np.asarray(calibration_images)) if not isinstance(calibration_images, torch.Tensor) else calibration_images
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4 or len(x) == 0:
        raise LrferError(f"calibration images have shape {tuple(x.shape)}", "give face crops as uint8 (N, C, H, W) with N >= 1")
    inputs = model_input(x, in_chans=meta["in_chans"], input_size=meta["image_size"], crop=meta["crop"]).numpy()

    proto = onnx.load(str(onnx_in))
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    fixed = dim0.dim_value if dim0.HasField("dim_value") else 0
    step = fixed or batch_size

    class _Faces(CalibrationDataReader):
        def __init__(self):
            self._batches = iter([inputs[i : i + step] for i in range(0, len(inputs) - (len(inputs) % step if fixed else 0), step)])

        def get_next(self):
            b = next(self._batches, None)
            return None if b is None else {proto.graph.input[0].name: np.ascontiguousarray(b)}

    if fixed and len(inputs) < fixed:
        raise LrferError(f"{len(inputs)} calibration faces for a model with a fixed batch of {fixed}", f"give at least {fixed}")
    with tempfile.TemporaryDirectory(prefix="lrfer-quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        # Shape inference + graph optimisation (BatchNorm folded into Conv) before quantization,
        # as onnxruntime recommends: per-channel scales are then those of the fused weights.
        quant_pre_process(str(onnx_in), str(pre), skip_symbolic_shape=True)
        tail = _softmax_tail(onnx.load(str(pre)))
        quantize_static(
            str(pre), str(out), _Faces(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
            reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_exclude=tail,
        )  # fmt: skip
        q = onnx.load(str(out))
    raw = {p.key: p.value for p in proto.metadata_props}
    raw["quantization"] = f"int8 static QDQ, {'per-channel' if per_channel else 'per-tensor'} weights, {len(inputs)} calibration faces"
    _set_metadata(q, raw)
    q.producer_name, q.doc_string = proto.producer_name, proto.doc_string + " (int8)"
    return _atomic_write(onnx_out, q.SerializeToString())


def _softmax_tail(proto) -> list[str]:
    """Names of the nodes after the classifier's last Gemm/MatMul (temperature Div, Softmax):
    ONNX nodes are stored in topological order, so "after" is a position in the list."""
    nodes = list(proto.graph.node)
    last = max((i for i, n in enumerate(nodes) if n.op_type in ("Gemm", "MatMul")), default=-1)
    if last < 0:  # a convolutional head: keep just the softmax in float
        return [n.name for n in nodes if n.op_type == "Softmax" and n.name]
    return [n.name for n in nodes[last + 1 :] if n.name]
