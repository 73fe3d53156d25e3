"""``yunet`` (the default detector): libfacedetection's YuNet from the ONNX graph shipped in the package.

``lrfer/assets/yunet/yunet.onnx`` is libfacedetection's 2023 YuNet (BSD-3, Shiqi Yu et al.; the licence
notice lies beside it), exported once from the weights of the ``yuface`` wheel by
``tools/make_yunet_onnx.py``; :mod:`.yunet_net` re-implements the network in torch and explains it.
Here onnxruntime runs that graph on the CPU and numpy decodes its head maps the way the library's
``detection_output`` does, so the default detector needs neither torch nor the wheel. It finds the same
faces as the wheel's own C code (within a pixel and 0.01 of score), several times faster: the wheel is
built without AVX, onnxruntime uses it.

The ``jit`` and ``eager`` back ends, and any ``device`` but the CPU, run the torch re-implementation
instead (they need ``lrfer[train]``, which brings torch and yuface); they give the same detections.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ...errors import LrferError, closest
from ...runtime.gpu import TRAIN_HINT, has_torch, wants_gpu
from ._yunet_layout import HEAD_NAMES, STRIDES
from .base import Detections, FaceDetector, as_rgb, nms

__all__ = [
    "BACKENDS",
    "HEAD_NAMES",
    "YUNET_ONNX",
    "YuNetDetector",
    "detect_yunet",
    "onnx_runner",
    "postprocess",
]

#: The shipped graph and its licence notice.
YUNET_ONNX = Path(__file__).resolve().parents[2] / "assets" / "yunet" / "yunet.onnx"
YUNET_LICENSE = YUNET_ONNX.with_name("LICENSE")
#: The thresholds ``objectdetect_cnn`` passes to ``detection_output`` (read from the .so's code).
NMS_IOU = 0.45
CANDIDATE_SCORE = 0.2
TOP_K = 1000
KEEP_TOP_K = 512
PAD_DIVISOR = 32
#: ``auto`` and ``onnxruntime`` run the shipped graph on the CPU; ``jit`` and ``eager`` run torch.
BACKENDS = ("auto", "onnxruntime", "jit", "eager")

#: ``float32 (N, 3, H, W)`` RGB 0..255 in, the 12 head maps out (numpy).
Runner = Callable[[np.ndarray], Sequence[np.ndarray]]


# --------------------------------------------------------------------------------------------------
# Decoding and NMS


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # The C code clamps before exp so that it never overflows; float32 all through, as there.
    return 1.0 / (1.0 + np.exp(-np.clip(x, -88.3762626647949, 88.3762626647949)))


def postprocess(heads: Sequence[np.ndarray], min_score: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The 12 head maps of a batch (:data:`HEAD_NAMES` order) -> per image ``(boxes xyxy (N,4), scores (N,), landmarks (N,5,2))``.

    Scores, decoding and the greedy NMS follow libfacedetection's ``detection_output`` (stable sort,
    top 1000, suppress when IoU > 0.45, keep at most 512); candidates below ``min_score`` are dropped
    first, which cannot change which higher-scored boxes survive greedy NMS.
    """
    scores_l, box_l, kps_l, prior_l, stride_l = [], [], [], [], []
    for k, stride in enumerate(STRIDES):
        cls, obj, bbox, kps = (np.asarray(h, np.float32) for h in heads[4 * k : 4 * k + 4])
        n, _, h, w = cls.shape
        scores_l.append(np.sqrt(_sigmoid(cls) * _sigmoid(obj)).reshape(n, h * w))
        box_l.append(bbox.transpose(0, 2, 3, 1).reshape(n, h * w, 4))
        kps_l.append(kps.transpose(0, 2, 3, 1).reshape(n, h * w, 5, 2))
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) * stride
        prior_l.append(np.stack((xs.ravel(), ys.ravel()), -1))
        stride_l.append(np.full(h * w, stride, np.float32))
    scores = np.concatenate(scores_l, 1)
    raw_box, raw_kps = np.concatenate(box_l, 1), np.concatenate(kps_l, 1)
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
# The shipped graph on onnxruntime

