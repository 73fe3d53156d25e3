"""Face detection for small faces: one interface over several detectors.

``create_detector(name)`` builds one; optional packages are imported only then.

- ``yunet`` (default): libfacedetection's YuNet from the ONNX graph shipped in the package, run by
  onnxruntime without torch (or its torch re-implementation: TorchScript, or eager on a GPU). The one to use.
- ``yuface``: the same YuNet through the ``yuface`` wheel's C code: the reference ``yunet`` is
  checked against, several times slower.
- ``mtcnn``: facenet-pytorch's MTCNN, for a second opinion that shares nothing with YuNet.
- ``haar``: OpenCV's Haar cascade: no landmarks, 24 px window; a classic baseline.
- ``mediapipe``: BlazeFace (legacy ``mp.solutions``): large, near faces only.

What each one finds, measured on which photos and when: docs/detectors.md. The interface and the
rules every back end follows (pixels, landmark order, ``upscale``, NMS): :mod:`.base`.
"""

from .base import AUTO_UPSCALE_SIDE, Detections, FaceDetector, as_rgb, nms
from .registry import DEFAULT_DETECTOR, create_detector, list_detectors

__all__ = ["AUTO_UPSCALE_SIDE", "DEFAULT_DETECTOR", "Detections", "FaceDetector", "as_rgb", "create_detector", "list_detectors", "nms"]
