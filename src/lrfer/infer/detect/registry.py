"""The detectors by name: :func:`create_detector` builds one, :func:`list_detectors` names them all.

Every back end is imported here at module top: each imports only :mod:`.base`, and imports its
optional package (onnxruntime, torch, yuface, facenet-pytorch, OpenCV, mediapipe) only when a detector
is built, so naming them all costs nothing (and imports no torch).
"""

from __future__ import annotations

import inspect
from typing import Union

from ...errors import LrferError, closest
from .base import FaceDetector
from .haar import HaarDetector
from .mediapipe import MediaPipeDetector
from .mtcnn import MTCNNDetector
from .yuface import YuFaceDetector
from .yunet import YuNetDetector

DEFAULT_DETECTOR = YuNetDetector.name
_DETECTORS: dict[str, type[FaceDetector]] = {cls.name: cls for cls in (YuNetDetector, YuFaceDetector, MTCNNDetector, HaarDetector, MediaPipeDetector)}


def list_detectors() -> list[str]:
    """Every detector name, whether or not its optional package is installed."""
    return sorted(_DETECTORS)


def create_detector(name: str = DEFAULT_DETECTOR, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, **kw) -> FaceDetector:
    """A ready detector; ``kw`` are the backend's own options (e.g. ``min_face_size`` for mtcnn)."""
    if name not in _DETECTORS:
        raise LrferError(f"unknown face detector '{name}'", closest(name, _DETECTORS))
    cls = _DETECTORS[name]
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        options = [p for p in params if p not in ("self", "min_score", "upscale")]
        for key in kw:
            if key not in options:
                hint = closest(key, options) if options else "it takes only min_score and upscale"
                raise LrferError(f"face detector '{name}' has no option '{key}'", hint)
    return cls(min_score=min_score, upscale=upscale, **kw)
