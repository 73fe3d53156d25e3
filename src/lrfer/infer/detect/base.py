"""What every face detector shares: the :class:`Detections` it returns and the :class:`FaceDetector`
base class that checks input frames, applies ``upscale``, maps results back to the frame, filters
by ``min_score`` and runs NMS, so every back end returns the same kind of result.

A frame is an ``HxWx3`` uint8 RGB array (or ``HxW`` gray). Every detector returns
:class:`Detections` in the ORIGINAL frame's pixels: boxes ``x1 y1 x2 y2`` clipped to the frame,
scores in ``[0, 1]``, and five landmarks per face in the order image-left eye, image-right eye,
nose tip, image-left mouth corner, image-right mouth corner (``None`` when a detector gives none).
The result is sorted by score, holds no score below ``min_score`` and no two boxes overlapping
with IoU > 0.5.

``upscale`` runs detection on a copy of the frame enlarged by that factor (bilinear), so faces
below a detector's minimum size are found; boxes and landmarks are mapped back to the original
frame. A factor below 1 shrinks large frames instead. ``"auto"`` enlarges each frame until its
longer side is 1280 px, at most 2x (see :data:`AUTO_UPSCALE_SIDE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from ...errors import LrferError

#: Boxes of one frame overlapping more than this are the same face: the lower-scored one is dropped.
NMS_IOU = 0.5
MAX_UPSCALE = 8.0


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


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """``frame`` as an ``HxWx3`` uint8 RGB array (gray stacked to 3 channels, alpha dropped)."""
    if type(frame).__module__.startswith("torch"):  # by name: checking needs no torch import
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


def missing_package(detector: str, package: str, install: str) -> LrferError:
    """The one-line error of a detector whose optional package is not installed."""
    return LrferError(f"detector '{detector}' needs {package}", f"install it: {install}")
