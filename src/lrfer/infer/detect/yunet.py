"""``yunet`` (the default detector): YuNet in PyTorch, with the weights read from the installed ``yuface`` wheel.

The ``yuface`` wheel ships libfacedetection (BSD-3, Shiqi Yu et al., the 2023 "YuNet" model) compiled
without AVX, which makes it too slow for detection on every video frame. This module re-implements the
exact network and post-processing of that library's ``objectdetect_cnn`` as a ``torch.nn.Module`` so it
runs on MKLDNN (or a GPU, or ONNX), batches frames, and gives the same detections.

No weights are stored in this project and nothing is downloaded: :func:`load_yunet_from_wheel` parses the
ELF shared object ``yuface/libfacedetection.so`` with the standard library, finds the
``param_pConvInfo`` table (53 entries of ``{int channels, int num_filters, bool is_depthwise,
bool is_pointwise, bool with_relu, float *weights, float *biases}``), resolves its pointers through the
dynamic relocations and copies the float arrays.

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

``yuface`` truncates everything to integers (score in percent, pixels); this module returns floats, so the
two agree to within one pixel and 0.01 of score.
"""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...device import resolve_device
from ...errors import LrferError, closest
from .base import Detections, FaceDetector, as_rgb, missing_package, nms
from .yuface import INSTALL as YUFACE_INSTALL

__all__ = [
    "ConvParam",
    "YuNet",
    "find_wheel_library",
    "read_conv_params",
    "load_yunet_from_wheel",
    "detect_yunet",
    "postprocess",
    "make_runner",
    "export_yunet_onnx",
    "BACKENDS",
    "YuNetDetector",
]

#: Number of convolution layers in libfacedetection's YuNet (``NUM_CONV_LAYER``).
NUM_CONV_LAYERS = 53
#: The thresholds ``objectdetect_cnn`` passes to ``detection_output`` (read from the .so's code).
NMS_IOU = 0.45
CANDIDATE_SCORE = 0.2
TOP_K = 1000
KEEP_TOP_K = 512
STRIDES = (8, 16, 32)
PAD_DIVISOR = 32

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
# Decoding and NMS


