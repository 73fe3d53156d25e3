"""What a video adds to the frame pipeline: a bounded producer/consumer that overlaps reading and
detecting frames with classifying them, and per-track state (stable ids, smoothed probabilities).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional, TypeVar

import numpy as np

from ..runtime.decision import Abstain
from .pipeline import Face
from .smooth import ProbabilitySmoother
from .track import IoUTracker

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class FrameResult:
    """The faces of one video frame."""

    index: int
    time: float
    faces: list[Face]
    image: Optional[np.ndarray] = field(default=None, repr=False)  # the frame, when asked for


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), read lazily."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def in_background(items: Iterable[T], work: Callable[[T], U], *, depth: int = 2, name: str = "lrfer-detect") -> Iterator[tuple[T, U]]:
    """``(item, work(item))`` for each item, the items read and worked on in a thread of their own.

    While the caller handles one result, the thread reads and works on the next: on a CPU the two
    halves overlap (for a video: decode + detect there, classify + track here). The queue holds
    ``depth`` results, so memory stays flat whatever the input's length. An error in the thread is
    raised here; a caller that stops early (break, error) releases the thread, which then ends.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, work(item))):
                    return
            put(None)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            entry = ready.get()
            if entry is None:
                return
            if isinstance(entry, BaseException):
                raise entry
            yield entry
    finally:
        stop.set()
        thread.join()


class FaceTracks:
    """Stable ids for the faces of consecutive frames, and per-track smoothed probabilities.

    ``update`` gives each face of a frame its ``track_id`` and replaces its probabilities (and so
    its label, confidence and, with ``abstain``, whether it is uncertain) by the track's smoothed ones; ``forget_lost`` frees the state of
    tracks the tracker has dropped (ids are never reused, so they will not come back).
    """

    def __init__(
        self, classes: Sequence[str], *, smoothing: str = "ema", alpha: float = 0.6, window: int = 5, iou_threshold: float = 0.3, max_age: int = 15,
        abstain: Optional[Abstain] = None,
    ):  # fmt: skip
        self.classes, self.abstain = tuple(classes), abstain
        self.tracker = IoUTracker(iou_threshold=iou_threshold, max_age=max_age)
        self.smoother = ProbabilitySmoother(method=smoothing, alpha=alpha, window=window)

    def update(self, boxes: np.ndarray, faces: list[Face]) -> None:
        """One frame: ``faces`` are the faces of ``boxes``, in the same order."""
        ids = self.tracker.update(boxes)
        if not faces:
            return
        raw = np.array([[f.probabilities[c] for c in self.classes] for f in faces], np.float32)
        for face, tid, p in zip(faces, ids, self.smoother.update(ids, raw)):
            face.track_id = int(tid)
            face.read(self.classes, p, self.abstain)  # uncertain by the smoothed probabilities

    def forget_lost(self) -> None:
        self.smoother.forget(set(self.smoother.track_ids()) - set(self.tracker.active_ids()))
