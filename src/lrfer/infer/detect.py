"""Face detection for small faces: one interface over several detectors.

A frame is an ``HxWx3`` uint8 RGB array (or ``HxW`` gray). Every detector returns
:class:`Detections` in the ORIGINAL frame's pixels: boxes ``x1 y1 x2 y2`` clipped to the frame,
scores in ``[0, 1]``, and five landmarks per face in the order image-left eye, image-right eye,
nose tip, image-left mouth corner, image-right mouth corner (``None`` when a detector gives none).
Whatever the backend, the result is sorted by score, holds no score below ``min_score`` and no two
boxes overlapping with IoU > 0.5.

Backends (``create_detector(name)``; optional packages are imported only when one is created):

``yunet`` (default)
    The same YuNet network, re-implemented in :mod:`lrfer.infer.yunet` with the weights read from
    the installed ``yuface`` wheel, run by onnxruntime (or TorchScript, or eager torch on a GPU).
    Same detections as ``yuface`` within a pixel, several times faster (the wheel's C code is built
    without AVX). Sizes found: as ``yuface``.
``yuface``
    libfacedetection's YuNet through the ``yuface`` wheel, on the CPU (the reference).
    Measured on 2026-11-22 with the astronaut photo (examples/astronaut.png) shrunk so that its
    face box is N px wide and pasted into a 640x480 noise frame at six positions: with
    ``upscale=1`` faces of 10 px and more were found at all six positions, 9 px at three, 8 px
    and less at none; with ``upscale=2`` faces down to 6 px (the smallest tried) were found at all
    six. A clean, frontal, high-contrast face: expect less on real low-quality video.
``mtcnn``
    facenet-pytorch's MTCNN (weights ship in its wheel): ``pip install --no-deps
    facenet-pytorch==2.6.0``. Runs on torch, batches frames of equal size. ``min_face_size``
    (default 12) sets the smallest face its image pyramid looks for. Measured the same way
    (2026-11-22, four positions): 10 px and more found at all four, 8 px at none.
``haar``
    OpenCV's frontal-face Haar cascade: needs ``opencv-python-headless<5`` (OpenCV 5 wheels no
    longer ship the cascade files). Its window is 24 px: measured the same way (2026-11-22, four
    positions) it found 24 px faces at all four and 20 px at none; with ``upscale=2`` it found
    14 to 24 px faces at three or four of the four positions, 12 px at one. No landmarks; its score is not a probability (see
    :class:`HaarDetector`).
``mediapipe``
    MediaPipe's BlazeFace through the legacy ``mp.solutions.face_detection`` API, which only
    mediapipe <= 0.10.21 has. It gives the mouth centre, not its corners: both mouth-corner
    landmarks hold the mouth centre. Not for small faces: its network sees the whole frame at
    128 or 192 px, and measured the same way (2026-11-22, mediapipe 0.10.21, full-range model) it
    found the 48 px face but none of 8 to 32 px, with ``upscale`` 1 or 2 alike.

``upscale`` runs detection on a copy of the frame enlarged by that factor (bilinear), so faces
below a detector's minimum size are found; boxes and landmarks are mapped back to the original
frame. A factor below 1 shrinks large frames instead. ``"auto"`` enlarges each frame until its
longer side is 1280 px, at most 2x (see :data:`AUTO_UPSCALE_SIDE`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from ..device import resolve_device
from ..errors import LrferError, closest

DEFAULT_DETECTOR = "yunet"
#: Boxes of one frame overlapping more than this are the same face: the lower-scored one is dropped.
NMS_IOU = 0.5
MAX_UPSCALE = 8.0

_REGISTRY: dict[str, type["FaceDetector"]] = {}


@dataclass
class Detections:
    """The faces found in one frame, best score first."""

    boxes: np.ndarray  # (N, 4) float32 x1 y1 x2 y2, original-frame pixels
    scores: np.ndarray  # (N,) float32 in [0, 1]
    landmarks: Optional[np.ndarray]  # (N, 5, 2) float32, or None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @staticmethod
    def empty(with_landmarks: bool = True) -> "Detections":
        return Detections(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, 5, 2), np.float32) if with_landmarks else None,
        )

    def select(self, keep: Union[np.ndarray, Sequence[int]]) -> "Detections":
        """The detections at indices (or boolean mask) ``keep``, in that order."""
        keep = np.asarray(keep)
        lm = None if self.landmarks is None else self.landmarks[keep]
        return Detections(self.boxes[keep], self.scores[keep], lm)


def register_detector(name: str) -> Callable[[type["FaceDetector"]], type["FaceDetector"]]:
    """Class decorator: make a :class:`FaceDetector` subclass available to :func:`create_detector`."""

    def wrap(cls: type["FaceDetector"]) -> type["FaceDetector"]:
        old = _REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"face detector '{name}' is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def list_detectors() -> list[str]:
    """Every registered detector name, whether or not its optional package is installed."""
    return sorted(_REGISTRY)


def create_detector(name: str = DEFAULT_DETECTOR, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, **kw) -> "FaceDetector":
    """A ready detector; ``kw`` are the backend's own options (e.g. ``min_face_size`` for mtcnn)."""
    if name not in _REGISTRY:
        raise LrferError(f"unknown face detector '{name}'", closest(name, _REGISTRY))
    cls = _REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        options = [p for p in params if p not in ("self", "min_score", "upscale")]
        for key in kw:
            if key not in options:
                hint = closest(key, options) if options else "it takes only min_score and upscale"
                raise LrferError(f"face detector '{name}' has no option '{key}'", hint)
    return cls(min_score=min_score, upscale=upscale, **kw)


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """``frame`` as an ``HxWx3`` uint8 RGB array (gray stacked to 3 channels, alpha dropped)."""
    if isinstance(frame, torch.Tensor):
        raise LrferError("a frame must be a numpy array HxWx3 (RGB) or HxW (gray), not a torch tensor", "pass tensor.numpy() in HWC order")
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise LrferError(f"a frame must be uint8, got {a.dtype}", "convert it with np.clip(x, 0, 255).astype(np.uint8)")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        return np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return a[:, :, :3]
    raise LrferError(f"a frame must be HxWx3 (RGB) or HxW (gray), got shape {a.shape}", "give an image array in HWC order")


