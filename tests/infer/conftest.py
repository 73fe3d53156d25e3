"""Synthetic videos for the inference tests: moving cartoon faces, and broken or empty files.

Videos are written with PyAV directly (not with lrfer's VideoWriter) so that reader tests do not
depend on the writer under test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

SKIN = (225, 190, 160)
EYE = (20, 20, 20)


@dataclass
class Clip:
    path: Path
    fps: float
    width: int
    height: int
    boxes: list[np.ndarray]  # per frame (2, 4) float32: [big face, small face]
    eyes: list[np.ndarray]  # per frame (2, 2, 2): per face, image-left and image-right eye (x, y)

    def __len__(self) -> int:
        return len(self.boxes)


def face_eyes(box, angle_deg: float = 0.0) -> np.ndarray:
    """Where :func:`draw_face` puts the eyes of a face in ``box``, rotated by ``angle_deg``."""
    x1, y1, x2, y2 = box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    a = np.deg2rad(angle_deg)
    out = []
    for dx, dy in ((-0.22 * w, -0.12 * h), (0.22 * w, -0.12 * h)):
        out.append((cx + dx * np.cos(a) - dy * np.sin(a), cy + dx * np.sin(a) + dy * np.cos(a)))
    return np.array(out, np.float32)


def draw_face(img: Image.Image, box, angle_deg: float = 0.0) -> None:
    """A skin ellipse filling ``box`` with two dark eye dots (rotated by ``angle_deg`` about the centre)."""
    draw = ImageDraw.Draw(img)
    x1, y1, x2, y2 = box
    draw.ellipse([x1, y1, x2, y2], fill=SKIN)
    r = max(1.5, 0.07 * (x2 - x1))
    for ex, ey in face_eyes(box, angle_deg):
        draw.ellipse([ex - r, ey - r, ex + r, ey + r], fill=EYE)


def clip_boxes(i: int, n: int, width: int, height: int) -> np.ndarray:
    """Two faces of different sizes on crossing paths: the big one left to right, the small one back."""
    f = i / max(1, n - 1)
    big_cx, big_cy, bw, bh = 100 + f * (width - 200), 0.45 * height, 120, 150
    small_cx, small_cy, sw, sh = width - 80 - f * (width - 160), 0.52 * height, 40, 50
    return np.array(
        [
            [big_cx - bw / 2, big_cy - bh / 2, big_cx + bw / 2, big_cy + bh / 2],
            [small_cx - sw / 2, small_cy - sh / 2, small_cx + sw / 2, small_cy + sh / 2],
        ],
        np.float32,
    )


def background(width: int, height: int) -> np.ndarray:
    # A smooth gradient: compresses well and keeps the faces the only dark-dotted things.
    x = np.linspace(60, 140, width, dtype=np.float32)
    y = np.linspace(0, 40, height, dtype=np.float32)
    g = (x[None, :] + y[:, None]).astype(np.uint8)
    return np.stack([g, g, (g * 0.8).astype(np.uint8)], axis=2)


def render_clip_frame(i: int, n: int, width: int, height: int) -> np.ndarray:
    img = Image.fromarray(background(width, height))
    for box in clip_boxes(i, n, width, height):  # the small face is drawn last, on top when they cross
        draw_face(img, box)
    return np.asarray(img)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, *, codec: str = "libx264", options: dict | None = None, container_options: dict | None = None) -> Path:
    """Encode RGB frames with PyAV (ultrafast x264 by default)."""
    import av

    with av.open(str(path), "w", options=container_options or {}) as c:
        stream = None
        for frame in frames:
            if stream is None:
                stream = c.add_stream(codec, rate=int(fps))
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = options if options is not None else ({"preset": "ultrafast"} if codec == "libx264" else {})
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                c.mux(packet)
        if stream is not None:
            for packet in stream.encode(None):
                c.mux(packet)
    return path


def write_zero_frame_video(path: Path) -> Path:
    """An AVI with a video stream that holds no frames (MP4/MKV drop or refuse an empty track)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=15)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    return path


def write_non_video(path: Path) -> Path:
    path.write_text("this is a text file, not a video\n" * 20)
    return path


def truncate(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="session")
def moving_faces_video(tmp_path_factory) -> Clip:
    """640x480, 60 frames at 15 fps: two faces (120x150 and 40x50 px) crossing each other."""
    n, w, h, fps = 60, 640, 480, 15
    path = tmp_path_factory.mktemp("video") / "faces.mp4"
    write_video(path, (render_clip_frame(i, n, w, h) for i in range(n)), fps)
    boxes = [clip_boxes(i, n, w, h) for i in range(n)]
    eyes = [np.stack([face_eyes(b) for b in bx]) for bx in boxes]
    return Clip(path, fps, w, h, boxes, eyes)
