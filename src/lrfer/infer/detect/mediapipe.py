"""``mediapipe``: MediaPipe's BlazeFace through the legacy ``mp.solutions`` API (mediapipe <= 0.10.21).

Not for small faces: its network sees the whole frame at 128 or 192 px. Kept for comparison and
for large, near faces.
"""

from __future__ import annotations

from typing import Union

import numpy as np

from ...errors import LrferError
from .base import Detections, FaceDetector, missing_package

INSTALL = 'pip install --no-deps "mediapipe==0.10.21" absl-py attrs "protobuf>=4.25.3,<5"'


class MediaPipeDetector(FaceDetector):
    """MediaPipe BlazeFace via ``mp.solutions.face_detection`` (mediapipe <= 0.10.21).

    ``model_selection`` 0 is the short-range model (faces within ~2 m), 1 the full-range model
    (default here: small, distant faces). MediaPipe's keypoints are right eye, left eye (the
    subject's: image-left first), nose tip, mouth centre and the two ear tragions; the mouth
    centre fills both mouth-corner slots. Not thread-safe: frames run one after another.
    """

    name = "mediapipe"

    def __init__(self, *, min_score: float = 0.5, upscale: Union[float, str] = 1.0, model_selection: int = 1):
        super().__init__(min_score=min_score, upscale=upscale)
        if model_selection not in (0, 1):
            raise LrferError(f"model_selection must be 0 (short range) or 1 (full range), got {model_selection}", "use 1 for small, distant faces")
        try:
            import mediapipe as mp
        except ImportError:
            raise missing_package("mediapipe", "mediapipe 0.10.21 (the last with mp.solutions)", INSTALL) from None
        solutions = getattr(mp, "solutions", None)
        face_detection = getattr(solutions, "face_detection", None)
        if face_detection is None:
            version = getattr(mp, "__version__", "?")
            raise LrferError(f"detector 'mediapipe' needs the legacy mp.solutions API, which mediapipe {version} no longer has", f"install the last release that has it: {INSTALL}")
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
