"""One camera's worker: read, sample, mask, recognise, aggregate, reconnect.

A :class:`CameraWorker` owns one thread, ``lrfer-camera-<id>``. It opens the camera's source,
hands :meth:`Recognizer.stream <lrfer.infer.recognizer.Recognizer.stream>` an iterable of the
sampled, masked frames, turns the faces into per-track time buckets and passes the closed ones
to ``sink``. The stream's own reader thread decodes (and runs the sampling below); the source
is closed by this thread only after ``stream`` has joined that reader, since PyAV crashes the
process when a container is closed while another thread decodes from it.

A broken or unreachable stream is retried with exponential backoff; each (re)connection starts
a new run id, so track keys never collide. Nothing grows with time: the last analysed frame
(for the snapshot), a few timestamps for the rate, and the open buckets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import LrferError
from ..infer.pipeline import Face
from ..infer.recognizer import Recognizer
from ..infer.video import Frame, FrameSampler, VideoSource, open_video, open_webcam
from .aggregate import BucketAggregator, is_certain
from .config import Camera, Evidence, Model
from .geometry import Masks
from .records import CameraStatus, Observation

log = logging.getLogger(__name__)

#: Statuses go to ``on_status`` at every change of state, and otherwise at most this often.
STATUS_EVERY = 1.0
_CREDENTIALS = re.compile(r"(://[^/:@\s]*):[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the passwords of any URLs in it replaced by ``***`` (status and logs are shown to staff)."""
    return _CREDENTIALS.sub(r"\1:***@", text)


def make_recognizer(model: Model) -> Recognizer:
    """A Recognizer as the config's ``[model]`` section describes it (empty checkpoint: the shipped default)."""
    return Recognizer(
        model.checkpoint or None, detector=model.detector, backend=model.backend, min_score=model.min_score, upscale=model.upscale,
        prior=model.prior or None, abstain="model" if model.abstain else None, reading=model.reading or None,
    )  # fmt: skip


def shared_recognizer(model: Model) -> Callable[[], Recognizer]:
    """A factory that builds :func:`make_recognizer`'s Recognizer once, on first call, and gives every
    camera that one: a Recognizer keeps no state between streams (tracks live in each ``stream``)
    and ONNX Runtime sessions run from several threads at once, so cameras share one model in
    memory instead of loading one each."""
    lock, made = threading.Lock(), []

    def get() -> Recognizer:
        with lock:
            if not made:
                made.append(make_recognizer(model))
            return made[0]

    return get


def _reason(err: BaseException) -> str:
    what = err.what if isinstance(err, LrferError) else (str(err) or type(err).__name__)
    return redact(what.splitlines()[0] if what else type(err).__name__)[:300]


