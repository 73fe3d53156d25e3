"""The Recognizer: faces found in a photo or a video, and their expressions.

This is the Python API of the inference path (``lrfer predict``, ``lrfer video`` and
``lrfer webcam`` are thin layers over it)::
    frame ──> detector ──> crop_faces (from the ORIGINAL frame) ──> classifier ──> Face records
    video ──> frames in batches ──> the same ──> tracker (ids) ──> smoother (per track)

Faces of all the frames in a batch are classified together, so the model sees one big batch
rather than one small batch per frame. With ``routes``, faces smaller than a threshold go to
another model (a model trained for tiny faces, or a ``fronted`` checkpoint with a
super-resolution front end).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Union

import numpy as np
import torch

from ..errors import LrferError
from ..files import ImageReadError
from .backends import load_classifier
from .crop import DEFAULT_MARGIN, crop_faces, face_sizes
from .detect import DEFAULT_DETECTOR, Detections, FaceDetector, as_rgb, create_detector
from .io import read_image
from .smooth import ProbabilitySmoother
from .track import IoUTracker
from .video import Frame, VideoSource, open_video

ImageLike = Union[np.ndarray, str, os.PathLike]

#: Columns of a face in CSV/JSON output (``probabilities`` becomes one ``p_<class>`` column each).
FACE_FIELDS = ("x1", "y1", "x2", "y2", "score", "size", "label", "confidence", "probabilities")
PHOTO_FIELDS = ("file", "status", "width", "height", "face", *FACE_FIELDS)
VIDEO_FIELDS = ("frame", "time", "track_id", *FACE_FIELDS)


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

    def to_row(self) -> dict[str, Any]:
        """A flat record of :data:`FACE_FIELDS` for CSV/JSON writers."""
        row = asdict(self)
        row["x1"], row["y1"], row["x2"], row["y2"] = row["box"]
        return {k: row[k] for k in FACE_FIELDS}


@dataclass
class FrameResult:
    """The faces of one video frame."""

    index: int
    time: float
    faces: list[Face]
    image: Optional[np.ndarray] = field(default=None, repr=False)  # the frame, when asked for


def read_rgb(image: ImageLike) -> np.ndarray:
    """An image file, or an array ``(H, W)``/``(H, W, 3|4)`` uint8, as ``(H, W, 3)`` uint8 RGB."""
    if isinstance(image, (str, os.PathLike)):
        try:
            return read_image(image, channels=3).permute(1, 2, 0).numpy()
        except ImageReadError as err:
            raise LrferError(f"{image}: {err}", "give a readable image file") from None
    return as_rgb(image)


class Recognizer:
    """Facial expressions of every face in images and videos.

    ``model``: a checkpoint path (``.safetensors``, or ``.onnx`` from ``lrfer export``), a loaded
    classifier, or ``None`` for the shipped default. ``backend``: ``auto`` (ONNX Runtime on the
    CPU, PyTorch on a GPU), ``torch`` or ``onnx`` (see :func:`lrfer.infer.backends.load_classifier`). ``detector``: a registered detector
    name, a :class:`~lrfer.infer.detect.FaceDetector`, or ``None`` when the inputs are already face
    crops. ``routes``: ``[(below_px, model), ...]``: faces smaller than ``below_px`` go to that model.
    """

    def __init__(
        self,
        model: Any = None,
        detector: Union[str, FaceDetector, None] = DEFAULT_DETECTOR,
        device: Union[str, torch.device, None] = None,
        *,
        backend: str = "auto",
        min_score: float = 0.5,
        upscale: Union[float, str] = 1.0,
        margin: float = DEFAULT_MARGIN,
        align: bool = False,
        min_face: int = 0,
        tta: str = "none",
        routes: Sequence[tuple[int, Any]] = (),
    ):
        self.classifier = self._load(model, backend, device)
        self.detector = create_detector(detector, min_score=min_score, upscale=upscale) if isinstance(detector, str) else detector
        self.margin, self.align, self.min_face, self.tta = margin, align, min_face, tta
        self.routes = sorted(((int(px), self._load(m, backend, device)) for px, m in routes), key=lambda r: r[0])
        for px, clf in self.routes:
            if tuple(clf.classes) != tuple(self.classifier.classes):
                raise LrferError(
                    f"the model for faces below {px} px has classes {list(clf.classes)}, the main model {list(self.classifier.classes)}",
                    "route only to models trained on the same classes",
                )

    @staticmethod
    def _load(model: Any, backend: str, device):
        if model is None or isinstance(model, (str, os.PathLike)):
            return load_classifier(model, backend=backend, device=device)
        return model

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.classifier.classes)

    # ------------------------------------------------------------------------------ photos
    def predict(self, image: ImageLike) -> list[Face]:
        """The faces of one image (a file path or an RGB/gray uint8 array)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageLike]) -> list[list[Face]]:
        """The faces of several images, classified in one batch."""
        frames = [read_rgb(im) for im in images]
        return self._recognize(frames, self.detect(frames))

    def detect(self, frames: list[np.ndarray]) -> list[Detections]:
        """Detections per frame; the whole frame is the face when there is no detector."""
        if self.detector is None:
            return [_whole_frame(f) for f in frames]
        dets = self.detector.detect_batch(frames)
        if self.min_face > 0:
            dets = [_keep(d, face_sizes(d.boxes) >= self.min_face) for d in dets]
        return dets

    def _recognize(self, frames: list[np.ndarray], dets: list[Detections]) -> list[list[Face]]:
        clf = self.classifier
        crops = [
            crop_faces(f, d.boxes, d.landmarks, size=clf.image_size, margin=self.margin if self.detector else 0.0, align=self.align, channels=clf.in_chans)
            for f, d in zip(frames, dets)
        ]  # fmt: skip
        if sum(len(d) for d in dets) == 0:
            return [[] for _ in frames]
        batch = torch.cat(crops)
        sizes = np.concatenate([face_sizes(d.boxes) for d in dets])
        probs = self.classify(batch, sizes)
        out, start = [], 0
        for d in dets:
            faces = []
            for i in range(len(d)):
                p = probs[start + i]
                k = int(p.argmax())
                faces.append(
                    Face(
                        box=tuple(round(float(v), 1) for v in d.boxes[i]),
                        score=round(float(d.scores[i]), 4),
                        size=int(sizes[start + i]),
                        probabilities={c: round(float(v), 4) for c, v in zip(self.classes, p)},
                        label=self.classes[k],
                        confidence=round(float(p[k]), 4),
                        landmarks=None if d.landmarks is None else np.round(d.landmarks[i], 1).tolist(),
                    )
                )
            out.append(faces)
            start += len(d)
        return out

    def classify(self, crops: torch.Tensor, sizes: Optional[np.ndarray] = None) -> np.ndarray:
        """Probabilities ``(N, K)`` for uint8 face crops, each sent to the model its size routes to."""
        probs = np.empty((len(crops), len(self.classes)), np.float32)
        todo = np.ones(len(crops), bool)
        for below, clf in self.routes:
            idx = np.flatnonzero(todo & (sizes < below)) if sizes is not None else np.array([], int)
            if len(idx):
                probs[idx] = _predict(clf, crops[torch.from_numpy(idx)], self.tta)
                todo[idx] = False
        idx = np.flatnonzero(todo)
        if len(idx):
            probs[idx] = _predict(self.classifier, crops[torch.from_numpy(idx)], self.tta)
        return probs

    # ------------------------------------------------------------------------------- video
    def stream(
        self,
        video: Union[str, os.PathLike, VideoSource, Iterable[Frame]],
        *,
        batch_frames: int = 8,
        smoothing: str = "ema",
        alpha: float = 0.6,
        window: int = 5,
        iou_threshold: float = 0.3,
        max_age: int = 15,
        keep_frames: bool = False,
    ) -> Iterator[FrameResult]:
        """Per-frame results of a video file, a webcam source or any iterable of :class:`Frame`.

        Frames are read lazily and processed ``batch_frames`` at a time, so memory stays flat on
        hours of footage. Faces get stable ``track_id``s and per-track smoothed probabilities;
        ``label``/``confidence`` follow the smoothed probabilities.
        """
        if batch_frames < 1:
            raise LrferError(f"batch_frames={batch_frames}", "use 1 or more")
        tracker = IoUTracker(iou_threshold=iou_threshold, max_age=max_age)
        smoother = ProbabilitySmoother(method=smoothing, alpha=alpha, window=window)
        if isinstance(video, (str, os.PathLike)):
            with open_video(video) as source:  # opened here, so closed here
                yield from self._stream(source, batch_frames, tracker, smoother, keep_frames)
        else:
            yield from self._stream(video, batch_frames, tracker, smoother, keep_frames)

    def _stream(self, frames: Iterable[Frame], batch_frames: int, tracker, smoother, keep: bool) -> Iterator[FrameResult]:
        """Batches of frames with their detections come from a reader thread (decode + detect),
        while this thread crops, classifies and tracks the previous batch: on a CPU the two halves
        overlap. The queue holds two batches, so memory stays flat whatever the video's length."""
        ready: queue.Queue = queue.Queue(maxsize=2)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                batch: list[Frame] = []
                for frame in frames:
                    batch.append(frame)
                    if len(batch) == batch_frames:
                        if not put((batch, self.detect([f.image for f in batch]))):
                            return
                        batch = []
                if batch:
                    put((batch, self.detect([f.image for f in batch])))
                put(None)
            except BaseException as err:  # handed to the consumer, raised there
                put(err)

        reader = threading.Thread(target=produce, name="lrfer-detect", daemon=True)
        reader.start()
        try:
            while True:
                item = ready.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield from self._video_batch(*item, tracker, smoother, keep)
        finally:
            stop.set()  # a consumer that stops early (break, error) releases the reader
            reader.join()

    def _video_batch(self, batch: list[Frame], dets: list[Detections], tracker: IoUTracker, smoother: ProbabilitySmoother, keep: bool) -> Iterator[FrameResult]:
        images = [f.image for f in batch]
        per_frame = self._recognize(images, dets)
        for frame, det, faces in zip(batch, dets, per_frame):
            ids = tracker.update(det.boxes)
            if faces:
                raw = np.array([[f.probabilities[c] for c in self.classes] for f in faces], np.float32)
                smoothed = smoother.update(ids, raw)
                for face, tid, p in zip(faces, ids, smoothed):
                    k = int(np.argmax(p))
                    face.track_id = int(tid)
                    face.probabilities = {c: round(float(v), 4) for c, v in zip(self.classes, p)}
                    face.label, face.confidence = self.classes[k], round(float(p[k]), 4)
            yield FrameResult(frame.index, frame.time, faces, frame.image if keep else None)
        # Tracks the tracker has dropped will never come back (ids are not reused): free them.
        smoother.forget(set(smoother.track_ids()) - set(tracker.active_ids()))


def _predict(clf, crops: torch.Tensor, tta: str) -> np.ndarray:
    p = clf.predict_proba(crops, tta=tta)
    return p.cpu().numpy() if isinstance(p, torch.Tensor) else np.asarray(p)


def _whole_frame(frame: np.ndarray) -> Detections:
    h, w = frame.shape[:2]
    return Detections(np.array([[0, 0, w, h]], np.float32), np.ones(1, np.float32), None)


def _keep(d: Detections, mask: np.ndarray) -> Detections:
    return Detections(d.boxes[mask], d.scores[mask], None if d.landmarks is None else d.landmarks[mask])
