"""File-level rules, each in one place: atomic writes, JSON-lines logs, image files and their
decoding, and a file's SHA-256.

Atomic writes: write to a temporary file in the same folder, fsync it, then ``os.replace`` it over
the target: on POSIX and Windows the rename is atomic, so a kill at any moment leaves the old file
or the new one, never a torn one (a reader, or a resumed run, never sees a half-written file).

Images: the dataset readers and the ``lrfer predict`` path decode through :func:`decode_image`, so
a face file reads the same pixels whichever way it enters (any mode, transparency on white, 16-bit
scaled by its range) and is refused by the same rules, with an :class:`ImageReadError` that says why.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

import numpy as np

from .errors import LrferError

if TYPE_CHECKING:
    from PIL import Image

PathLike = Union[str, os.PathLike]

#: The file name endings read as images (dataset folders, ``lrfer predict FOLDER``).
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm"})

#: Decompression-bomb guard: an image with more pixels is refused before it is decoded. 64 M keeps
#: every photo of a 64-megapixel camera readable by ``lrfer predict`` (face datasets hold images
#: of a few thousand pixels, far below either), and stays below Pillow's own limit (89 M), so the
#: user gets an ImageReadError naming the file, not a Pillow warning.
MAX_PIXELS = 64_000_000

_BAD_IMAGE_HINT = "the file is truncated or not an image: re-extract the dataset or delete the file"


# The process's umask, read once at import (reading it means setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the file, then move it into place atomically.

    The file gets the permissions of a file opened for writing (0666 less the umask): mkstemp's
    private 0600 would leave an exported model or a results file unreadable to the rest of a team."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_writable(path: PathLike, what: str, *, folder: bool = False) -> Path:
    """``path`` as ``Path`` if it can be written as a file (or, with ``folder``, made or used as a
    folder); else a one-line LrferError naming ``what`` (e.g. ``--out``). Checked before any work,
    so a long run never ends in an output it cannot write."""
    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise LrferError(f"{what} {p} is a file, not a folder", "give a folder path (it is made if missing)")
    if not folder and p.is_dir():
        raise LrferError(f"{what} {p} is a folder", "give a file path")
    base = p if folder else p.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise LrferError(f"{what} {p}: {base} is a file, so nothing can be written under it", "choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise LrferError(f"{what} {p}: cannot write in {base} (permission denied)", "choose a writable path")
    return p


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines log; a missing file has none. A last line cut short (a kill while
    appending: no newline after it) is left out; a damaged line elsewhere is a one-line LrferError."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    rows = []
    for k, (i, line) in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except (ValueError, RecursionError):  # RecursionError: a line of thousands of '[' (json nests by recursion)
            if k == len(lines) - 1 and not text.endswith("\n"):
                break
            raise LrferError(f"{path}: line {i} is not JSON", "the log is damaged; remove that line (a run resumes from its checkpoint)") from None
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def sha256_file(path: PathLike) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks (checkpoints can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_image_file(path: Path, *, broken_links: bool = False) -> bool:
    """An image by its name (hidden files such as macOS ``._x.jpg`` are not) that is a regular file;
    with ``broken_links``, also a symbolic link that leads nowhere (a loop, a deleted target), so
    that a batch can report it instead of dropping it."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith("."):
        return False
    return path.is_file() or (broken_links and path.is_symlink() and not path.exists())


class ImageReadError(Exception):
    """One image file could not be read: the message says why (it is ``lrfer predict``'s per-file
    status), ``hint`` what to do about the file."""

    def __init__(self, what: str, hint: str = _BAD_IMAGE_HINT):
        super().__init__(what)
        self.hint = hint


def decode_image(path: Union[PathLike, bytes], mode: str = "L") -> "Image.Image":
    """Decode an image file (or its bytes, e.g. an upload: never written to disk) of any mode (L,
    RGB, RGBA, P, I;16, CMYK) into a PIL image of ``mode``.

    16/32-bit grayscale is scaled to 8 bits by its actual range rather than clipped at 255, and
    transparency is composited on white and EXIF orientation applied, as a viewer shows it. Empty, unreadable, truncated and
    oversized files raise :class:`ImageReadError`; a missing file raises ``FileNotFoundError``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # PIL only for those who decode images

    in_memory = isinstance(path, (bytes, bytearray))
    if (len(path) if in_memory else Path(path).stat().st_size) == 0:
        raise ImageReadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns (to stderr) above its own limit, which MAX_PIXELS below refuses anyway, and
            # about damaged metadata (a TIFF tag past the end, bad EXIF) while it reads on: the file
            # either decodes or raises, and the library never prints, so its warnings are not shown
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(path) if in_memory else path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageReadError(
                        f"{w}x{h} pixels is above the {MAX_PIXELS} pixel limit (decompression-bomb guard)",
                        "face images are small: shrink or remove the file",
                    )
                im.load()  # the full decode, so truncation shows up here
                # A phone photo stores its pixels sideways and says so in EXIF: turned upright, as a
                # viewer shows it (else its faces are found lying down, or not at all).
                return _to_mode(ImageOps.exif_transpose(im), mode)
    except (UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"not a readable image ({err.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageReadError(f"unreadable or truncated image ({err})") from None
    # Pillow's format parsers let these out on some damaged files (a TIFF tag holding a fraction where
    # a count belongs: TypeError; struct.error on a short field): the file is as unreadable
    except (TypeError, IndexError, KeyError, ZeroDivisionError, struct.error) as err:
        raise ImageReadError(f"unreadable or damaged image ({type(err).__name__}: {err})") from None


def _to_mode(im: "Image.Image", mode: str) -> "Image.Image":
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = np.zeros_like(a) if hi <= lo else (a - lo) * (255.0 / (hi - lo))
        im = Image.fromarray(a.round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im)
    return im.convert(mode)
