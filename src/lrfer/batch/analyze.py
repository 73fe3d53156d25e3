"""The rows of a batch's files: what one worker (this process, or one Ray actor) runs.

Photos go through :func:`lrfer.infer.io.predict_files` (the rows of ``lrfer predict``); videos
are sampled at ``sample_fps`` by frame time (:class:`lrfer.infer.video.FrameSampler`, as the
service's cameras are) and go through :meth:`Recognizer.stream` (tracks and smoothing, the rows
of ``lrfer video``). Every file gets at least one row: its faces, ``no face found``, or what went
wrong, so a bad file is recorded and never stops the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Optional, Union

from ..errors import LrferError
from ..infer.crop import DEFAULT_MARGIN
from ..infer.detect import DEFAULT_DETECTOR
from ..infer.io import predict_files
from ..infer.recognizer import Recognizer
from ..infer.video import open_video, sample_frames
from ..runtime.decision import with_overrides
from .sources import PHOTO, VIDEO, Source

#: The statuses of a file that was read (the others say what went wrong).
READ_STATUSES = ("ok", "no face found")
_BROKEN_HINT = "the rows of the frames before the break are kept; re-encode the video (ffmpeg -i in.mp4 out.mp4) to read the rest"


@dataclass(frozen=True)
class BatchOptions:
    """How a batch recognises: the Recognizer's settings, and how videos are sampled.

    ``upscale`` is for photos (``auto``: small faces first, as ``lrfer predict``), ``video_upscale``
    for video frames (1: speed first, as ``lrfer video``). ``threads`` is each worker's classifier
    threads (``None``: one per core; a Ray actor uses its CPUs). ``reading``, ``prior``, ``abstain``
    and ``thresholds`` are the Recognizer's reading, deployment prior and abstention rule (docs/trust.md)."""

    checkpoint: Optional[str] = None
    backend: str = "auto"
    device: Optional[str] = None
    detector: Optional[str] = DEFAULT_DETECTOR  # None: the inputs are face crops already
    min_score: float = 0.5
    upscale: Union[float, str] = "auto"
    video_upscale: Union[float, str] = 1.0
    min_face: int = 0
    margin: float = DEFAULT_MARGIN
    align: bool = False
    tta: str = "none"
    sample_fps: float = 2.0
    batch_frames: int = 8
    threads: Optional[int] = None
    reading: Optional[str] = None  # one of the model's stored readings (docs/trust.md)
    prior: Optional[str] = None  # the place's class shares (docs/trust.md)
    abstain: bool = False  # mark faces uncertain by the rule stored with the model
    thresholds: tuple[tuple[str, Any], ...] = ()  # abstention thresholds over (or without) the stored rule: (("min_confidence", 0.6), ...)

    def __post_init__(self):
        if not self.sample_fps > 0:
            raise LrferError(f"sample_fps={self.sample_fps}", "give a positive number of frames per second, e.g. 2")
        if self.batch_frames < 1:
            raise LrferError(f"batch_frames={self.batch_frames}", "use 1 or more")


class FileAnalyzer:
    """One model in memory, two pipelines over it: photos searched at ``upscale``, video frames at
    ``video_upscale``."""

    def __init__(self, options: BatchOptions):
        o = self.options = options
        common = {
            "backend": o.backend, "min_score": o.min_score, "margin": o.margin, "align": o.align, "min_face": o.min_face, "tta": o.tta,
            "threads": o.threads, "prior": o.prior, "abstain": "model" if o.abstain else None,
            "reading": o.reading,
        }  # fmt: skip
        self.photos = Recognizer(o.checkpoint, o.detector, o.device, upscale=o.upscale, **common)
        self.videos = Recognizer(self.photos.classifier, o.detector, o.device, upscale=o.video_upscale, **common)
        for rec in (self.photos, self.videos):
            rec.abstain = with_overrides(rec.abstain, **dict(o.thresholds))

    @property
    def classes(self) -> tuple[str, ...]:
        return self.photos.classes

    def rows(self, sources: Iterable[Source]) -> list[dict]:
        """The rows of these files: the photos' (read and classified together), then each video's."""
        sources = list(sources)
        rows = [{**r, "kind": PHOTO} for r in predict_files(self.photos, [s.path for s in sources if s.kind == PHOTO])]
        for s in sources:
            if s.kind == VIDEO:
                rows += self.video_rows(s.path)
        return rows

    def video_rows(self, path: str) -> list[dict]:
        """One row per face of each sampled frame; a status row when the video cannot be read, shows
        no face, or breaks before its end (after the rows of the frames before the break)."""
        try:
            source = open_video(path)
        except LrferError as err:
            return [{"file": path, "kind": VIDEO, "status": err.what, "hint": err.hint}]
        base = {"file": path, "kind": VIDEO, "width": source.width, "height": source.height}
        rows: list[dict] = []
        stream = self.videos.stream(sample_frames(iter(source), self.options.sample_fps), batch_frames=self.options.batch_frames)
        # the stream (and its reader thread) is closed before the video it decodes from
        with source, closing(stream):
            for result in stream:
                for i, face in enumerate(result.faces):
                    rows.append({**base, "status": "ok", "frame": result.index, "time": round(result.time, 3), "track_id": face.track_id, "face": i, **face.to_row()})
        if source.status != "ok":
            rows.append({**base, "status": f"read {source.frames_read} frames, then: {source.status}", "hint": _BROKEN_HINT})
        elif not rows:
            rows.append({**base, "status": "no face found"})
        return rows
