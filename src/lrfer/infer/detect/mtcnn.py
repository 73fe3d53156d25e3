"""``mtcnn``: facenet-pytorch's MTCNN, a three-stage cascade run by torch (weights ship in its wheel).

Install with ``pip install --no-deps facenet-pytorch==2.6.0``. Frames of equal size are batched;
``min_face_size`` (default 12) sets the smallest face its image pyramid looks for.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from ...errors import LrferError
from .base import Detections, FaceDetector, as_rgb, missing_package

if TYPE_CHECKING:
    import torch

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
        raise missing_package("mtcnn", "facenet-pytorch", install)
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


class MTCNNDetector(FaceDetector):
    """MTCNN from facenet-pytorch: a three-stage cascade (P-, R-, O-Net) on an image pyramid.

    ``min_face_size`` is the smallest face the pyramid looks for (the first level enlarges the
    frame by 12 / min_face_size); ``thresholds`` are the three stages' score thresholds;
    ``factor`` the pyramid step. Frames of equal size are batched ``batch_size`` at a time.
    """

    name = "mtcnn"

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
        from ...device import resolve_device  # torch, imported when an MTCNN is built, not with the registry

        self.device = resolve_device(device)
        self.min_face_size = int(min_face_size)
        self.thresholds = list(thresholds)
        self.factor = float(factor)
        self.batch_size = max(1, int(batch_size))
        self._detect_face = mod.detect_face
        self._nets = [net().to(self.device).eval() for net in (mod.PNet, mod.RNet, mod.ONet)]

    def _run(self, rgbs: list[np.ndarray]) -> list[Detections]:
        import torch

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