def _check_score(min_score: float) -> float:
    if not 0.0 <= float(min_score) <= 1.0:
        raise LrferError(f"min_score must be between 0 and 1, got {min_score}", "detection scores are probabilities; 0.5 is a usual choice")
    return float(min_score)


#: ``upscale="auto"`` enlarges a frame until its longer side reaches this many pixels, at most 2x:
#: a 640x480 frame is searched at 1280x960 (faces down to ~5 px), a 1080p frame as it is. On
#: FER2013 faces pasted at 32 px into 640x480 photos, YuNet found 27% of them at 1x and 89% at
#: 2x (bench/results/photos_vs_fer.json).
AUTO_UPSCALE_SIDE = 1280


def _check_upscale(upscale: Union[float, str]) -> Union[float, str]:
    if upscale == "auto":
        return upscale
    try:
        ok = 0.0 < float(upscale) <= MAX_UPSCALE
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise LrferError(f"upscale must be in (0, {MAX_UPSCALE:g}], got {upscale}", "use 2 to find faces half the detector's minimum size")
    return float(upscale)


class FaceDetector:
    """Base class: subclasses implement :meth:`_detect` on an RGB frame already resized by ``upscale``.

    The base class takes care of input checking, ``upscale``, mapping back to the original frame,
    clipping, the ``min_score`` filter, NMS and sorting, so every backend returns the same kind
    of :class:`Detections`.
    """

    name: str = ""
    #: Whether :meth:`_detect` returns landmarks (for empty results of the right kind).
    has_landmarks: bool = True

    def __init__(self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0):
        self.min_score = _check_score(min_score)
        self.upscale = _check_upscale(upscale)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_score={self.min_score:g}, upscale={self.upscale})"

    # -- subclasses -------------------------------------------------------------------------
    def _detect(self, rgb: np.ndarray) -> Detections:
        """Raw detections in ``rgb``'s pixels; scores in [0, 1]. No filtering needed."""
        raise NotImplementedError

    # -- public -----------------------------------------------------------------------------
    def detect(self, frame: np.ndarray) -> Detections:
        rgb = as_rgb(frame)
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            return Detections.empty(self.has_landmarks)
        big, sx, sy = self._enlarge(rgb)
        return self._finish(self._detect(big), sx, sy, rgb.shape[0], rgb.shape[1])

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [self.detect(f) for f in frames]

    def close(self) -> None:
        """Free the backend's resources (a no-op for most)."""

    def __enter__(self) -> "FaceDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- shared steps -----------------------------------------------------------------------
    def _enlarge(self, rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The frame resized by ``upscale`` and the actual x, y factors (sizes are rounded)."""
        h, w = rgb.shape[:2]
        factor = min(2.0, max(1.0, AUTO_UPSCALE_SIDE / max(h, w))) if self.upscale == "auto" else self.upscale
        if factor == 1.0:
            return rgb, 1.0, 1.0
        nw, nh = max(1, round(w * factor)), max(1, round(h * factor))
        big = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((nw, nh), Image.BILINEAR))
        return big, nw / w, nh / h

    def _finish(self, det: Detections, sx: float, sy: float, h: int, w: int) -> Detections:
        if len(det) == 0:
            return Detections.empty(det.landmarks is not None)
        scale = np.array([sx, sy], np.float32)
        boxes = np.asarray(det.boxes, np.float32).reshape(-1, 4) / np.tile(scale, 2)
        scores = np.clip(np.asarray(det.scores, np.float32).reshape(-1), 0.0, 1.0)
        lm = None if det.landmarks is None else np.asarray(det.landmarks, np.float32).reshape(-1, 5, 2) / scale
        # Landmarks are left unclipped: a face cut by the frame edge keeps its true eye line.
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        ok = (scores >= self.min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out = Detections(boxes, scores, lm).select(np.flatnonzero(ok))
        if len(out) == 0:
            return out
        return out.select(nms(out.boxes, out.scores, NMS_IOU))


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    Plain numpy: a frame has a handful of faces, and torchvision would cost seconds to import.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep: list[int] = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = (np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])).clip(0)
        h = (np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])).clip(0)
        inter = w * h
        union = area[i] + area[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def _missing(detector: str, package: str, install: str) -> LrferError:
    return LrferError(f"detector '{detector}' needs {package}", f"install it: {install}")


# ------------------------------------------------------------------------------------------
# yuface
# ------------------------------------------------------------------------------------------


@register_detector("yuface")
class YuFaceDetector(FaceDetector):
    """libfacedetection (YuNet) via the ``yuface`` wheel.

    ``yuface.c_detect`` takes a contiguous BGR uint8 frame and returns int16 rows
    ``[score 0-100, x, y, w, h, 5 landmark x/y pairs, unused]``. The landmarks come in the order
    this module uses (image-left eye first, checked on the astronaut photo and its mirror image).
    Frames are detected one after another: the wheel's C function releases the GIL and then calls
    back into Python, so two threads calling it at once deadlocked here (2026-11-23, on its first
    concurrent calls). ``yunet`` runs the same network faster and batches safely.
    """

    INSTALL = "pip install yuface"

    def __init__(self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0):
        super().__init__(min_score=min_score, upscale=upscale)
        try:
            import yuface
        except ImportError:
            raise _missing("yuface", "yuface", self.INSTALL) from None
        self._c_detect = yuface.c_detect

    def _detect(self, rgb: np.ndarray) -> Detections:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        r = np.asarray(self._c_detect(bgr), np.float32).reshape(-1, 16)
        boxes = r[:, 1:5].copy()
        boxes[:, 2:] += boxes[:, :2]
        return Detections(boxes, r[:, 0] / 100.0, r[:, 5:15].reshape(-1, 5, 2))


@register_detector("yunet")
class YuNetDetector(FaceDetector):
    """The same YuNet network as ``yuface``, run by :mod:`lrfer.infer.yunet` (weights read from the
    installed ``yuface`` wheel): same detections (within a pixel), several times faster, because the
    wheel's C code is built without AVX while onnxruntime/MKLDNN use it. Frames of equal size are
    detected in batches. ``backend``: auto, onnxruntime, jit or eager (see :data:`lrfer.infer.yunet.BACKENDS`).
    """

    def __init__(
        self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, backend: str = "auto", batch_size: int = 4,
        device: Optional[str] = None, threads: Optional[int] = 1,
    ):  # fmt: skip
        super().__init__(min_score=min_score, upscale=upscale)
        try:
            import yuface  # noqa: F401  (the weights live in its shared library)
        except ImportError:
            raise _missing("yunet", "yuface (its weights)", YuFaceDetector.INSTALL) from None
        from . import yunet

        if backend not in yunet.BACKENDS:
            raise LrferError(f"yunet backend '{backend}'", closest(backend, yunet.BACKENDS))
        self._yunet = yunet
        self.model = yunet.load_yunet_from_wheel()
        if device not in (None, "cpu"):
            self.model = self.model.to(resolve_device(device))
        # One onnxruntime thread by default: Recognizer.stream detects in a reader thread while the
        # classifier runs on the other core; two threads each made both slower (bench/video_fps.py).
        self.backend, self.batch_size, self.threads = backend, batch_size, threads

    def _run(self, rgbs: list[np.ndarray]) -> list[Detections]:
        # Candidates below the threshold are dropped inside; the base class filters again after mapping back.
        out = self._yunet.detect_yunet(self.model, rgbs, self.min_score, batch_size=self.batch_size, backend=self.backend, threads=self.threads)
        return [Detections(b, s, lm) for b, s, lm in out]

    def _detect(self, rgb: np.ndarray) -> Detections:
        return self._run([rgb])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        rgbs = [as_rgb(f) for f in frames]
        enlarged = [self._enlarge(f) for f in rgbs]
        raw = self._run([big for big, _, _ in enlarged])
        return [self._finish(d, sx, sy, f.shape[0], f.shape[1]) for d, (_, sx, sy), f in zip(raw, enlarged, rgbs)]


# ------------------------------------------------------------------------------------------
# MTCNN (facenet-pytorch)
# ------------------------------------------------------------------------------------------

_MTCNN_MODULE: Optional[types.ModuleType] = None
_FNP_ALIAS = "_lrfer_facenet_pytorch"


def _load_mtcnn_module() -> types.ModuleType:
    """``facenet_pytorch.models.mtcnn`` without running the package's ``__init__``.

    That ``__init__`` imports InceptionResnetV1, which needs ``requests`` (a dependency that
    ``--no-deps`` leaves out and MTCNN never uses). So the package's folders are mounted under a
    private name and only the MTCNN modules are imported from them; a real ``facenet_pytorch``
    import elsewhere is left untouched.
    """
    global _MTCNN_MODULE
    if _MTCNN_MODULE is not None:
        return _MTCNN_MODULE
    install = "pip install --no-deps facenet-pytorch==2.6.0"
    try:
        spec = importlib.util.find_spec("facenet_pytorch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _missing("mtcnn", "facenet-pytorch", install)
    root = Path(list(spec.submodule_search_locations)[0])
    if not (root / "models" / "mtcnn.py").is_file() or not (root / "data" / "pnet.pt").is_file():
        raise LrferError(f"facenet-pytorch at {root} has no MTCNN module or weights", f"reinstall it: {install}")
    for name, path in ((_FNP_ALIAS, root), (f"{_FNP_ALIAS}.models", root / "models")):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    try:
        _MTCNN_MODULE = importlib.import_module(f"{_FNP_ALIAS}.models.mtcnn")
    except ImportError as err:
        need = getattr(err, "name", None) or "its dependencies"
        raise LrferError(f"detector 'mtcnn' could not load facenet-pytorch's MTCNN ({err})", f"install {need}: pip install {need}") from None
    return _MTCNN_MODULE


@register_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    """MTCNN from facenet-pytorch: a three-stage cascade (P-, R-, O-Net) on an image pyramid.

    ``min_face_size`` is the smallest face the pyramid looks for (the first level enlarges the
    frame by 12 / min_face_size); ``thresholds`` are the three stages' score thresholds;
    ``factor`` the pyramid step. Frames of equal size are batched ``batch_size`` at a time.
    """

    def __init__(
        self,
        *,
        min_score: float = 0.5,
        upscale: Union[float, str] = 1.0,
        min_face_size: int = 12,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        device: Union[str, torch.device, None] = None,
        batch_size: int = 8,
    ):
        super().__init__(min_score=min_score, upscale=upscale)
        if not int(min_face_size) >= 4:
            raise LrferError(f"min_face_size must be at least 4 px, got {min_face_size}", "use 12 for small faces, or upscale")
        thresholds = tuple(float(t) for t in thresholds)
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise LrferError(f"thresholds must be three numbers in [0, 1], got {thresholds}", "the default is (0.6, 0.7, 0.7)")
        if not 0.0 < float(factor) < 1.0:
            raise LrferError(f"factor must be between 0 and 1, got {factor}", "the default pyramid step is 0.709")
        mod = _load_mtcnn_module()
        self.device = resolve_device(device)
        self.min_face_size = int(min_face_size)
        self.thresholds = list(thresholds)
        self.factor = float(factor)
        self.batch_size = max(1, int(batch_size))
        self._detect_face = mod.detect_face
        self._nets = [net().to(self.device).eval() for net in (mod.PNet, mod.RNet, mod.ONet)]

    def _run(self, rgbs: list[np.ndarray]) -> list[Detections]:
        imgs = torch.from_numpy(np.stack(rgbs)).to(self.device)
        with torch.inference_mode():
            boxes, points = self._detect_face(imgs, self.min_face_size, *self._nets, self.thresholds, self.factor, self.device)
        out = []
        for b, p in zip(boxes, points):
            b = np.asarray(b, np.float32).reshape(-1, 5)
            out.append(Detections(b[:, :4], b[:, 4], np.asarray(p, np.float32).reshape(-1, 5, 2)))
        return out

    def _detect(self, rgb: np.ndarray) -> Detections:
        return self._run([rgb])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        rgbs = [as_rgb(f) for f in frames]
        results: list[Optional[Detections]] = [None] * len(rgbs)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            if rgb.shape[0] == 0 or rgb.shape[1] == 0:
                results[i] = Detections.empty()
            else:
                groups.setdefault(rgb.shape[:2], []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start : start + self.batch_size]
                enlarged = [self._enlarge(rgbs[i]) for i in chunk]
                raw = self._run([e[0] for e in enlarged])
                for i, (_, sx, sy), det in zip(chunk, enlarged, raw):
                    results[i] = self._finish(det, sx, sy, *rgbs[i].shape[:2])
        return results  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------
# OpenCV Haar cascade
# ------------------------------------------------------------------------------------------


@register_detector("haar")
class HaarDetector(FaceDetector):
    """OpenCV's ``haarcascade_frontalface_default.xml`` (or ``cascade``, a path to another one).

    A cascade gives no probability. The score is ``n / (n + min_neighbors)`` for a face found by
    ``n`` overlapping windows: it grows with the evidence, and a face is only accepted by OpenCV
    with ``n > min_neighbors``, so every accepted face scores above 0.5.
    """

    has_landmarks = False
    INSTALL = 'pip install "opencv-python-headless<5"'
    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(
        self,
        *,
        min_score: float = 0.5,
        upscale: Union[float, str] = 1.0,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_face_size: int = 24,
        cascade: Union[str, Path, None] = None,
    ):
        super().__init__(min_score=min_score, upscale=upscale)
        try:
            import cv2
        except ImportError:
            raise _missing("haar", "OpenCV", self.INSTALL) from None
        if cascade is None:
            folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
            path = Path(folder) / self.CASCADE if folder else None
            if path is None or not path.is_file():
                raise LrferError(
                    f"detector 'haar' needs {self.CASCADE}, which OpenCV {cv2.__version__} does not ship",
                    f"install an OpenCV 4 wheel: {self.INSTALL}",
                )
        else:
            path = Path(cascade)
            if not path.is_file():
                raise LrferError(f"no such cascade file: {path}", "give the path of an OpenCV cascade .xml")
        clf = cv2.CascadeClassifier(str(path))
        if clf.empty():
            raise LrferError(f"OpenCV could not load the cascade {path}", "give a valid OpenCV cascade .xml")
        if not float(scale_factor) > 1.0:
            raise LrferError(f"scale_factor must be above 1, got {scale_factor}", "1.1 is usual")
        self._cv2 = cv2
        self._clf = clf
        self.scale_factor = float(scale_factor)
        self.min_neighbors = max(1, int(min_neighbors))
        self.min_face_size = max(1, int(min_face_size))

    def _detect(self, rgb: np.ndarray) -> Detections:
        gray = self._cv2.cvtColor(np.ascontiguousarray(rgb), self._cv2.COLOR_RGB2GRAY)
        size = (self.min_face_size, self.min_face_size)
        rects, counts = self._clf.detectMultiScale2(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=size)
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        n = np.asarray(counts, np.float32).reshape(-1)
        boxes = rects.copy()
        boxes[:, 2:] += boxes[:, :2]
        return Detections(boxes, n / (n + self.min_neighbors), None)


# ------------------------------------------------------------------------------------------
# MediaPipe (legacy solutions API)
# ------------------------------------------------------------------------------------------


@register_detector("mediapipe")
class MediaPipeDetector(FaceDetector):
    """MediaPipe BlazeFace via ``mp.solutions.face_detection`` (mediapipe <= 0.10.21).

    ``model_selection`` 0 is the short-range model (faces within ~2 m), 1 the full-range model
    (default here: small, distant faces). MediaPipe's keypoints are right eye, left eye (the
    subject's: image-left first), nose tip, mouth centre and the two ear tragions; the mouth
    centre fills both mouth-corner slots. Not thread-safe: frames run one after another.
    """

    INSTALL = 'pip install --no-deps "mediapipe==0.10.21" absl-py attrs "protobuf>=4.25.3,<5"'

    def __init__(self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, model_selection: int = 1):
        super().__init__(min_score=min_score, upscale=upscale)
        if model_selection not in (0, 1):
            raise LrferError(f"model_selection must be 0 (short range) or 1 (full range), got {model_selection}", "use 1 for small, distant faces")
        try:
            import mediapipe as mp
        except ImportError:
            raise _missing("mediapipe", "mediapipe 0.10.21 (the last with mp.solutions)", self.INSTALL) from None
        solutions = getattr(mp, "solutions", None)
        face_detection = getattr(solutions, "face_detection", None)
        if face_detection is None:
            version = getattr(mp, "__version__", "?")
            raise LrferError(f"detector 'mediapipe' needs the legacy mp.solutions API, which mediapipe {version} no longer has", f"install the last release that has it: {self.INSTALL}")
        self.model_selection = model_selection
        self._fd = face_detection.FaceDetection(model_selection=model_selection, min_detection_confidence=self.min_score)

    def _detect(self, rgb: np.ndarray) -> Detections:
        if self._fd is None:
            raise LrferError("this mediapipe detector was closed", "create a new one with create_detector('mediapipe')")
        h, w = rgb.shape[:2]
        res = self._fd.process(np.ascontiguousarray(rgb))
        dets = res.detections or []
        if not dets:
            return Detections.empty()
        boxes = np.zeros((len(dets), 4), np.float32)
        scores = np.zeros((len(dets),), np.float32)
        lm = np.zeros((len(dets), 5, 2), np.float32)
        for i, d in enumerate(dets):
            bb = d.location_data.relative_bounding_box
            boxes[i] = (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h)
            scores[i] = d.score[0] if len(d.score) else 0.0
            kp = [(k.x * w, k.y * h) for k in d.location_data.relative_keypoints]
            if len(kp) >= 4:
                lm[i] = (kp[0], kp[1], kp[2], kp[3], kp[3])
        return Detections(boxes, scores, lm)

    def close(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None:
            fd.close()
            self._fd = None
