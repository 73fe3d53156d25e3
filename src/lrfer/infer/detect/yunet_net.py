"""YuNet in PyTorch, with the weights read from the installed ``yuface`` wheel (needs torch and yuface).

The ``yuface`` wheel ships libfacedetection (BSD-3, Shiqi Yu et al., the 2023 "YuNet" model) compiled
without AVX, which makes it too slow for detection on every video frame. This module re-implements the
exact network of that library's ``objectdetect_cnn`` as a ``torch.nn.Module``. It is the source of the
ONNX graph the ``yunet`` detector ships and runs without torch (``tools/make_yunet_onnx.py`` exports it
with :func:`export_yunet_onnx`), and it runs the detector's ``jit`` and ``eager`` back ends and GPUs.
Decoding and NMS are in :mod:`.yunet` (numpy), shared by every back end.

No weights are downloaded: :func:`load_yunet_from_wheel` parses the ELF shared object
``yuface/libfacedetection.so`` with the standard library, finds the ``param_pConvInfo`` table (53
entries of ``{int channels, int num_filters, bool is_depthwise, bool is_pointwise, bool with_relu,
float *weights, float *biases}``), resolves its pointers through the dynamic relocations and copies
the float arrays.

What the C code does, and how it maps here:

* input: the uint8 image in the channel order it is given (``yuface`` passes BGR), values 0..255 with no
  mean or scale, zero-padded at the bottom/right to a multiple of 32;
* layer 0 is a 3x3 stride-2 pad-1 convolution stored as a 1x1 over 27 (padded to 32) channels laid out
  as ``(ky, kx, c)``; every other layer is a 1x1 point-wise or a 3x3 depth-wise (pad 1) convolution,
  always used in pairs "point-wise then depth-wise" (``convolutionDP``);
* backbone with 2x2 max pools, a top-down neck (nearest x2 upsample + add) and four heads per stride
  8/16/32 (cls, obj, bbox, 5 key points);
* score ``sqrt(sigmoid(cls) * sigmoid(obj))``, boxes ``centre = prior + d * stride``,
  ``size = exp(d) * stride``, key points ``prior + d * stride``, priors at ``(col, row) * stride``;
* candidates >= 0.2, stable sort by score, top 1000, greedy NMS at IoU 0.45, at most 512 kept.

``yuface`` truncates everything to integers (score in percent, pixels); the detector returns floats, so
the two agree to within one pixel and 0.01 of score.
"""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...device import resolve_device
from ...errors import LrferError
from ._yunet_layout import HEAD_NAMES, STRIDES

__all__ = [
    "ConvParam",
    "YuNet",
    "find_wheel_library",
    "read_conv_params",
    "load_yunet_from_wheel",
    "export_yunet_onnx",
    "make_runner",
    "torch_runner",
    "TORCH_BACKENDS",
]

#: Number of convolution layers in libfacedetection's YuNet (``NUM_CONV_LAYER``).
NUM_CONV_LAYERS = 53

# Indices into the layer table, as wired by objectdetect_cnn: (point-wise, depth-wise) pairs.
_STEM = (0, (1, 2))
_UNITS = ((3, 4, 5, 6), (7, 8, 9, 10), (11, 12, 13, 14), (15, 16, 17, 18), (19, 20, 21, 22))
_NECK = ((23, 24), (25, 26), (27, 28))  # one per stride 8, 16, 32
_HEADS = {  # head name -> (pw, dw) per stride 8, 16, 32
    "cls": ((29, 30), (31, 32), (33, 34)),
    "bbox": ((35, 36), (37, 38), (39, 40)),
    "obj": ((41, 42), (43, 44), (45, 46)),
    "kps": ((47, 48), (49, 50), (51, 52)),
}


# --------------------------------------------------------------------------------------------------
# Reading the weights from the shared object


@dataclass
class ConvParam:
    """One entry of libfacedetection's ``param_pConvInfo`` table."""

    channels: int
    num_filters: int
    is_depthwise: bool
    is_pointwise: bool
    with_relu: bool
    weights: np.ndarray  # float32; point-wise (num_filters, channels), depth-wise (9, channels)
    biases: np.ndarray  # float32 (num_filters,)


def find_wheel_library() -> Path:
    """Path of ``libfacedetection.so`` inside the installed ``yuface`` package."""
    spec = importlib.util.find_spec("yuface")
    hint = "install the detector wheel with `pip install yuface` (it carries the YuNet weights)"
    if spec is None or not spec.submodule_search_locations:
        raise LrferError("the yuface package is not installed", hint)
    for folder in spec.submodule_search_locations:
        cands = sorted(Path(folder).glob("libfacedetection.so*"))
        if cands:
            return cands[0]
    raise LrferError("the yuface package has no libfacedetection.so", hint)