def postprocess(heads: Sequence[torch.Tensor], min_score: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The 12 head maps of a batch (``YuNet.forward``'s output) -> per image ``(boxes xyxy (N,4), scores (N,), landmarks (N,5,2))``.

    Scores, decoding and the greedy NMS follow libfacedetection's ``detection_output`` (stable sort,
    top 1000, suppress when IoU > 0.45, keep at most 512); candidates below ``min_score`` are dropped
    first, which cannot change which higher-scored boxes survive greedy NMS.
    """
    scores_l, box_l, kps_l, prior_l, stride_l = [], [], [], [], []
    for k, stride in enumerate(STRIDES):
        cls, obj, bbox, kps = heads[4 * k : 4 * k + 4]
        n, _, h, w = cls.shape
        sig = lambda t: torch.sigmoid(t.float().clamp(-88.3762626647949, 88.3762626647949))
        scores_l.append(torch.sqrt(sig(cls) * sig(obj)).reshape(n, h * w))
        box_l.append(bbox.float().permute(0, 2, 3, 1).reshape(n, h * w, 4))
        kps_l.append(kps.float().permute(0, 2, 3, 1).reshape(n, h * w, 5, 2))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) * stride
        prior_l.append(np.stack((xs.ravel(), ys.ravel()), -1))
        stride_l.append(np.full(h * w, stride, np.float32))
    scores = torch.cat(scores_l, 1).cpu().numpy()
    raw_box = torch.cat(box_l, 1).cpu().numpy()
    raw_kps = torch.cat(kps_l, 1).cpu().numpy()
    priors, strides = np.concatenate(prior_l), np.concatenate(stride_l)
    results = []
    for i in range(scores.shape[0]):
        idx = np.flatnonzero(scores[i] >= min_score)
        idx = idx[np.argsort(-scores[i][idx], kind="stable")][:TOP_K]
        # decode only the candidates (bbox_decode / kps_decode)
        s, p, d = strides[idx, None], priors[idx], raw_box[i, idx]
        centre, size = d[:, :2] * s + p, np.exp(d[:, 2:]) * s
        boxes = np.concatenate((centre - size / 2, centre + size / 2), 1).astype(np.float32)
        lms = (raw_kps[i, idx] * s[:, :, None] + p[:, None, :]).astype(np.float32)
        keep = nms(boxes, scores[i, idx], NMS_IOU)[:KEEP_TOP_K]  # idx is score-sorted: same greedy order as the C code
        results.append((boxes[keep], scores[i, idx[keep]].astype(np.float32), lms[keep]))
    return results


# --------------------------------------------------------------------------------------------------
# Execution backends

#: ``auto`` picks onnxruntime (if installed) then TorchScript on CPU, and eager PyTorch on a GPU.
BACKENDS = ("auto", "onnxruntime", "jit", "eager")
_HEAD_NAMES = [f"{name}{s}" for s in STRIDES for name in ("cls", "obj", "bbox", "kps")]


def export_yunet_onnx(model: YuNet, path: Union[str, os.PathLike, io.BytesIO], *, opset: int = 17) -> None:
    """Write the network (RGB float 0..255 ``(N, 3, H, W)`` in, the 12 head maps out) as ONNX.

    Batch, height and width are dynamic (height and width must be multiples of 32); decoding and NMS
    stay in :func:`postprocess`.
    """
    model = model.eval()
    dummy = torch.zeros(1, 3, 64, 64, device=next(model.parameters()).device)
    axes = {"image": {0: "batch", 2: "height", 3: "width"}}
    axes.update({n: {0: "batch", 2: f"h{n}", 3: f"w{n}"} for n in _HEAD_NAMES})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), path, opset_version=opset, input_names=["image"], output_names=_HEAD_NAMES,
            dynamic_axes=axes, dynamo=False,
        )


class _OrtRunner:
    def __init__(self, model: YuNet, threads: int | None = None):
        import onnxruntime as ort

        buf = io.BytesIO()
        export_yunet_onnx(model, buf)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = self.session.run(None, {"image": x.detach().cpu().float().contiguous().numpy()})
        return tuple(torch.from_numpy(o) for o in outs)


class _JitRunner:
    def __init__(self, model: YuNet, example: torch.Tensor):
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit is deprecated in recent releases but still the fastest here
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
            self.module = torch.jit.optimize_for_inference(torch.jit.freeze(traced))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return tuple(self.module(x))


def make_runner(model: YuNet, backend: str = "auto", example: torch.Tensor | None = None, threads: int | None = None):
    """A callable ``x -> 12 head maps`` running ``model`` on ``backend`` (see :data:`BACKENDS`).

    ``onnxruntime`` (CPU only) needs the optional onnxruntime package; ``jit`` is a frozen TorchScript
    trace with MKLDNN convolutions fused with their ReLU (3-4x faster than eager on CPU). ``auto``
    falls back to the next backend when one cannot be built.
    """
    if backend not in BACKENDS:
        raise LrferError(f"unknown YuNet backend '{backend}'", "choose one of: " + ", ".join(BACKENDS))
    on_cpu = next(model.parameters()).device.type == "cpu"
    if example is None:
        example = torch.zeros(1, 3, 64, 64, device=next(model.parameters()).device)
    if backend == "auto":
        order = ["onnxruntime", "jit", "eager"] if on_cpu else ["eager"]
        for name in order:
            if name == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
                continue
            try:
                return make_runner(model, name, example, threads)
            except Exception:
                continue
    if backend == "onnxruntime":
        if not on_cpu:
            raise LrferError("the onnxruntime YuNet backend runs on CPU only", "move the model to CPU or use backend 'eager'")
        if importlib.util.find_spec("onnxruntime") is None:
            raise LrferError("onnxruntime is not installed", "pip install onnxruntime, or use backend 'jit'")
        return _OrtRunner(model, threads)
    if backend == "jit":
        return _JitRunner(model, example)

    def eager(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if on_cpu:  # MKLDNN's eager convolutions are faster on NHWC input
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return model(x)

    return eager


# --------------------------------------------------------------------------------------------------
# Frames in, detections out


def _padded(h: int, w: int) -> tuple[int, int]:
    return -(-h // PAD_DIVISOR) * PAD_DIVISOR, -(-w // PAD_DIVISOR) * PAD_DIVISOR


def _runner_for(model: YuNet, backend: str, threads: int | None = None):
    """The model's runner for ``backend``, built once and kept on the module (tracing/export is slow)."""
    cache = model.__dict__.setdefault("_lrfer_runners", {})
    device = next(model.parameters()).device
    key = (backend, str(device), threads)
    if key not in cache:
        cache[key] = make_runner(model, backend, threads=threads)
    return cache[key]


def detect_yunet(
    model: YuNet,
    frames_rgb: Sequence[np.ndarray],
    min_score: float = 0.5,
    *,
    batch_size: int = 8,
    backend: str = "auto",
    threads: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detect faces in RGB (or gray) uint8 frames: per frame ``(boxes xyxy, scores, landmarks (N,5,2))``.

    Frames that pad to the same multiple-of-32 size run as one batch (the library pads every image to a
    multiple of 32 with zeros, and padding further would change values near the border, so frames of
    different padded size are never mixed). Landmarks are image-left eye, image-right eye, nose,
    image-left and image-right mouth corner. ``backend`` is one of :data:`BACKENDS`; the first call
    with a backend builds it (export/trace, about a second) and later calls reuse it.
    """
    if not 0.0 <= float(min_score) <= 1.0:
        raise LrferError(f"min_score {min_score} is outside [0, 1]", "pass a detection score threshold such as 0.5")
    if batch_size < 1:
        raise LrferError(f"batch_size {batch_size} must be at least 1", "pass batch_size=1 or more")
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    frames = [as_rgb(f) for f in frames_rgb]
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    results: list = [None] * len(frames)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frames):
        if f.shape[0] == 0 or f.shape[1] == 0:
            results[i] = empty
            continue
        groups.setdefault(_padded(*f.shape[:2]), []).append(i)
    if not groups:
        return results
    run = _runner_for(model, backend, threads)
    with torch.no_grad():
        for (hp, wp), idxs in groups.items():
            for start in range(0, len(idxs), batch_size):
                chunk = idxs[start : start + batch_size]
                buf = np.zeros((len(chunk), hp, wp, 3), dtype=np.uint8)
                for j, i in enumerate(chunk):
                    h, w = frames[i].shape[:2]
                    buf[j, :h, :w] = frames[i]
                x = torch.from_numpy(buf).to(device).permute(0, 3, 1, 2).to(dtype).contiguous()
                for i, res in zip(chunk, postprocess(run(x), float(min_score))):
                    results[i] = res
    return results


# --------------------------------------------------------------------------------------------------
# The detector


class YuNetDetector(FaceDetector):
    """The same YuNet network as ``yuface``, run by :func:`detect_yunet` (weights read from the
    installed ``yuface`` wheel): same detections (within a pixel), several times faster, because the
    wheel's C code is built without AVX while onnxruntime/MKLDNN use it. Frames of equal size are
    detected in batches. ``backend``: auto, onnxruntime, jit or eager (see :data:`BACKENDS`).
    """

    name = "yunet"

    def __init__(
        self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, backend: str = "auto", batch_size: int = 4,
        device: Optional[str] = None, threads: Optional[int] = 1,
    ):  # fmt: skip
        super().__init__(min_score=min_score, upscale=upscale)
        try:
            import yuface  # noqa: F401  (the weights live in its shared library)
        except ImportError:
            raise missing_package("yunet", "yuface (its weights)", YUFACE_INSTALL) from None
        if backend not in BACKENDS:
            raise LrferError(f"yunet backend '{backend}'", closest(backend, BACKENDS))
        self.model = load_yunet_from_wheel()
        if device not in (None, "cpu"):
            self.model = self.model.to(resolve_device(device))
        # One onnxruntime thread by default: Recognizer.stream detects in a reader thread while the
        # classifier runs on the other core; two threads each made both slower (bench/video_fps.py).
        self.backend, self.batch_size, self.threads = backend, batch_size, threads

    def _run(self, rgbs: list[np.ndarray]) -> list[Detections]:
        # Candidates below the threshold are dropped inside; the base class filters again after mapping back.
        out = detect_yunet(self.model, rgbs, self.min_score, batch_size=self.batch_size, backend=self.backend, threads=self.threads)
        return [Detections(b, s, lm) for b, s, lm in out]

    def _detect(self, rgb: np.ndarray) -> Detections:
        return self._run([rgb])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        rgbs = [as_rgb(f) for f in frames]
        enlarged = [self._enlarge(f) for f in rgbs]
        raw = self._run([big for big, _, _ in enlarged])
        return [self._finish(d, sx, sy, f.shape[0], f.shape[1]) for d, (_, sx, sy), f in zip(raw, enlarged, rgbs)]

