"""One batch of frames through the inference path: detect -> crop -> classify -> :class:`Face` records.

Faces are cut from the ORIGINAL frame (not the detector's enlarged copy), and the faces of all the
frames in a batch are classified together, so the model sees one big batch rather than one small
batch per frame. With ``routes``, faces smaller than a threshold go to another model (a model
trained for tiny faces, or a ``fronted`` checkpoint with a super-resolution front end). With
``prior``, every model's probabilities are moved from its training class shares to the
deployment's (:mod:`lrfer.runtime.prior`); with ``abstain``, faces too small or too unsure are
marked ``uncertain`` (:mod:`lrfer.runtime.decision`). See docs/trust.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Optional, Union

import numpy as np

from ..errors import LrferError
from ..files import ImageReadError, decode_image
from ..runtime.classifier import Classifier, SizedClassifier
from ..runtime.decision import Abstain
from ..runtime.prior import PriorSpec, adjust, parse_prior
from .crop import crop_faces, face_sizes
from .detect import Detections, FaceDetector, as_rgb

ImageLike = Union[np.ndarray, str, os.PathLike]

#: Columns of a face in CSV/JSON output (``probabilities`` becomes one ``p_<class>`` column each).
FACE_FIELDS = ("x1", "y1", "x2", "y2", "score", "size", "label", "confidence", "uncertain", "probabilities")


@dataclass
class Face:
    """One face: where it is, how big it is, and what it shows."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the original image's pixels
    score: float  # detector confidence (1.0 when the input was already a face crop)
    size: int  # the face's native size in pixels: the shorter side of its box
    probabilities: dict[str, float]
    label: str
    confidence: float
    landmarks: Optional[list[list[float]]] = None  # 5 (x, y): eyes, nose, mouth corners
    track_id: Optional[int] = None
    uncertain: bool = False  # too small or too unsure to act on (the abstention rule); label is still the top class

    def to_row(self) -> dict[str, Any]:
        """A flat record of :data:`FACE_FIELDS` for CSV/JSON writers."""
        row = asdict(self)
        row["x1"], row["y1"], row["x2"], row["y2"] = row["box"]
        return {k: row[k] for k in FACE_FIELDS}

    def read(self, classes: Sequence[str], probs: np.ndarray, abstain: Optional[Abstain] = None) -> None:
        """Set ``probabilities``, ``label`` and ``confidence`` from one row of probabilities
        (rounded to 4 places: what the outputs show), and ``uncertain`` by the ``abstain`` rule."""
        k = int(np.argmax(probs))
        self.probabilities = {c: round(float(v), 4) for c, v in zip(classes, probs)}
        self.label, self.confidence = classes[k], round(float(probs[k]), 4)
        self.uncertain = bool(abstain.uncertain(np.asarray(probs)[None], [self.size])[0]) if abstain is not None else False


def read_image(path: Union[str, os.PathLike], channels: int = 3) -> np.ndarray:
    """Decode an image file into uint8 ``(H, W, 3)`` RGB, or ``(H, W)`` grey with ``channels=1``
    (:func:`lrfer.files.decode_image`: any mode, the one pixel limit); raises
    :class:`~lrfer.files.ImageReadError`, whose message is the file's status."""
    return np.array(decode_image(path, "L" if channels == 1 else "RGB"), dtype=np.uint8)


def read_rgb(image: ImageLike) -> np.ndarray:
    """An image file, or an array ``(H, W)``/``(H, W, 3|4)`` uint8, as ``(H, W, 3)`` uint8 RGB."""
    if isinstance(image, (str, os.PathLike)):
        try:
            return read_image(image, channels=3)
        except ImageReadError as err:
            raise LrferError(f"{image}: {err}", "give a readable image file") from None
        except OSError as err:  # missing, a folder, unreadable: the path, not the bytes
            raise LrferError(f"cannot read {image} ({err.strerror or err})", "check the path") from None
    return as_rgb(image)


