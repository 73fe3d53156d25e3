"""The Recognizer: faces found in a photo or a video, and their expressions.

This is the Python API of the inference path (``lrfer predict``, ``lrfer video`` and
``lrfer webcam`` are thin layers over it)::
    frame ──> detector ──> crop_faces (from the ORIGINAL frame) ──> classifier ──> Face records
    video ──> frames in batches ──> the same ──> tracker (ids) ──> smoother (per track)

The frame pipeline is :class:`lrfer.infer.pipeline.FacePipeline`; what a video adds (the reader
thread, tracks, smoothing) is in :mod:`lrfer.infer.stream`. This module loads the models and
offers the entry points.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Optional, Union

from ..errors import LrferError, closest
from ..runtime.decision import RULE_KEYS, Abstain
from ..runtime.prior import PriorSpec
from .backends import SizedClassifier, load_classifier
from .crop import DEFAULT_MARGIN
from .detect import DEFAULT_DETECTOR, FaceDetector, create_detector
from .pipeline import FACE_FIELDS, Face, FacePipeline, ImageLike, read_rgb
from .stream import FaceTracks, FrameResult, batches, in_background
from .video import Frame, VideoSource, open_video

__all__ = ["Face", "FrameResult", "PHOTO_FIELDS", "Recognizer", "VIDEO_FIELDS"]

#: Columns of ``lrfer predict`` and ``lrfer video`` output (a face's columns: :data:`~lrfer.infer.pipeline.FACE_FIELDS`).
PHOTO_FIELDS = ("file", "status", "width", "height", "face", *FACE_FIELDS)
VIDEO_FIELDS = ("frame", "time", "track_id", *FACE_FIELDS)
#: Test-time augmentations a classifier takes (:data:`lrfer.data.transforms.TTA`, which needs torch).
TTA_MODES = ("none", "flip", "tencrop")


class Recognizer(FacePipeline):
    """Facial expressions of every face in images and videos.

    ``model``: a checkpoint path (``.safetensors``, or ``.onnx`` from ``lrfer export``), a loaded
    classifier, or ``None`` for the shipped default. ``backend``: ``auto`` (ONNX Runtime on the
    CPU, PyTorch on a GPU), ``torch`` or ``onnx`` (see :func:`lrfer.infer.backends.load_classifier`). ``detector``: a registered detector
    name, a :class:`~lrfer.infer.detect.FaceDetector`, or ``None`` when the inputs are already face
    crops. ``routes``: ``[(below_px, model), ...]``: faces smaller than ``below_px`` go to that model.
    ``prior``: the deployment's class shares (``"uniform"``, ``"neutral=0.5,happy=0.25"``, a
    mapping; see :mod:`lrfer.runtime.prior`). ``abstain``: when a face is ``uncertain``: ``None``
    (never), ``"model"`` or ``True`` (the rule stored with the model), an
    :class:`~lrfer.runtime.decision.Abstain`, or a mapping of its fields. ``reading``: one of the
    model's stored readings (``"half"``, ``"crowd"`` for the shipped model), which reads calm faces
    as neutral more often, for every model it loads. See docs/trust.md.
    ``threads``: the ONNX Runtime classifier's threads (``None``: one per core). Detection runs in a
    thread of its own beside it (:meth:`stream`, and photos through
    :func:`lrfer.infer.io.predict_files`): where detection is the larger half, as on photos
    searched at ``upscale="auto"``, leaving it a core (:func:`photo_threads`) is faster; on video,
    where classification is, every core is.
    """

    def __init__(
        self,
        model: Any = None,
        detector: Union[str, FaceDetector, None] = DEFAULT_DETECTOR,
        device: Any = None,
        *,
        backend: str = "auto",
        min_score: float = 0.5,
        upscale: Union[float, str] = 1.0,
        margin: float = DEFAULT_MARGIN,
        align: bool = False,
        min_face: int = 0,
        tta: str = "none",
        routes: Sequence[tuple[int, Any]] = (),
        threads: Optional[int] = None,
        prior: PriorSpec = None,
        abstain: Union[None, bool, str, Abstain, Mapping[str, Any]] = None,
        reading: Optional[str] = None,
    ):
        routes = _check_settings(margin, min_face, tta, routes)  # before any model is loaded
        classifier = _load(model, backend, device, threads, reading)
        rule = abstain_rule(abstain, classifier)
        if isinstance(detector, str):
            detector = create_detector(detector, min_score=min_score, upscale=upscale)
        routes = [(px, _load(m, backend, device, threads, reading)) for px, m in routes]
        super().__init__(classifier, detector, margin=margin, align=align, min_face=min_face, tta=tta, routes=routes, prior=prior, abstain=rule)

    # ------------------------------------------------------------------------------ photos
    def predict(self, image: ImageLike) -> list[Face]:
        """The faces of one image (a file path or an RGB/gray uint8 array)."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageLike]) -> list[list[Face]]:
        """The faces of several images, classified in one batch."""
        frames = [read_rgb(im) for im in images]
        return self.recognize(frames, self.detect(frames))

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
        tracks = FaceTracks(self.classes, smoothing=smoothing, alpha=alpha, window=window, iou_threshold=iou_threshold, max_age=max_age, abstain=self.abstain)
        if isinstance(video, (str, os.PathLike)):
            with open_video(video) as source:  # opened here, so closed here
                yield from self._stream(source, batch_frames, tracks, keep_frames)
        else:
            yield from self._stream(video, batch_frames, tracks, keep_frames)

    def _stream(self, frames: Iterable[Frame], batch_frames: int, tracks: FaceTracks, keep: bool) -> Iterator[FrameResult]:
        """A reader thread decodes and detects the next batch while this one crops, classifies and tracks.

        The reader is closed (its thread joined) before this generator ends, however it ends: a
        consumer that stops early must not leave a thread decoding a video that ``stream`` closes
        next (PyAV crashes the process then). A ``for`` loop alone would leave that to the garbage
        collector, which an exception's traceback can delay past the video's closing."""
        with contextlib.closing(in_background(batches(frames, batch_frames), lambda b: self.detect([f.image for f in b]))) as detected:
            for batch, dets in detected:
                for frame, det, faces in zip(batch, dets, self.recognize([f.image for f in batch], dets)):
                    tracks.update(det.boxes, faces)
                    yield FrameResult(frame.index, frame.time, faces, frame.image if keep else None)
                tracks.forget_lost()


