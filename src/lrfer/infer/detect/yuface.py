"""``yuface``: libfacedetection's YuNet through the ``yuface`` wheel, on the CPU.

The reference the ``yunet`` detector is checked against (same network, same weights). The wheel's
C code is built without AVX, so ``yunet`` runs the same detections several times faster.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from .base import Detections, FaceDetector, missing_package

#: The wheel carries both this detector and the weights the ``yunet`` detector's graph was made from.
INSTALL = "pip install yuface"


class YuFaceDetector(FaceDetector):
    """libfacedetection (YuNet) via the ``yuface`` wheel.

    ``yuface.c_detect`` takes a contiguous BGR uint8 frame and returns int16 rows
    ``[score 0-100, x, y, w, h, 5 landmark x/y pairs, unused]``. The landmarks come in the order
    this module uses (image-left eye first, checked on the astronaut photo and its mirror image).
    Frames are detected one after another: the wheel's C function releases the GIL and then calls
    back into Python, so two threads calling it at once deadlocked here (2026-11-23, on its first
    concurrent calls). ``yunet`` runs the same network faster and batches safely.
    """

    name = "yuface"

    def __init__(self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0):
        super().__init__(min_score=min_score, upscale=upscale)
        try:
            import yuface
        except ImportError:
            raise missing_package("yuface", "yuface", INSTALL) from None
        self._c_detect = yuface.c_detect

    def _detect(self, rgb: np.ndarray) -> Detections:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        r = np.asarray(self._c_detect(bgr), np.float32).reshape(-1, 16)
        boxes = r[:, 1:5].copy()
        boxes[:, 2:] += boxes[:, :2]
        return Detections(boxes, r[:, 0] / 100.0, r[:, 5:15].reshape(-1, 5, 2))

