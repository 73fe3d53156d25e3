"""Drawing recognised faces onto a frame: a box per face and a "label 87% #3" tag.

Faces are any objects with ``box`` (x1, y1, x2, y2 in frame pixels), ``label`` (str or None),
``confidence`` (0-1 or None) and optionally ``track_id``; the Recognizer's ``Face`` records fit.
Line width and text size follow the frame size, so tags stay legible on 4K and on 320x240.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

#: Box colours of the usual expression classes; other labels get a stable colour from their name.
EXPRESSION_COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 40, 40),
    "anger": (230, 40, 40),
    "disgust": (60, 170, 60),
    "fear": (150, 70, 200),
    "happy": (250, 200, 0),
    "happiness": (250, 200, 0),
    "sad": (40, 110, 230),
    "sadness": (40, 110, 230),
    "surprise": (255, 130, 0),
    "neutral": (180, 180, 180),
    "contempt": (150, 100, 60),
}
_PALETTE = [(0, 190, 190), (230, 80, 160), (120, 200, 40), (90, 90, 240), (240, 150, 90), (170, 120, 230)]
_UNLABELLED = (0, 200, 255)


def colour_for(label: str | None) -> tuple[int, int, int]:
    """The box colour for an expression label."""
    if label is None:
        return _UNLABELLED
    c = EXPRESSION_COLOURS.get(label.lower())
    return c if c is not None else _PALETTE[zlib.crc32(label.encode()) % len(_PALETTE)]


@lru_cache(maxsize=16)
def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: fixed bitmap font
        return ImageFont.load_default()


def face_text(face) -> str:
    """The tag drawn above a face: ``"happy 87% #3"``, ``"happy? 41% #3"`` when it is uncertain
    (parts that are missing are left out)."""
    parts = []
    label = getattr(face, "label", None)
    conf = getattr(face, "confidence", None)
    tid = getattr(face, "track_id", None)
    if label is not None:
        parts.append(str(label) + ("?" if getattr(face, "uncertain", False) else ""))
    if conf is not None:
        parts.append(f"{100 * float(conf):.0f}%")
    if tid is not None:
        parts.append(f"#{int(tid)}")
    return " ".join(parts)


def draw_faces(frame: np.ndarray, faces) -> np.ndarray:
    """An annotated RGB copy of ``frame`` (``HxWx3`` or ``HxW`` uint8); the input is not changed."""
    a = np.asarray(frame)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    im = Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8), "RGB")
    h, w = a.shape[:2]
    short = min(h, w)
    line = max(1, round(short / 300))
    font = _font(max(10, round(short / 32)))
    draw = ImageDraw.Draw(im)
    for face in faces:
        x1, y1, x2, y2 = (float(v) for v in face.box)
        colour = colour_for(getattr(face, "label", None))
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=line)
        text = face_text(face)
        if not text:
            continue
        l, t, r, b = draw.textbbox((0, 0), text, font=font)
        tw, th = r - l, b - t
        pad = max(1, line)
        # Above the box when there is room, otherwise just inside its top edge; kept on the frame.
        ty = y1 - th - 2 * pad if y1 - th - 2 * pad >= 0 else y1
        tx = min(max(0.0, x1), max(0.0, w - tw - 2 * pad))
        draw.rectangle([tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad], fill=colour)
        luma = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
        draw.text((tx + pad - l, ty + pad - t), text, fill=(0, 0, 0) if luma > 128 else (255, 255, 255), font=font)
    return np.array(im)