def photo_threads() -> int:
    """The classifier's threads for photos: every core but the one detection runs on. On the 2-core
    VM, 200 photos at upscale auto ran about 15% faster with 1 than with 2, and a 300-frame video
    about 15% slower (profiled by hand, 2026-12-05; bench/runtime.py measures the defaults)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _check_settings(margin: Any, min_face: Any, tta: Any, routes: Any) -> list[tuple[int, Any]]:
    """The Recognizer's numbers and names checked where the API takes them: a negative margin or
    a NaN would change every crop, and so the labels, without a word. The routes as a list."""
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real) or not math.isfinite(margin) or margin < 0:
        raise LrferError(f"margin={margin!r}", f"give the crop margin as a fraction of the face box, 0 or more (default {DEFAULT_MARGIN})")
    if isinstance(min_face, bool) or not isinstance(min_face, numbers.Integral) or min_face < 0:
        raise LrferError(f"min_face={min_face!r}", "give the smallest face to keep in pixels, 0 or more")
    if tta not in TTA_MODES:
        raise LrferError(f"unknown tta {tta!r}", closest(str(tta), TTA_MODES))
    try:
        checked = [(px, m) for px, m in routes]
    except (TypeError, ValueError):
        raise LrferError(f"routes={routes!r}", "give routes as [(pixels, model), ...], e.g. [(16, 'tiny.safetensors')]") from None
    for px, _ in checked:
        if isinstance(px, bool) or not isinstance(px, numbers.Integral) or px < 1:
            raise LrferError(f"route below {px!r} px", "give each route's face size as a whole number of pixels, 1 or more")
    return checked


def abstain_rule(abstain: Union[None, bool, str, Abstain, Mapping[str, Any]], classifier: Any) -> Optional[Abstain]:
    """The Recognizer's ``abstain`` argument as a rule (``None``: never uncertain)."""
    if abstain is None or abstain is False:
        return None
    if isinstance(abstain, Abstain):
        return abstain
    if isinstance(abstain, Mapping):
        unknown = sorted(set(abstain) - set(RULE_KEYS))
        if unknown:
            raise LrferError(f"abstain: unknown field '{unknown[0]}'", f"use {', '.join(RULE_KEYS)}")
        return Abstain(**abstain)
    if abstain is True or abstain == "model":
        stored = getattr(classifier, "abstain", None)
        if stored is None:
            raise LrferError(
                f"the model {getattr(classifier, 'name', '')!r} has no stored abstention rule",
                "store one with `lrfer calibrate --coverage 0.8`, or give the thresholds (--min-confidence, --min-margin, --uncertain-below)",
            )
        return stored
    raise LrferError(f"abstain={abstain!r}", "use None, 'model', an Abstain or a mapping of its fields")


def _load(model: Any, backend: str, device, threads, reading: Optional[str] = None) -> SizedClassifier:
    """A classifier: loaded from a path (``None``: the shipped default), or the one given."""
    if model is None or isinstance(model, (str, os.PathLike)):
        return load_classifier(model, backend=backend, device=device, threads=threads, reading=reading)
    if not (hasattr(model, "predict_proba") and hasattr(model, "classes")):
        raise LrferError(f"model={type(model).__name__}", "give a checkpoint path (.safetensors or .onnx), a loaded classifier, or None for the shipped model")
    if reading not in (None, getattr(model, "reading", "default")):
        raise LrferError(f"reading={reading!r} for a classifier already loaded with reading {getattr(model, 'reading', 'default')!r}",
                         "load it with that reading (FaceClassifier.load(path, reading=...)), or give its path")
    return model