_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path: Path, threads: Optional[int]):
    """One onnxruntime session per (graph, threads) in this process: ``run`` is thread-safe, and
    every detector built after the first starts at once."""
    key = (str(path), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            try:
                import onnxruntime as ort
            except ImportError:
                raise LrferError("the yunet detector needs onnxruntime", "pip install onnxruntime") from None
            if not path.is_file():
                raise LrferError(f"the YuNet graph {path} is missing", "reinstall lrfer (pip install --force-reinstall lrfer)")
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = max(0, int(threads or 0))  # 0: onnxruntime's default, one per core
            opts.inter_op_num_threads = 1
            try:
                _SESSIONS[key] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except Exception as err:  # onnxruntime raises its own exception types for a bad file
                raise LrferError(f"cannot load the YuNet graph {path} ({err})", "reinstall lrfer (pip install --force-reinstall lrfer)") from None
        return _SESSIONS[key]


def onnx_runner(threads: Optional[int] = 1, path: Union[str, Path, None] = None) -> Runner:
    """The shipped graph (or ``path``) on onnxruntime's CPU provider with ``threads`` intra-op threads
    (None: one per core), as a :data:`Runner`; the session is shared by every runner of the process."""
    session = _session(Path(path) if path is not None else YUNET_ONNX, threads)
    names = list(HEAD_NAMES)
    return lambda x: session.run(names, {"image": x})


# --------------------------------------------------------------------------------------------------
# Frames in, detections out


def _padded(h: int, w: int) -> tuple[int, int]:
    return -(-h // PAD_DIVISOR) * PAD_DIVISOR, -(-w // PAD_DIVISOR) * PAD_DIVISOR


def detect_yunet(
    run: Runner, frames_rgb: Sequence[np.ndarray], min_score: float = 0.5, *, batch_size: int = 8
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detect faces in RGB (or gray) uint8 frames: per frame ``(boxes xyxy, scores, landmarks (N,5,2))``.

    ``run`` is a :data:`Runner`: :func:`onnx_runner` (the shipped graph) or ``yunet_net.make_runner``
    (torch). Frames that pad to the same multiple-of-32 size run as one batch (the library pads every
    image to a multiple of 32 with zeros, and padding further would change values near the border, so
    frames of different padded size are never mixed). Landmarks are image-left eye, image-right eye,
    nose, image-left and image-right mouth corner.
    """
    if not 0.0 <= float(min_score) <= 1.0:
        raise LrferError(f"min_score {min_score} is outside [0, 1]", "pass a detection score threshold such as 0.5")
    if batch_size < 1:
        raise LrferError(f"batch_size {batch_size} must be at least 1", "pass batch_size=1 or more")
    frames = [as_rgb(f) for f in frames_rgb]
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    results: list = [None] * len(frames)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(frames):
        if f.shape[0] == 0 or f.shape[1] == 0:
            results[i] = empty
            continue
        groups.setdefault(_padded(*f.shape[:2]), []).append(i)
    for (hp, wp), idxs in groups.items():
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start : start + batch_size]
            x = np.zeros((len(chunk), 3, hp, wp), np.float32)
            for j, i in enumerate(chunk):
                h, w = frames[i].shape[:2]
                x[j, :, :h, :w] = frames[i].transpose(2, 0, 1)
            for i, res in zip(chunk, postprocess(run(x), float(min_score))):
                results[i] = res
    return results


# --------------------------------------------------------------------------------------------------
# The detector


def _torch_runner(backend: str, device: Optional[str]) -> Runner:
    """The torch re-implementation (``lrfer[train]``: torch for the network, yuface for its weights)."""
    if not has_torch():
        where = f"backend '{backend}'" if backend in ("jit", "eager") else f"device '{device}'"
        raise LrferError(f"the yunet detector's {where} needs torch", f"{TRAIN_HINT}, or use the default backend on the CPU")
    from .yunet_net import torch_runner

    return torch_runner(backend, device)


def _on_cpu(device: Optional[str]) -> bool:
    """Whether ``device`` is the CPU: unset, ``cpu``, or ``auto`` where there is no GPU; any other
    name runs the torch network."""
    return device in (None, "cpu") or (device == "auto" and not wants_gpu(device))


class YuNetDetector(FaceDetector):
    """libfacedetection's YuNet, run by :func:`detect_yunet`: the same detections as the ``yuface`` wheel
    (within a pixel), several times faster. Frames of equal size are detected in batches of
    ``batch_size`` (default: 1 on onnxruntime, 4 on torch).

    ``backend``: ``auto`` or ``onnxruntime`` run the shipped graph on the CPU (no torch); ``jit`` and
    ``eager`` run the torch re-implementation, as does any ``device`` but the CPU (eager on a GPU).
    ``threads``: onnxruntime's intra-op threads (None: one per core).
    """

    name = "yunet"

    def __init__(
        self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, backend: str = "auto", batch_size: Optional[int] = None,
        device: Optional[str] = None, threads: Optional[int] = 1,
    ):  # fmt: skip
        super().__init__(min_score=min_score, upscale=upscale)
        if backend not in BACKENDS:
            raise LrferError(f"unknown yunet backend '{backend}'", closest(backend, BACKENDS))
        on_cpu = _on_cpu(device)
        if backend == "onnxruntime" and not on_cpu:
            raise LrferError(f"the yunet backend 'onnxruntime' runs on the CPU only, not '{device}'", "leave device unset, or use backend 'eager'")
        # One onnxruntime thread by default: Recognizer.stream detects in a reader thread while the
        # classifier runs on the other core; two threads each made both slower (bench/video_fps.py).
        on_ort = backend in ("auto", "onnxruntime") and on_cpu
        # One frame per onnxruntime call is fastest per frame on a CPU: 6.0 against 7.4 ms at
        # 512x512 and 6.2 against 8.9 at 640x480 in batches of 4 (a batch's activations outgrow
        # the cache; profiled by hand on the 2-core VM, 2026-12-05). A GPU wants batches.
        self.batch_size = int(batch_size) if batch_size is not None else (1 if on_ort else 4)
        self.backend, self.threads, self.device = backend, threads, device
        self._runner = onnx_runner(threads) if on_ort else _torch_runner(backend, device)

    def _run(self, rgbs: list[np.ndarray]) -> list[Detections]:
        # Candidates below the threshold are dropped inside; the base class filters again after mapping back.
        out = detect_yunet(self._runner, rgbs, self.min_score, batch_size=self.batch_size)
        return [Detections(b, s, lm) for b, s, lm in out]

    def _detect(self, rgb: np.ndarray) -> Detections:
        return self._run([rgb])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        rgbs = [as_rgb(f) for f in frames]
        enlarged = [self._enlarge(f) for f in rgbs]
        raw = self._run([big for big, _, _ in enlarged])
        return [self._finish(d, sx, sy, f.shape[0], f.shape[1]) for d, (_, sx, sy), f in zip(raw, enlarged, rgbs)]
