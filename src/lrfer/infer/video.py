"""Reading and writing video, frame by frame, in constant memory.

:func:`open_video` and :func:`open_webcam` give a :class:`VideoSource`: a context manager that
iterates :class:`Frame` records (index, time in seconds from the first frame, RGB uint8 image).
Frames are decoded one at a time and never collected. A file that cannot be read at all raises
:class:`~lrfer.errors.LrferError` when opened; a stream that breaks after some frames ends the
iteration quietly and says why in ``VideoSource.status`` (``"ok"`` when it ran to its end).
Rotation metadata (phone videos) is applied, so frames come upright.

:class:`VideoWriter` writes RGB frames to H.264 (libx264), or MPEG-4 part 2 where the FFmpeg in
the PyAV wheel has no libx264.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import LrferError
from .partial import PartialFile

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".3gp", ".ogv", ".gif"}

#: Used when a stream states no frame rate.
DEFAULT_FPS = 30.0


@dataclass
class Frame:
    index: int  # 0-based position in the stream
    time: float  # seconds since the first frame
    image: np.ndarray  # HxWx3 uint8 RGB


class VideoSource:
    """Frames of one video file, stream or camera; iterate once, close when done (or use ``with``).

    ``fps``, ``width`` and ``height`` describe the frames as yielded (after rotation);
    ``frame_count`` is the number the container states, ``None`` when unknown (cameras, streams,
    some containers). ``frames_read`` counts the frames yielded so far.
    """

    def __init__(self, name: str, *, fps: float, frame_count: Optional[int], live: bool = False):
        self.name = name
        self.fps = float(fps)
        self.frame_count = frame_count
        self.live = live
        self.width = 0
        self.height = 0
        self.status = "ok"
        self.frames_read = 0
        self._pending: list[tuple[np.ndarray, Optional[float]]] = []
        self._raw_iter: Optional[Iterator[tuple[np.ndarray, Optional[float]]]] = None
        self._t0: Optional[float] = None
        self._last_time = -np.inf
        self._closed = False

    # -- subclasses provide these -------------------------------------------------------------
    def _raw(self) -> Iterator[tuple[np.ndarray, Optional[float]]]:
        """Decoded (RGB image, presentation time or None); sets ``status`` and returns on a broken stream."""
        raise NotImplementedError

    def _release(self) -> None:
        pass

    def _check_complete(self) -> None:
        """At the end of the stream: record in ``status`` when fewer frames came than announced."""

    # -------------------------------------------------------------------------------------------
    def _start(self) -> None:
        """Decode the first frame now, so that an unreadable or empty video fails when opened."""
        self._raw_iter = self._raw()
        first = next(self._raw_iter, None)
        if first is None:
            self.close()
            if self.status != "ok":
                raise LrferError(f"cannot decode any frame of {self.name}: {self.status}", "check that the file plays in a video player; re-encode it, e.g. with ffmpeg -i in.ext out.mp4")
            raise LrferError(f"video has no frames: {self.name}", "give a video that contains at least one frame")
        self._pending.append(first)
        self.height, self.width = first[0].shape[:2]

    def __iter__(self) -> Iterator[Frame]:
        if self._raw_iter is None:
            return
        while True:
            if self._pending:
                item = self._pending.pop()
            else:
                item = next(self._raw_iter, None)
                if item is None:
                    if not self.live:
                        self._check_complete()
                    self._raw_iter = iter(())
                    return
            image, t = item
            yield Frame(self.frames_read, self._time(t), image)
            self.frames_read += 1

    def _time(self, t: Optional[float]) -> float:
        index_time = self.frames_read / self.fps
        if t is None:
            out = index_time if self._t0 is None else self._last_time + 1.0 / self.fps
        else:
            if self._t0 is None:
                self._t0 = t - index_time
            out = t - self._t0
        # Some containers (AVI with B-frames) label frames out of order; time never goes back.
        if out <= self._last_time:
            out = self._last_time + 1.0 / self.fps
        self._last_time = out
        return float(out)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pending.clear()
            self._release()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __repr__(self) -> str:
        n = "?" if self.frame_count is None else self.frame_count
        return f"{type(self).__name__}({self.name!r}, {self.width}x{self.height}, {self.fps:g} fps, {n} frames, status={self.status!r})"


class _AVSource(VideoSource):
    """PyAV (FFmpeg) demuxing and decoding."""

    def __init__(self, container, name: str, *, live: bool = False):
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate and float(rate) > 0 else DEFAULT_FPS
        super().__init__(name, fps=fps, frame_count=(stream.frames or None) if not live else None, live=live)
        self._container = container
        self._stream = stream
        try:
            stream.thread_type = "AUTO"  # frame/slice threads in the decoder; PyAV keeps frames in order
        except Exception:  # pragma: no cover - older PyAV
            pass
        # AVI stores no presentation times, and FFmpeg labels B-frames in decode order there.
        fmt = getattr(container.format, "name", "") or ""
        self._use_pts = "avi" not in fmt.split(",")
        self._duration = float(container.duration) / 1_000_000 if container.duration and container.duration > 0 else None

    def _raw(self):
        import av

        n = 0
        try:
            for f in self._container.decode(self._stream):
                img = f.to_ndarray(format="rgb24")
                rot = int(round((f.rotation or 0) / 90.0)) % 4
                if rot:
                    img = np.ascontiguousarray(np.rot90(img, k=rot))
                n += 1
                yield img, (f.time if self._use_pts else None)
        except (av.FFmpegError, OSError, EOFError) as err:
            self.status = f"video stream broken after {n} frames ({_short(err)})"

    def _check_complete(self) -> None:
        if self.status != "ok":
            return
        n = self.frames_read
        if self.frame_count:
            # Edit lists can legitimately hide a frame or two of the stated count.
            if n < 0.99 * self.frame_count - 2:
                self.status = f"video ended after {n} of {self.frame_count} frames (truncated or damaged file)"
        elif self._duration:
            expected = self._duration * self.fps
            if n < 0.95 * expected - 2:
                self.status = f"video ended after {n} frames ({n / self.fps:.1f} s of {self._duration:.1f} s; truncated or damaged file)"

    def _release(self) -> None:
        try:
            self._container.close()
        except Exception:  # pragma: no cover
            pass


class _OpenCVSource(VideoSource):
    """A camera through OpenCV, for PyAV builds without camera input (pip wheels on Linux)."""

    def __init__(self, cap, name: str):
        import cv2

        fps = cap.get(cv2.CAP_PROP_FPS)
        super().__init__(name, fps=fps if fps and 0 < fps < 1000 else DEFAULT_FPS, frame_count=None, live=True)
        self._cap = cap
        self._clock0 = time.monotonic()

    def _raw(self):
        import cv2

        while True:
            ok, bgr = self._cap.read()
            if not ok or bgr is None:
                if self.frames_read or self._pending:
                    self.status = f"camera stopped delivering frames after {self.frames_read} frames"
                else:
                    self.status = "camera delivered no frames"
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic() - self._clock0

    def _release(self) -> None:
        self._cap.release()


def _short(err: BaseException) -> str:
    # FFmpeg errors read "[Errno N] Invalid data ...: 'path'"; the reason alone is enough.
    msg = (getattr(err, "strerror", None) or str(err)).strip() or err.__class__.__name__
    return msg.splitlines()[0][:200]


def open_video(path: Union[str, os.PathLike], *, timeout: Optional[float] = None) -> VideoSource:
    """Open a video file (or a URL such as ``rtsp://...``) for frame-by-frame reading.

    ``timeout``: for URLs, the seconds to wait for the connection and then for each read before
    the stream counts as broken (default 15; a monitoring service wants to notice sooner)."""
    import av

    name = os.fspath(path)
    is_url = isinstance(name, str) and "://" in name
    if not is_url:
        p = Path(name)
        if not p.exists():
            raise LrferError(f"no such video file: {p}", "check the path")
        if p.is_dir():
            raise LrferError(f"{p} is a folder, not a video file", "give a video file such as .mp4, .avi, .mov or .mkv")
        if p.stat().st_size == 0:
            raise LrferError(f"not a video: {p} is empty (0 bytes)", "give a video file such as .mp4, .avi, .mov or .mkv")
    try:
        wait = 15.0 if timeout is None else float(timeout)
        container = av.open(name, "r", timeout=(wait, wait) if is_url else None)
    except (av.FFmpegError, OSError, EOFError, ValueError) as err:
        raise LrferError(f"not a readable video: {name} ({_short(err)})", "give a video file such as .mp4, .avi, .mov or .mkv") from None
    if not container.streams.video:
        container.close()
        raise LrferError(f"{name} has no video stream", "give a file with video in it (this one may be audio only)")
    src = _AVSource(container, name, live=is_url and container.duration is None)
    src._start()
    return src


def open_webcam(device: Union[int, str] = 0) -> VideoSource:
    """Open a camera: a number (``/dev/video<N>`` on Linux) or a device path/name.

    Uses FFmpeg's camera input (v4l2, avfoundation, dshow) when the installed PyAV has it, and
    OpenCV otherwise (PyAV's Linux wheels come without v4l2).
    """
    import av

    index: Optional[int] = None
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        index = int(device)
    if sys.platform.startswith("linux"):
        target = f"/dev/video{index}" if index is not None else str(device)
        if not os.path.exists(target):
            raise LrferError(f"no camera at {target}", "connect a camera, or give another device (cameras present: ls /dev/video*)")
        fmt = "v4l2" if "v4l2" in av.formats_available else ("video4linux2" if "video4linux2" in av.formats_available else None)
    elif sys.platform == "darwin":
        target = str(index) if index is not None else str(device)
        fmt = "avfoundation" if "avfoundation" in av.formats_available else None
    else:
        target = f"video={device}" if index is None and not str(device).startswith("video=") else str(device)
        fmt = "dshow" if index is None and "dshow" in av.formats_available else None

    if fmt is not None:
        try:
            container = av.open(target, "r", format=fmt, timeout=(10.0, 10.0))
        except (av.FFmpegError, OSError, ValueError) as err:
            raise LrferError(f"cannot open camera {target} ({_short(err)})", "check that no other program is using it and that you may read it") from None
        if not container.streams.video:
            container.close()
            raise LrferError(f"camera {target} has no video stream", "give another device")
        src: VideoSource = _AVSource(container, f"camera {target}", live=True)
    else:
        try:
            import cv2
        except ImportError:
            raise LrferError(
                f"cannot open camera {target}: the installed PyAV has no camera input",
                "install OpenCV for cameras: pip install opencv-python-headless",
            ) from None
        cap = cv2.VideoCapture(index if index is not None else target)
        if not cap.isOpened():
            cap.release()
            raise LrferError(f"cannot open camera {target}", "check that no other program is using it and that you may read it")
        src = _OpenCVSource(cap, f"camera {target}")
    src._start()
    return src


class FrameSampler:
    """Keeps about ``fps`` frames per second of video time, whatever the source's own rate.

    A frame is kept when its time has reached the next due time; the due time then moves one
    period on, or restarts from the frame after a gap (a stalled stream), so a late frame is never
    followed by a burst of catch-up frames. Used by ``lrfer batch --sample-fps`` and the service's
    cameras, so an archive and a live camera sample the same frames of the same footage."""

    def __init__(self, fps: float):
        if not fps > 0:
            raise LrferError(f"sampling rate {fps} fps", "give a positive number of frames per second")
        self.period = 1.0 / float(fps)
        self._due = -np.inf

    def take(self, t: float) -> bool:
        """Whether the frame at ``t`` seconds is kept."""
        if t < self._due - 1e-6:
            return False
        self._due = self._due + self.period if t < self._due + self.period else t + self.period
        return True


def sample_frames(frames: Iterator[Frame], fps: float) -> Iterator[Frame]:
    """The frames :class:`FrameSampler` keeps at ``fps``."""
    sampler = FrameSampler(fps)
    return (f for f in frames if sampler.take(f.time))


def _encoder_available(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


#: The containers :class:`VideoWriter` is used with (FFmpeg picks one from the file name).
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov")


class VideoWriter:
    """Write RGB uint8 frames (``HxWx3``, or ``HxW`` gray) of the given size to a video file.

    The container comes from the file name (.mp4, .mkv, .avi, .mov). Odd widths/heights are padded
    by one edge pixel, as yuv420p needs even sizes. ``codec`` picks an encoder explicitly.
    """

    def __init__(self, path: Union[str, os.PathLike], fps: float, width: int, height: int, *, codec: Optional[str] = None, crf: int = 20):
        import av

        self.path = Path(path)
        self.width, self.height = int(width), int(height)
        if self.width < 1 or self.height < 1:
            raise ValueError(f"video size must be positive, not {width}x{height}")
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # frames go to a temporary file that replaces the user's on close: a failed or killed run
        # leaves the earlier video, not half of a new one (the suffix kept: FFmpeg reads the container from it)
        try:
            self._partial = PartialFile(self.path, keep_suffix=True)
        except OSError as err:
            raise LrferError(f"cannot write {self.path} ({err.strerror or err})", "check that the folder exists and is writable") from None
        try:
            self._container = av.open(str(self._partial.tmp), "w")
        except ValueError:
            self._partial.discard()
            raise LrferError(f"cannot write a video named {self.path}: unknown file type '{self.path.suffix}'", "use a .mp4, .mkv or .avi file name") from None
        except (av.FFmpegError, OSError) as err:
            self._partial.discard()
            raise LrferError(f"cannot write {self.path} ({_short(err)})", "check that the folder exists and is writable") from None
        if codec is None:
            codec = "libx264" if _encoder_available("libx264") else "mpeg4"
        self.codec = codec
        self.rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=self.rate)
        self._stream.width = self.width + self.width % 2
        self._stream.height = self.height + self.height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec in ("libx264", "h264"):
            self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        elif codec == "mpeg4":
            self._stream.bit_rate = max(1_000_000, int(self._stream.width * self._stream.height * float(self.rate) * 0.3))
        self._time_base = 1 / self.rate
        self.frames_written = 0
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        import av

        a = np.asarray(frame)
        if a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if a.shape != (self.height, self.width, 3) or a.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 {self.height}x{self.width}x3, got {a.dtype} {a.shape}")
        pad_h, pad_w = self.height % 2, self.width % 2
        if pad_h or pad_w:
            a = np.pad(a, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
        vf.pts = self.frames_written
        vf.time_base = self._time_base
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self, keep: bool = True) -> None:
        """Finish the video and put it in place of ``path`` (``keep``); ``keep=False`` (the run
        failed) removes it and leaves ``path`` as it was."""
        if self._closed:
            return
        self._closed = True
        try:
            try:
                if keep:
                    for packet in self._stream.encode(None):
                        self._container.mux(packet)
            finally:
                self._container.close()  # always: PyAV must not be left to a destructor at exit
        except BaseException:
            self._partial.discard()
            raise
        self._partial.commit() if keep else self._partial.discard()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close(keep=exc[0] is None)
