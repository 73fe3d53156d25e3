"""``haar``: OpenCV's frontal-face Haar cascade. No landmarks, and a 24 px window: use ``upscale``
for smaller faces. Needs ``opencv-python-headless<5`` (OpenCV 5 wheels no longer ship the cascade files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from ...errors import LrferError
from .base import Detections, FaceDetector, missing_package

INSTALL = 'pip install "opencv-python-headless<5"'
CASCADE = "haarcascade_frontalface_default.xml"


class HaarDetector(FaceDetector):
    """OpenCV's ``haarcascade_frontalface_default.xml`` (or ``cascade``, a path to another one).

    A cascade gives no probability. The score is ``n / (n + min_neighbors)`` for a face found by
    ``n`` overlapping windows: it grows with the evidence, and a face is only accepted by OpenCV
    with ``n > min_neighbors``, so every accepted face scores above 0.5.
    """

    name = "haar"
    has_landmarks = False

    def __init__(
        self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, scale_factor: float = 1.1, min_neighbors: int = 5,
        min_face_size: int = 24, cascade: Union[str, Path, None] = None,
    ):  # fmt: skip
        super().__init__(min_score=min_score, upscale=upscale)
        try:
            import cv2
        except ImportError:
            raise missing_package("haar", "OpenCV", INSTALL) from None
        path = _cascade_path(cv2, cascade)
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


def _cascade_path(cv2, cascade: Union[str, Path, None]) -> Path:
    """The cascade file to load: ``cascade``, or the frontal-face one OpenCV 4 wheels ship."""
    if cascade is not None:
        path = Path(cascade)
        if not path.is_file():
            raise LrferError(f"no such cascade file: {path}", "give the path of an OpenCV cascade .xml")
        return path
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder) / CASCADE if folder else None
    if path is None or not path.is_file():
        raise LrferError(f"detector 'haar' needs {CASCADE}, which OpenCV {cv2.__version__} does not ship", f"install an OpenCV 4 wheel: {INSTALL}")
    return path
