"""Keras 2 layers rebuilt in PyTorch: one module per Keras semantics, built from a layer's config,
with its weights converted from Keras' layouts.

This is where the importer's fidelity lives (:mod:`lrfer.interop.keras_h5` only reads the file and
wires these modules into a graph): Keras "same" padding puts the odd pixel at the bottom/right and
"same" pooling ignores padded cells (as TensorFlow does); ``Flatten`` is channels-last; kernels come
as HWIO (``Conv2D``), depthwise ``(kh, kw, in, multiplier)`` and IO (``Dense``); ``BatchNormalization``
keeps the file's epsilon. A layer or an option outside this is refused with an
:class:`~lrfer.errors.LrferError` that names the layer, never approximated. Tensors are NCHW
throughout; a Keras channel axis (the last) is PyTorch's axis 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import LrferError

# Layers that only act during training: identity at inference.
_TRAINING_ONLY = ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")


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

def _padding(cfg: dict, layer: str) -> str:
    padding = str(cfg.get("padding", "valid")).lower()
    if padding not in ("same", "valid"):
        raise LrferError(f"Keras layer '{layer}': padding '{padding}' is not supported", "use 'same' or 'valid'")
    return padding


def _conv(kind: str, cfg: dict, layer: str) -> nn.Module:
    _check_channels_last(cfg, layer)
    padding = _padding(cfg, layer)
    return KerasConv(
        _pair(cfg["kernel_size"], "kernel_size", layer), _pair(cfg.get("strides", 1), "strides", layer),
        _pair(cfg.get("dilation_rate", 1), "dilation_rate", layer), padding, int(cfg.get("groups", 1) or 1),
        _activation(cfg, layer),
    )  # fmt: skip


def _dense(kind: str, cfg: dict, layer: str) -> nn.Module:
    return KerasDense(_activation(cfg, layer))


def _batch_norm(kind: str, cfg: dict, layer: str) -> nn.Module:
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, 3, 1):  # 1: the feature axis of a 2-d (Dense) tensor, checked at the dry run
        raise LrferError(f"Keras layer '{layer}': BatchNormalization over axis {cfg.get('axis')}", "only the channel (last) axis is supported")
    bn = KerasBatchNorm(1, cfg.get("epsilon", 1e-3))
    bn.keras_axis = axis
    return bn


def _activation_layer(kind: str, cfg: dict, layer: str) -> nn.Module:
    return _activation(cfg, layer)


def _relu(kind: str, cfg: dict, layer: str) -> nn.Module:
    mv = cfg.get("max_value")
    return KerasReLU(None if mv is None else float(mv), cfg.get("negative_slope", 0.0) or 0.0, cfg.get("threshold", 0.0) or 0.0)


def _leaky_relu(kind: str, cfg: dict, layer: str) -> nn.Module:
    return KerasReLU(negative_slope=cfg.get("alpha", cfg.get("negative_slope", 0.3)))


def _elu(kind: str, cfg: dict, layer: str) -> nn.Module:
    alpha = float(cfg.get("alpha", 1.0))
    return KerasActivation("elu", layer) if alpha == 1.0 else _Lambda(lambda x: F.elu(x, alpha), f"elu(alpha={alpha})")


def _softmax(kind: str, cfg: dict, layer: str) -> nn.Module:
    if cfg.get("axis", -1) not in (-1, [-1]):
        raise LrferError(f"Keras layer '{layer}': Softmax over axis {cfg.get('axis')}", "only the last axis is supported")
    return KerasActivation("softmax", layer)


def _pool(kind: str, cfg: dict, layer: str) -> nn.Module:
    _check_channels_last(cfg, layer)
    pool = _pair(cfg.get("pool_size", 2), "pool_size", layer)
    strides = cfg.get("strides")
    padding = _padding(cfg, layer)
    return KerasPool("max" if kind.startswith("Max") else "avg", pool, _pair(strides, "strides", layer) if strides is not None else pool, padding)


def _global_pool(kind: str, cfg: dict, layer: str) -> nn.Module:
    _check_channels_last(cfg, layer)
    return KerasGlobalPool("avg" if "Average" in kind else "max", bool(cfg.get("keepdims", False)))


def _flatten(kind: str, cfg: dict, layer: str) -> nn.Module:
    _check_channels_last(cfg, layer)
    return KerasFlatten()


def _zero_pad(kind: str, cfg: dict, layer: str) -> nn.Module:
    _check_channels_last(cfg, layer)
    p = cfg.get("padding", 1)
    if isinstance(p, int):
        top = bottom = left = right = p
    elif isinstance(p[0], int):
        (top, left), (bottom, right) = p, p
    else:
        (top, bottom), (left, right) = p
    return KerasZeroPad((int(left), int(right), int(top), int(bottom)))


def _merge(kind: str, cfg: dict, layer: str) -> nn.Module:
    return KerasMerge(kind, int(cfg.get("axis", -1)))


def _identity(kind: str, cfg: dict, layer: str) -> nn.Module:
    return nn.Identity()


#: Keras layer class -> builder ``(class, config, layer name) -> module``. ``Functional``/``Model``/
#: ``Sequential`` are the containers, handled by the graph parser.
_BUILDERS: dict[str, Callable[[str, dict, str], nn.Module]] = {
    "InputLayer": _identity,
    **dict.fromkeys(("Conv2D", "SeparableConv2D", "DepthwiseConv2D"), _conv),
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "Activation": _activation_layer,
    "ReLU": _relu,
    "LeakyReLU": _leaky_relu,
    "ELU": _elu,
    "Softmax": _softmax,
    **dict.fromkeys(("MaxPooling2D", "AveragePooling2D"), _pool),
    **dict.fromkeys(("GlobalAveragePooling2D", "GlobalMaxPooling2D"), _global_pool),
    "Flatten": _flatten,
    "ZeroPadding2D": _zero_pad,
    **dict.fromkeys(("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"), _merge),
    **dict.fromkeys(_TRAINING_ONLY, _identity),
}

#: Keras layer classes this importer rebuilds.
SUPPORTED_LAYERS: tuple[str, ...] = tuple(_BUILDERS)


def build_layer(kind: str, cfg: dict, layer: str) -> nn.Module:
    """A PyTorch module for one Keras layer (weights are attached by :func:`attach_weights`)."""
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise LrferError(
            f"Keras layer '{layer}' is a {kind}, which the importer does not support",
            "supported layers: " + ", ".join(SUPPORTED_LAYERS),
        )
    return builder(kind, cfg, layer)


class _Lambda(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], text: str):
        super().__init__()
        self.fn, self.text = fn, text

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.text


# ====================================================================== weights
def _take(weights: dict[str, np.ndarray], key: str, layer: str, shape_hint: str) -> np.ndarray:
    if key not in weights:
        have = ", ".join(sorted(weights)) or "none"
        raise LrferError(f"Keras layer '{layer}' has no '{key}' weight (it has {have})", f"expected {shape_hint}; the file may be damaged")
    return weights.pop(key)


def _param(a: np.ndarray) -> nn.Parameter:
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(a)), requires_grad=False)


def attach_weights(module: nn.Module, kind: str, cfg: dict, weights: dict[str, np.ndarray], layer: str) -> None:
    """Put a layer's arrays (by short name: ``kernel``, ``bias``, ...) into its module in PyTorch's layouts.

    A weight left over is an option the module does not implement: refused, not ignored.
    """
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