class FacePipeline:
    """Detection, crops and classification of a batch of RGB frames.

    ``classifier``: the main model (it sets the crop size and channels); ``detector``: ``None``
    when the frames are already face crops; ``routes``: ``[(below_px, classifier), ...]`` sorted or
    not, faces smaller than ``below_px`` go to that classifier; ``prior``: the deployment's class
    shares (:func:`lrfer.runtime.prior.parse_prior`), each model's probabilities moved to them from
    its own training shares; ``abstain``: the rule that marks faces ``uncertain``.
    """

    def __init__(
        self,
        classifier: SizedClassifier,
        detector: Optional[FaceDetector],
        *,
        margin: float,
        align: bool = False,
        min_face: int = 0,
        tta: str = "none",
        routes: Sequence[tuple[int, Classifier]] = (),
        prior: PriorSpec = None,
        abstain: Optional[Abstain] = None,
    ):
        self.classifier, self.detector = classifier, detector
        self.prior, self.abstain = parse_prior(prior, classifier.classes), abstain
        self.margin, self.align, self.min_face, self.tta = margin, align, min_face, tta
        self.routes = sorted(((int(px), clf) for px, clf in routes), key=lambda r: r[0])
        for px, clf in self.routes:
            if tuple(clf.classes) != tuple(classifier.classes):
                raise LrferError(
                    f"the model for faces below {px} px has classes {list(clf.classes)}, the main model {list(classifier.classes)}",
                    "route only to models trained on the same classes",
                )
        if self.prior is not None and any(getattr(c, "train_prior", None) is None for c in [classifier, *(c for _, c in self.routes)]):
            raise LrferError(
                "a deployment prior needs the model's training class shares, and this model has none stored",
                "store them with `lrfer calibrate --train-split Training` (docs/trust.md), or drop --prior",
            )

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.classifier.classes)

    def detect(self, frames: list[np.ndarray]) -> list[Detections]:
        """Detections per frame; the whole frame is the face when there is no detector."""
        if self.detector is None:
            return [_whole_frame(f) for f in frames]
        dets = self.detector.detect_batch(frames)
        if self.min_face > 0:
            dets = [d.select(face_sizes(d.boxes) >= self.min_face) for d in dets]
        return dets

    def recognize(self, frames: list[np.ndarray], dets: list[Detections]) -> list[list[Face]]:
        """The faces of each frame, from its detections: all the frames' faces classified in one batch."""
        if sum(len(d) for d in dets) == 0:
            return [[] for _ in frames]
        clf, margin = self.classifier, self.margin if self.detector else 0.0
        crops = [crop_faces(f, d.boxes, d.landmarks, size=clf.image_size, margin=margin, align=self.align, channels=clf.in_chans) for f, d in zip(frames, dets)]
        sizes = np.concatenate([face_sizes(d.boxes) for d in dets])
        probs = self.classify(np.concatenate(crops), sizes)
        out, start = [], 0
        for d in dets:
            out.append([self._face(d, i, int(sizes[start + i]), probs[start + i]) for i in range(len(d))])
            start += len(d)
        return out

    def _face(self, d: Detections, i: int, size: int, probs: np.ndarray) -> Face:
        face = Face(
            box=tuple(round(float(v), 1) for v in d.boxes[i]), score=round(float(d.scores[i]), 4), size=size, probabilities={}, label="", confidence=0.0,
            landmarks=None if d.landmarks is None else np.round(d.landmarks[i], 1).tolist(),
        )  # fmt: skip
        face.read(self.classes, probs, self.abstain)
        return face

    def classify(self, crops: np.ndarray, sizes: Optional[np.ndarray] = None) -> np.ndarray:
        """Probabilities ``(N, K)`` for uint8 face crops, each sent to the model its size routes to."""
        probs = np.empty((len(crops), len(self.classes)), np.float32)
        todo = np.ones(len(crops), bool)
        for below, clf in self.routes:
            idx = np.flatnonzero(todo & (sizes < below)) if sizes is not None else np.array([], int)
            if len(idx):
                probs[idx] = self._predict(clf, crops[idx])
                todo[idx] = False
        idx = np.flatnonzero(todo)
        if len(idx):
            probs[idx] = self._predict(self.classifier, crops[idx])
        return probs

    def _predict(self, clf: Classifier, crops: np.ndarray) -> np.ndarray:
        """One model's probabilities, moved to the deployment prior (from that model's own training shares)."""
        p = clf.predict_proba(crops, tta=self.tta)
        p = p.cpu().numpy() if hasattr(p, "cpu") else np.asarray(p)  # the torch backend answers with a tensor
        return adjust(p, self.prior, getattr(clf, "train_prior", None)) if self.prior is not None else p


def _whole_frame(frame: np.ndarray) -> Detections:
    h, w = frame.shape[:2]
    return Detections(np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32), None)
