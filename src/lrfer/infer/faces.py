"""Reading face images from disk and classifying them: the ``lrfer predict`` path for face crops.

Every file gets a row with a ``status``: ``ok``, or what went wrong (unreadable, empty, too large),
so one bad file never stops a run and is never dropped silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import LrferError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
#: Decompression-bomb guard: more pixels than a 64-megapixel photo is refused, not decoded.
MAX_PIXELS = 64_000_000


class ImageReadError(Exception):
    """A single image could not be read; the message is the per-file status."""


def read_image(path: Union[str, os.PathLike], channels: int = 1) -> torch.Tensor:
    """Decode an image file into uint8 ``(channels, H, W)``; any mode (L, RGB, RGBA, P, I;16, CMYK)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageReadError("empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageReadError(f"image too large ({im.width}x{im.height} px; limit {MAX_PIXELS} px)")
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16/32-bit grayscale: scale to 8 bits by the actual range rather than clipping at 255.
                a = np.asarray(im, dtype=np.float64)
                lo, hi = float(a.min()), float(a.max())
                a = np.zeros_like(a) if hi <= lo else (a - lo) * (255.0 / (hi - lo))
                im = Image.fromarray(a.round().astype(np.uint8), "L")
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                # Composite transparency on white, as a viewer shows it.
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("L" if channels == 1 else "RGB")
            a = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"not a readable image ({err.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"unreadable or truncated image ({err})") from None
    t = torch.from_numpy(a.copy())
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def expand_paths(paths: Iterable[Union[str, os.PathLike]]) -> list[Path]:
    """Files as given, folders expanded to their image files (recursively, sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise LrferError(f"no image files in folder {p}", "give image files or a folder of .png/.jpg face crops")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise LrferError(f"no such file or folder: {p}", "check the path")
    return out


def predict_files(classifier, paths: Iterable[Union[str, os.PathLike]], *, tta: str = "none", batch_size: int = 256) -> list[dict]:
    """One row per file: status, size, label, confidence and per-class probabilities."""
    files = expand_paths(paths)
    rows: list[dict] = []
    faces: list[torch.Tensor] = []
    face_rows: list[dict] = []
    for f in files:
        row: dict = {"file": str(f)}
        try:
            img = read_image(f, classifier.in_chans)
        except ImageReadError as err:
            row["status"] = str(err)
        else:
            row.update(status="ok", width=int(img.shape[2]), height=int(img.shape[1]))
            # Faces of mixed sizes: resize each to the model's size so they batch together.
            faces.append(_to_size(img, classifier.image_size))
            face_rows.append(row)
        rows.append(row)
    if faces:
        probs = classifier.predict_proba(torch.stack(faces), tta=tta, batch_size=batch_size)
        for row, p in zip(face_rows, probs):
            k = int(p.argmax())
            row.update(
                label=classifier.classes[k],
                confidence=round(float(p[k]), 4),
                probabilities={c: round(float(v), 4) for c, v in zip(classifier.classes, p)},
            )
    return rows


def _to_size(img: torch.Tensor, size: int) -> torch.Tensor:
    if img.shape[-2:] == (size, size):
        return img
    import torch.nn.functional as F

    x = img[None].float()
    shrink = min(img.shape[-2:]) > size
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    return x[0].round().clamp(0, 255).to(torch.uint8)