class _Elf:
    """The few parts of a little-endian ELF64 file needed to read initialised data."""

    def __init__(self, blob: bytes):
        if blob[:4] != b"\x7fELF" or blob[4] != 2 or blob[5] != 1:
            raise ValueError("not a little-endian 64-bit ELF file")
        self.blob = blob
        shoff, = struct.unpack_from("<Q", blob, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x3A)
        self.sections = []
        for i in range(shnum):
            name, typ, flags, addr, off, size, link, info, align, entsize = struct.unpack_from(
                "<IIQQQQIIQQ", blob, shoff + i * shentsize
            )
            self.sections.append({"name": name, "type": typ, "addr": addr, "off": off, "size": size, "link": link, "entsize": entsize})
        strtab = self.sections[shstrndx]
        for s in self.sections:
            s["name"] = self._cstr(strtab["off"] + s["name"])

    def _cstr(self, off: int) -> str:
        end = self.blob.index(b"\0", off)
        return self.blob[off:end].decode("ascii", "replace")

    def symbols(self, sec_type: int) -> list[tuple[str, int, int]]:
        """(name, value, size) of every symbol in the sections of ``sec_type`` (2 symtab, 11 dynsym)."""
        out = []
        for s in self.sections:
            if s["type"] != sec_type:
                continue
            strtab = self.sections[s["link"]]
            for k in range(s["size"] // 24):
                st_name, st_info, st_other, st_shndx, st_value, st_size = struct.unpack_from(
                    "<IBBHQQ", self.blob, s["off"] + 24 * k
                )
                out.append((self._cstr(strtab["off"] + st_name), st_value, st_size))
        return out

    def pointer_relocations(self) -> dict[int, int]:
        """Address -> pointer value for the R_X86_64_RELATIVE / R_X86_64_64 dynamic relocations."""
        dynsym = self.symbols(11)
        out: dict[int, int] = {}
        for s in self.sections:
            if s["type"] != 4:  # SHT_RELA
                continue
            for k in range(s["size"] // 24):
                r_offset, r_info, r_addend = struct.unpack_from("<QQq", self.blob, s["off"] + 24 * k)
                rtype, rsym = r_info & 0xFFFFFFFF, r_info >> 32
                if rtype == 8:  # R_X86_64_RELATIVE: base + addend
                    out[r_offset] = r_addend
                elif rtype == 1 and rsym < len(dynsym):  # R_X86_64_64: symbol + addend
                    out[r_offset] = dynsym[rsym][1] + r_addend
        return out

    def file_offset(self, addr: int, nbytes: int) -> int:
        for s in self.sections:
            if s["type"] not in (0, 8) and s["addr"] and s["addr"] <= addr and addr + nbytes <= s["addr"] + s["size"]:
                return s["off"] + addr - s["addr"]
        raise ValueError(f"address 0x{addr:x} is not in a section with file data")

    def read(self, addr: int, nbytes: int) -> bytes:
        off = self.file_offset(addr, nbytes)
        return self.blob[off : off + nbytes]


def read_conv_params(path: Union[str, os.PathLike, None] = None) -> list[ConvParam]:
    """The 53 layers of ``param_pConvInfo`` from libfacedetection.so (default: the installed wheel's)."""
    path = Path(path) if path is not None else find_wheel_library()
    hint = "reinstall the yuface wheel (`pip install --force-reinstall yuface`) or use another --detector"
    try:
        elf = _Elf(path.read_bytes())
    except (OSError, ValueError) as err:
        raise LrferError(f"cannot read the YuNet weights from {path} ({err})", hint) from None
    table = [(v, n) for name, v, n in elf.symbols(2) + elf.symbols(11) if name == "param_pConvInfo"]
    if not table:
        raise LrferError(f"{path} has no param_pConvInfo table (a different libfacedetection build?)", hint)
    base, size = table[0]
    count = size // 32 if size else NUM_CONV_LAYERS
    if count != NUM_CONV_LAYERS:
        raise LrferError(f"{path} has {count} conv layers, expected {NUM_CONV_LAYERS} (not the 2023 YuNet)", hint)
    relocs = elf.pointer_relocations()
    raw = elf.read(base, 32 * count)
    params = []
    for i in range(count):
        channels, num_filters, dw, pw, relu = struct.unpack_from("<ii???", raw, 32 * i)
        ptrs = []
        for slot in (16, 24):
            addr = base + 32 * i + slot
            # The pointer is either relocated (shared object) or stored in place (static data).
            ptrs.append(relocs.get(addr, struct.unpack_from("<Q", raw, 32 * i + slot)[0]))
        if dw == pw or channels <= 0 or num_filters <= 0:
            raise LrferError(f"layer {i} of {path} has an unsupported shape", hint)
        n_w = 9 * channels if dw else num_filters * channels
        try:
            w = np.frombuffer(elf.read(ptrs[0], 4 * n_w), dtype="<f4").astype(np.float32)
            b = np.frombuffer(elf.read(ptrs[1], 4 * num_filters), dtype="<f4").astype(np.float32)
        except ValueError as err:
            raise LrferError(f"layer {i} of {path}: {err}", hint) from None
        w = w.reshape(9, channels) if dw else w.reshape(num_filters, channels)
        params.append(ConvParam(channels, num_filters, bool(dw), bool(pw), bool(relu), w, b))
    return params


# --------------------------------------------------------------------------------------------------
# The network


class _DP(nn.Module):
    """libfacedetection's ``convolutionDP``: 1x1 conv (no activation), then 3x3 depth-wise conv."""

    def __init__(self, cin: int, cout: int, relu: bool):
        super().__init__()
        self.pw = nn.Conv2d(cin, cout, 1)
        self.dw = nn.Conv2d(cout, cout, 3, padding=1, groups=cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(self.pw(x))
        return F.relu(x) if self.relu else x

    def load(self, pw: ConvParam, dw: ConvParam) -> None:
        if not (pw.is_pointwise and dw.is_depthwise):
            raise ValueError("expected a point-wise then a depth-wise layer")
        if pw.num_filters != self.pw.out_channels or pw.channels != self.pw.in_channels or dw.channels != pw.num_filters:
            raise ValueError(f"shape mismatch: {pw.channels}->{pw.num_filters}->{dw.channels}")
        with torch.no_grad():
            self.pw.weight.copy_(torch.from_numpy(pw.weights).view(pw.num_filters, pw.channels, 1, 1))
            self.pw.bias.copy_(torch.from_numpy(pw.biases))
            # depth-wise weights are stored (tap = ky*3 + kx, channel)
            self.dw.weight.copy_(torch.from_numpy(dw.weights.T.copy()).view(dw.channels, 1, 3, 3))
            self.dw.bias.copy_(torch.from_numpy(dw.biases))


class YuNet(nn.Module):
    """libfacedetection's 2023 YuNet: uint8-range images in, raw per-level head maps out.

    ``forward(x)`` takes float ``(N, 3, H, W)`` with values 0..255 in **RGB** order (the first layer's
    weights are permuted from the library's BGR at load time) and H, W multiples of 32; it returns the
    12 head maps ``cls, obj, bbox, kps`` of stride 8, then 16, then 32, each ``(N, 1|1|4|10, H/s, W/s)``.
    Use :func:`detect_yunet` for boxes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.stem_dp = _DP(16, 16, True)
        # (in, middle, out) channels of the five convolution4layerUnit blocks
        chans = [(16, 16, 32), (32, 32, 64), (64, 64, 64), (64, 64, 64), (64, 64, 64)]
        self.units = nn.ModuleList(nn.Sequential(_DP(a, b, True), _DP(b, c, True)) for a, b, c in chans)
        self.neck = nn.ModuleList(_DP(64, 64, True) for _ in STRIDES)
        self.heads = nn.ModuleDict(
            {name: nn.ModuleList(_DP(64, out, False) for _ in STRIDES) for name, out in (("cls", 1), ("obj", 1), ("bbox", 4), ("kps", 10))}
        )

    @torch.no_grad()
    def load_params(self, params: Sequence[ConvParam], input_bgr: bool = True) -> "YuNet":
        """Copy the library's layer table into this module (shapes are checked)."""
        if len(params) != NUM_CONV_LAYERS:
            raise ValueError(f"expected {NUM_CONV_LAYERS} layers, got {len(params)}")
        p0 = params[_STEM[0]]
        if not p0.is_pointwise or p0.num_filters != 16 or p0.channels < 27:
            raise ValueError("layer 0 is not the 3x3 s2 stem stored as a 27-channel 1x1 conv")
        # stored as (out, ky*9 + kx*3 + c) over the image's own channel order (BGR for yuface)
        w = torch.from_numpy(p0.weights[:, :27].copy()).view(16, 3, 3, 3).permute(0, 3, 1, 2)
        if input_bgr:
            w = w.flip(1)  # so that forward() takes RGB
        self.stem.weight.copy_(w)
        self.stem.bias.copy_(torch.from_numpy(p0.biases))
        self.stem_dp.load(params[_STEM[1][0]], params[_STEM[1][1]])
        for unit, idx in zip(self.units, _UNITS):
            unit[0].load(params[idx[0]], params[idx[1]])
            unit[1].load(params[idx[2]], params[idx[3]])
        for mod, (a, b) in zip(self.neck, _NECK):
            mod.load(params[a], params[b])
        for name, pairs in _HEADS.items():
            for mod, (a, b) in zip(self.heads[name], pairs):
                mod.load(params[a], params[b])
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = F.relu(self.stem(x))
        x = F.max_pool2d(self.stem_dp(x), 2)
        x = self.units[0](x)
        x = F.max_pool2d(self.units[1](x), 2)
        f8 = self.units[2](x)
        f16 = self.units[3](F.max_pool2d(f8, 2))
        f32 = self.units[4](F.max_pool2d(f16, 2))
        f32 = self.neck[2](f32)
        f16 = self.neck[1](f16 + F.interpolate(f32, scale_factor=2.0, mode="nearest"))
        f8 = self.neck[0](f8 + F.interpolate(f16, scale_factor=2.0, mode="nearest"))
        # a flat tuple (not nested) so that the module traces and exports to ONNX as is
        return tuple(
            self.heads[name][level](feat) for level, feat in enumerate((f8, f16, f32)) for name in ("cls", "obj", "bbox", "kps")
        )


def load_yunet_from_wheel(path: Union[str, os.PathLike, None] = None) -> YuNet:
    """A :class:`YuNet` in eval mode with the weights of the installed ``yuface`` wheel."""
    params = read_conv_params(path)
    try:
        model = YuNet().load_params(params)
    except ValueError as err:
        raise LrferError(
            f"the YuNet layer table in {path or find_wheel_library()} does not match the expected network ({err})",
            "reinstall the yuface wheel or use another --detector",
        ) from None
    return model.eval()


# --------------------------------------------------------------------------------------------------
# Export and the torch back ends

#: The back ends run by torch; the detector's ``auto`` and ``onnxruntime`` run the shipped graph instead.
TORCH_BACKENDS = ("jit", "eager")
Runner = Callable[[np.ndarray], tuple]


def export_yunet_onnx(model: YuNet, path: Union[str, os.PathLike, io.BytesIO], *, opset: int = 17) -> None:
    """Write the network (RGB float 0..255 ``(N, 3, H, W)`` in, the 12 head maps out) as ONNX.

    Batch, height and width are dynamic (height and width must be multiples of 32); decoding and NMS
    stay in :func:`.yunet.postprocess`.
    """
    model = model.eval()
    dummy = torch.zeros(1, 3, 64, 64, device=next(model.parameters()).device)
    axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    axes.update({n: {0: "batch", 2: f"h{n}", 3: f"w{n}"} for n in HEAD_NAMES})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), path, opset_version=opset, input_names=["image"], output_names=list(HEAD_NAMES),
            dynamic_axes=axes, dynamo=False,
        )  # fmt: skip


class _JitRunner:
    def __init__(self, model: YuNet, example: torch.Tensor):
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in recent releases but still the fastest here
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
            self.module = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return tuple(self.module(x))


def make_runner(model: YuNet, backend: str = "eager") -> Runner:
    """A callable ``float32 numpy (N, 3, H, W) -> the 12 head maps as numpy`` running ``model`` with torch.

    ``jit`` is a frozen TorchScript trace with MKLDNN convolutions fused with their ReLU (3-4x faster
    than eager on a CPU); ``eager`` runs the module as it is (the one for GPUs).
    """
    if backend not in TORCH_BACKENDS:
        raise LrferError(f"unknown torch YuNet backend '{backend}'", "choose one of: " + ", ".join(TORCH_BACKENDS))
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    if backend == "jit":
        net: Callable = _JitRunner(model, torch.zeros(1, 3, 64, 64, device=device, dtype=dtype))
    else:
        net = model

    def run(x: np.ndarray) -> tuple[np.ndarray, ...]:
        t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device=device, dtype=dtype)
        if device.type == "cpu" and backend == "eager":  # MKLDNN's eager convolutions are faster on NHWC input
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return tuple(h.float().cpu().numpy() for h in net(t))

    return run


@lru_cache(maxsize=None)
def _cached_runner(backend: str, device: str) -> Runner:
    model = load_yunet_from_wheel()
    if device != "cpu":
        model = model.to(device)
    return make_runner(model, backend)


def torch_runner(backend: str = "auto", device: Union[str, torch.device, None] = None) -> Runner:
    """The detector's torch runner: the wheel's weights on ``device``, built once per (backend, device).

    ``auto`` is ``jit`` on the CPU and ``eager`` elsewhere (tracing is for MKLDNN's fused convolutions).
    """
    dev = resolve_device(device) if device is not None else torch.device("cpu")
    if backend == "auto":
        backend = "jit" if dev.type == "cpu" else "eager"
    if backend not in TORCH_BACKENDS:
        raise LrferError(f"unknown torch YuNet backend '{backend}'", "choose one of: " + ", ".join(TORCH_BACKENDS))
    return _cached_runner(backend, str(dev))