class CameraWorker:
    """Analyses one camera in a thread of its own until ``stop``.

    ``recognizer``: called once, in the worker's thread, to make the worker's Recognizer.
    ``sink``: receives the closed buckets (from the worker's thread). ``speed``: file sources play
    at real time x speed (0: as fast as they decode). ``timeout``: seconds a network source may be
    silent before it counts as lost (also the longest ``stop`` waits on a stalled stream).
    """

    def __init__(
        self,
        camera: Camera,
        recognizer: Callable[[], Recognizer],
        sink: Callable[[list[Observation]], None],
        *,
        bucket_seconds: int = 5,
        evidence: Optional[Evidence] = None,
        on_status: Optional[Callable[[CameraStatus], None]] = None,
        speed: float = 1.0,
        clock: Callable[[], float] = time.time,
        backoff: tuple[float, float] = (1.0, 30.0),
        timeout: float = 10.0,
    ):
        if speed < 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.camera = camera
        self.bucket_seconds = bucket_seconds
        self.evidence = evidence if evidence is not None else Evidence()
        self.speed, self.clock, self.backoff, self.timeout = float(speed), clock, (float(backoff[0]), float(backoff[1])), float(timeout)
        self.retry_delay = 0.0  # the last wait before a reconnection, seconds
        self.attempts = 0  # times the source was opened or tried
        self._make_recognizer, self._sink, self._on_status = recognizer, sink, on_status
        self._masks = Masks(camera.masks)
        self._is_file = "://" not in camera.url and not camera.url.startswith("webcam:")
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._status = CameraStatus(camera.id, state="starting", since=clock())
        self._last: Optional[tuple[np.ndarray, list[tuple[float, ...]]]] = None  # the last analysed frame (masked) and its face boxes
        self._recent: deque[float] = deque(maxlen=20)  # monotonic times of the last analysed frames
        self._arrived: deque[tuple[int, float]] = deque(maxlen=64)  # (frame index, monotonic time it was handed to the detector)
        self._published = 0.0

    # ------------------------------------------------------------------------------ control
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"camera {self.camera.id}: the worker was started already")
        self._thread = threading.Thread(target=self._run, name=f"lrfer-camera-{self.camera.id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, flush the open buckets to the sink, close the source and join the thread."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            self._set_state("stopped")
            return
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("camera %s: the worker did not stop within %.0f s (a stalled stream; it ends at its read timeout)", self.camera.id, timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> CameraStatus:
        with self._lock:
            return dataclasses.replace(self._status, moods_now=dict(self._status.moods_now))

    def snapshot(self, *, blur: bool = True, quality: int = 80) -> Optional[bytes]:
        """A JPEG of the last analysed frame: masks black, faces blurred (``blur=False``: boxed). Never written anywhere."""
        with self._lock:
            last = self._last
        if last is None:
            return None
        image, boxes = last
        img = Image.fromarray(image).copy()  # the frame itself stays untouched
        draw = ImageDraw.Draw(img)
        for box in boxes:
            x1, y1, x2, y2 = _grow(box, img.width, img.height)
            if x2 <= x1 or y2 <= y1:
                continue
            if blur:
                radius = max(3.0, 0.3 * min(x2 - x1, y2 - y1))
                img.paste(img.crop((x1, y1, x2, y2)).filter(ImageFilter.GaussianBlur(radius)), (x1, y1))
            else:
                draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=(0, 255, 0), width=2)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return buf.getvalue()

    # ------------------------------------------------------------------------------- thread
    def _run(self) -> None:
        agg: Optional[BucketAggregator] = None
        try:
            rec = self._make_recognizer()
            agg = BucketAggregator(self.camera.id, rec.classes, bucket_seconds=self.bucket_seconds, evidence=self.evidence, zones=self.camera.zones)
            self._loop(rec, agg)
        except Exception as err:  # a worker never takes the service down; its status says what happened
            log.exception("camera %s: the worker failed", self.camera.id)
            self._set_state("error", _reason(err))
        finally:
            if agg is not None:
                self._emit(agg.flush())
            if self.status.state not in ("finished", "error"):
                self._set_state("stopped")

    def _loop(self, rec: Recognizer, agg: BucketAggregator) -> None:
        """Connect, analyse until the source ends or breaks, reconnect with backoff; until stopped."""
        delay = self.backoff[0]
        while not self._stop.is_set():
            self.attempts += 1
            try:
                source = self._open()
            except LrferError as err:
                if self._is_file:  # a missing or unreadable file does not come back by waiting
                    self._set_state("error", _reason(err))
                    return
                self._set_state("reconnecting", _reason(err))
                delay = self._wait(delay)
                continue
            try:
                frames = self._session(rec, agg, source)
            except Exception as err:
                log.exception("camera %s: analysis failed", self.camera.id)
                frames, source.status = 0, f"analysis failed: {_reason(err)}"
            finally:
                source.close()  # the stream's reader thread is joined by now
            self._emit(agg.new_run())
            if self._stop.is_set():
                return
            if frames:
                delay = self.backoff[0]
            if self._is_file and (not self.camera.loop or not frames):
                ok = source.status == "ok" and frames
                self._set_state("finished" if ok else "error", "" if ok else redact(source.status if source.status != "ok" else "no frames"))
                return
            if not self._is_file:
                self._set_state("reconnecting", redact(source.status if source.status != "ok" else "the stream ended"))
                delay = self._wait(delay)

    def _open(self) -> VideoSource:
        url = self.camera.url
        if url.startswith("webcam:"):
            return open_webcam(url.split(":", 1)[1] or 0)
        return open_video(url, timeout=self.timeout) if "://" in url else open_video(url)

    def _wait(self, delay: float) -> float:
        """Wait ``delay`` seconds (or until stopped); returns the next, longer delay."""
        self.retry_delay = delay
        log.info("camera %s: retrying in %.1f s", self.camera.id, delay)
        self._stop.wait(delay)
        return min(delay * 2.0, self.backoff[1])

    def _session(self, rec: Recognizer, agg: BucketAggregator, source: VideoSource) -> int:
        """Analyse one open source until it ends, breaks or the worker stops; returns the frames analysed."""
        with self._lock:
            self._status.width, self._status.height = source.width, source.height
        self._set_state("live")
        batch = 1 if (source.live or self.speed > 0) else 8  # live: every frame's result at once; files at full speed: throughput
        n = 0
        frames = self._replayed(source) if self._is_file and self.camera.loop else source
        with contextlib.closing(rec.stream(self._frames(source, frames), batch_frames=batch, keep_frames=True)) as results:
            for res in results:
                if self._stop.is_set():
                    break
                t = self.clock()
                faces = [f for f in res.faces if f.size >= self.camera.min_face]
                self._emit(agg.add(t, faces, (source.width, source.height)))
                self._analysed(t, res.image, res.faces, faces, self._arrival(res.index))
                n += 1
        return n

    def _replayed(self, source: VideoSource) -> Iterator[Frame]:
        """A looped file as one endless stream: each pass goes on from the last one's time, so the
        tracker keeps its tracks across the seam (the demo's video is made to loop seamlessly).
        Runs in the stream's reader thread, which is the one that decodes, so closing a pass here is safe."""
        current, offset, index = source, 0.0, 0
        try:
            while not self._stop.is_set():
                last = None
                for f in current:
                    last = f
                    yield Frame(index, offset + f.time, f.image)
                    index += 1
                if last is None or current.status != "ok":
                    source.status = current.status if current.status != "ok" else source.status
                    return
                offset += last.time + 1.0 / max(current.fps, 1e-3)
                if current is not source:
                    current.close()
                current = self._open()
        finally:
            if current is not source:
                current.close()

    def _frames(self, source: VideoSource, frames: Iterable[Frame]) -> Iterator[Frame]:
        """The source's frames sampled at the camera's rate by frame time, paced, masked (runs in the stream's reader thread)."""
        sampler = FrameSampler(self.camera.fps)
        pace = self.speed > 0 and not source.live
        t0, first = time.monotonic(), None
        for frame in frames:
            if self._stop.is_set():
                return
            if not sampler.take(frame.time):
                continue
            if pace:
                first = frame.time if first is None else first
                ahead = t0 + (frame.time - first) / self.speed - time.monotonic()
                if ahead > 0 and self._stop.wait(ahead):
                    return
            self._masks.apply(frame.image)  # before detection: masked pixels are never analysed
            self._arrived.append((frame.index, time.monotonic()))
            yield frame

    # ------------------------------------------------------------------------------ records
    def _arrival(self, index: int) -> Optional[float]:
        """When frame ``index`` was handed to the detector (the reader runs ahead of the analysis)."""
        while self._arrived and self._arrived[0][0] < index:
            self._arrived.popleft()
        return self._arrived.popleft()[1] if self._arrived and self._arrived[0][0] == index else None

    def _analysed(self, t: float, image: Optional[np.ndarray], every: Sequence[Face], faces: Sequence[Face], arrived: Optional[float] = None) -> None:
        now = time.monotonic()
        moods = Counter(f.label for f in faces if is_certain(f, self.evidence))
        with self._lock:
            if image is not None:
                self._last = (image, [f.box for f in every])  # every face is blurred, also those too small to analyse
            self._recent.append(now)
            st = self._status
            st.frames += 1
            st.last_frame_at, st.faces_now, st.moods_now = t, len(faces), dict(moods)
            if arrived is not None:
                st.lag = round(now - arrived, 3)
            span = self._recent[-1] - self._recent[0]
            st.fps = round((len(self._recent) - 1) / span, 2) if span > 0 else 0.0
            due = now - self._published >= STATUS_EVERY
        if due:
            self._publish()

    def _set_state(self, state: str, error: Optional[str] = None) -> None:
        with self._lock:
            st = self._status
            changed = state != st.state or (error is not None and error != st.error)
            if state != st.state:
                st.state, st.since = state, self.clock()
                log.info("camera %s: %s%s", self.camera.id, state, f" ({error})" if error else "")
            if error is not None:
                st.error = error
            elif state == "live":
                st.error = ""
        if changed:
            self._publish()

    def _publish(self) -> None:
        self._published = time.monotonic()
        if self._on_status is None:
            return
        try:
            self._on_status(self.status)
        except Exception:
            log.exception("camera %s: on_status failed", self.camera.id)

    def _emit(self, observations: list[Observation]) -> None:
        if not observations:
            return
        try:
            self._sink(observations)
        except Exception:  # the sink's problem; the camera goes on
            log.exception("camera %s: the sink failed on %d observations", self.camera.id, len(observations))


def _grow(box: Sequence[float], width: int, height: int, by: float = 0.15) -> tuple[int, int, int, int]:
    """A face box grown by ``by`` of its size on each side (hair, ears), in whole pixels inside the frame."""
    x1, y1, x2, y2 = box[:4]
    dx, dy = (x2 - x1) * by, (y2 - y1) * by
    return max(0, int(x1 - dx)), max(0, int(y1 - dy)), min(width, int(np.ceil(x2 + dx))), min(height, int(np.ceil(y2 + dy)))
