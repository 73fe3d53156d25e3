"""What every reader shares: path and folder helpers, csv parsing, npz opening, image decoding into
one tensor, and :func:`finish`, the one place a FaceSet leaves a reader."""

from __future__ import annotations

import csv
import os
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from tokenize import TokenError
from typing import Any, Optional, Union

import numpy as np
import torch
from PIL import Image

from ...errors import LrferError
from ...files import ImageReadError, decode_image, is_image_file
from ...progress import Progress, report
from ..faceset import FaceSet
from ..labels import ALIASES
from ..splits import duplicate_groups

PathLike = Union[str, "os.PathLike[str]"]
Size = Union[int, tuple[int, int], None]

LAYOUTS_HINT = (
    "accepted: a .npz archive (images, labels, class_names); FER2013 fer2013.csv (emotion,pixels,Usage); "
    "FERPlus fer2013new.csv (with fer2013.csv or fer2013.npz beside it, or fer2013=PATH); "
    "class folders ROOT/<class>/* or ROOT/<split>/<class>/*; CK+48 (ROOT/<class>/S###_###_########.png) or "
    "original CK+ (cohn-kanade-images/ + Emotion/); RAF-DB (EmoLabel/list_patition_label.txt + Image/aligned/); "
    "JAFFE (files like KA.AN1.39.tiff); Aff-Wild2 (cropped_aligned/ + EXPR_Set/). "
    "Or name the format explicitly (format=...)"
)

_NATURAL = re.compile(r"(\d+)")


# ====================================================================== paths and folders
def existing(path: PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise LrferError(
            f"no such file or folder: {p}",
            f"check the path (relative paths are resolved from {Path.cwd()})",
        )
    return p


def natural_key(text: str) -> list:
    """Sort key that puts ``im2`` before ``im10`` (the FER2013 folder layout numbers rows that way)."""
    return [int(t) if t.isdigit() else t.lower() for t in _NATURAL.split(text)]


def visible_dirs(folder: Path) -> list[Path]:
    return sorted(
        (d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))),
        key=lambda d: d.name,
    )


def image_files(folder: Path) -> list[Path]:
    return sorted((f for f in folder.iterdir() if is_image_file(f)), key=lambda f: natural_key(f.name))


def is_class_name(name: str) -> bool:
    return name.strip().lower() in ALIASES


def rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


# ====================================================================== csv and npz
def csv_lines(path: Path):
    """Yield (line number, fields) per non-blank line.

    FER2013 files hold no quoted fields, so a plain split is twice as fast as the csv module on the
    ~290 MB file; any line with a quote falls back to the csv module.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        try:
            for number, line in enumerate(f, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                if '"' in line:
                    yield number, next(csv.reader([line]))
                else:
                    yield number, line.split(",")
        except UnicodeDecodeError:
            raise LrferError(f"{path} is not UTF-8 text", "save the file as UTF-8 (a CSV of numbers and names)") from None


def header_index(path: Path, header: list[str], required: Sequence[str], optional: Sequence[str] = ()) -> dict:
    found = {h.strip().lower(): i for i, h in enumerate(header)}
    missing = [c for c in required if c.lower() not in found]
    if missing:
        raise LrferError(
            f"{path}: missing column(s) {', '.join(missing)}; the header has {', '.join(h.strip() for h in header) or 'nothing'}",
            f"expected the columns {', '.join(list(required) + list(optional))}"
            + (f" ({', '.join(optional)} optional)" if optional else ""),
        )
    return {c: found.get(c.lower()) for c in list(required) + list(optional)}


#: What numpy and zipfile raise for damaged bytes: NotImplementedError for a zip feature Python lacks,
#: RuntimeError for an encrypted member, TokenError/SyntaxError for a damaged .npy header, zlib.error
#: for a damaged compressed member (np.savez_compressed), MemoryError for a header claiming a huge array.
_NPZ_ERRORS = (ValueError, OSError, EOFError, MemoryError, NotImplementedError, RuntimeError, SyntaxError, TokenError,
               zipfile.BadZipFile, zlib.error)


class open_npz:
    """``np.load`` without pickles, with format errors turned into LrferError."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        try:
            self.z = np.load(self.path, allow_pickle=False)
        except _NPZ_ERRORS as err:  # a lone .npy is read here, header and all
            # numpy says any bytes it cannot parse hold pickles and offers to load them "unsafely":
            # advice no user should follow on a damaged or foreign file, so it is not passed on
            why = "not an .npz archive (nor a .npy array)" if "allow_pickle" in str(err) else str(err)
            raise LrferError(f"cannot read {self.path} as a numpy .npz archive: {why}",
                             "check that the file is complete (re-copy it)") from None
        if not hasattr(self.z, "files"):
            raise LrferError(f"{self.path} holds a single array, not an .npz archive",
                             "save with np.savez(path, images=..., labels=..., class_names=...)")
        return _CheckedNpz(self.z, self.path)

    def __exit__(self, *exc):
        self.z.close()
        return False


class _CheckedNpz:
    """An open .npz whose arrays, read one by one when asked for, fail as LrferError: a member
    cut short, or an object array (which would need pickle, never allowed)."""

    def __init__(self, z, path: Path):
        self.z, self.path, self.files = z, path, z.files

    def __contains__(self, key: str) -> bool:
        return key in self.z

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            array = self.z[key]
        except _NPZ_ERRORS as err:
            why = (str(err).splitlines() or [type(err).__name__])[0][:120]
            raise LrferError(f"{self.path}: array '{key}' cannot be read ({why})",
                             "save plain numeric or string arrays with np.savez (no Python objects)") from None
        if not isinstance(array, np.ndarray):  # numpy hands back the raw bytes of a member that is no .npy
            raise LrferError(f"{self.path}: '{key}' is not a numpy array", "save the archive with np.savez")
        return array

    def column(self, key: str, dtype: Any, ndim: int = 1) -> np.ndarray:
        """Array ``key`` as ``dtype`` with ``ndim`` dimensions (one row per image), or an LrferError
        naming it: text where numbers belong, NaN or a value out of range of ``dtype`` included."""
        array = self[key]
        if array.ndim != ndim:
            raise LrferError(f"{self.path}: array '{key}' has shape {array.shape}, not {ndim} dimension(s)",
                             "save one row per image (np.savez with arrays of equal length)")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # numpy only warns when NaN or an overflow is cast
                out = array.astype(dtype)
        except (ValueError, TypeError, OverflowError, Warning) as err:
            why = (str(err).splitlines() or [type(err).__name__])[0][:120]
            raise LrferError(f"{self.path}: array '{key}' ({array.dtype}) cannot be read as {np.dtype(dtype).name} ({why})",
                             "save labels and indices as integers, names as strings") from None
        # numpy keeps the 4-byte code points of a text array as stored: one above Unicode's last
        # (0x10FFFF) fails in CPython (SystemError) as soon as the text becomes a Python str
        if out.dtype.kind == "U" and out.size and out.dtype.itemsize and int(out.view(np.uint32).max()) > 0x10FFFF:
            raise LrferError(f"{self.path}: array '{key}' holds text that is not Unicode", "save names as ordinary strings")
        return out


def same_rows(path: Path, n: int, **arrays: Optional[np.ndarray]) -> None:
    """Every given array has one row per image (``n``), or an LrferError naming the first that has not."""
    for key, value in arrays.items():
        if value is not None and len(value) != n:
            raise LrferError(f"{path}: {key} has {len(value)} rows, images have {n}", "all arrays need one row per image")


def require_keys(path: Path, z, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in z.files]
    if missing:
        raise LrferError(
            f"{path} has no array(s) {', '.join(missing)} (it has {', '.join(z.files) or 'none'})",
            "an npz dataset needs images, labels and class_names (optionally split or usage, groups, ids)",
        )


# ====================================================================== the FaceSet a reader returns
def source(fmt: str, path: Path, **options: Any) -> dict:
    """Provenance kept in ``meta``; two sets share one duplicate numbering iff their sources are equal."""
    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(options.items()) if v is not None}
    return {"format": fmt, "path": str(path.resolve()), "options": opts}


def empty(path: Path, detail: str = "") -> LrferError:
    return LrferError(f"no labelled faces found in {path}{': ' + detail if detail else ''}", LAYOUTS_HINT)


def skipped_meta(skipped: list[str]) -> Optional[dict]:
    """``meta`` listing the images ``skip_bad=True`` skipped, or None when none were."""
    return {"skipped_files": skipped} if skipped else None


def finish(
    *,
    path: Path,
    name: str,
    source: dict,
    images: torch.Tensor,
    labels: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    split: Sequence[str] | np.ndarray,
    groups: Optional[Sequence[str] | np.ndarray] = None,
    ids: Optional[Sequence[str] | np.ndarray] = None,
    dup_group: Optional[np.ndarray] = None,
    soft_labels: Optional[torch.Tensor] = None,
    meta: Optional[dict] = None,
) -> FaceSet:
    """Assemble a FaceSet; the one place that refuses empty sets and fills ``dup_group``."""
    if len(images) == 0:
        raise empty(path)
    if dup_group is None:
        dup_group = duplicate_groups(images)
    return FaceSet(
        images=images,
        labels=torch.as_tensor(np.asarray(labels, dtype=np.int64)),
        classes=tuple(classes),
        split=np.asarray(split, dtype=str),
        soft_labels=soft_labels,
        groups=None if groups is None else np.asarray(groups, dtype=str),
        dup_group=np.asarray(dup_group, dtype=np.int64),
        ids=None if ids is None else np.asarray(ids, dtype=str),
        name=name,
        meta={"source": source, **(meta or {})},
    )


# ====================================================================== image files -> one tensor
def size_hw(size: Size, what: str = "size") -> Optional[tuple[int, int]]:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        hw = (int(size[0]), int(size[1]))
    else:
        raise LrferError(f"{what}={size!r} is not an image size", "give one integer (square) or (height, width)")
    if min(hw) < 1 or max(hw) > 4096:
        raise LrferError(f"{what}={size!r} is out of range", "use a size between 1 and 4096 pixels")
    return hw


def _fit(im: Image.Image, hw: tuple[int, int]) -> Image.Image:
    """Centre crop to the target aspect ratio (faces are never stretched), then antialiased resize."""
    th, tw = hw
    w, h = im.size
    if (w, h) == (tw, th):
        return im
    if w * th > h * tw:  # too wide
        nw = max(1, round(h * tw / th))
        left = (w - nw) // 2
        im = im.crop((left, 0, left + nw, h))
    elif w * th < h * tw:  # too tall
        nh = max(1, round(w * th / tw))
        top = (h - nh) // 2
        im = im.crop((0, top, w, top + nh))
    return im.resize((tw, th), Image.Resampling.BICUBIC)


def decode_images(
    files: Sequence[Path],
    *,
    root: Path,
    color: bool,
    size: Size,
    skip_bad: bool,
    progress: Optional[Progress],
    task: str,
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Decode image files into one uint8 (N,C,H,W) tensor.

    Returns the tensor, the indices (into ``files``) of the images kept, and the skipped files.
    Without a ``size`` the most common image size wins and the others are fitted to it, because a
    FaceSet holds one tensor and a few odd-sized files should not make a whole dataset unusable.
    """
    mode = "RGB" if color else "L"
    target = size_hw(size)
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    total = len(files)
    for i, f in enumerate(files):
        try:
            im = decode_image(f, mode)
        except ImageReadError as err:
            if not skip_bad:
                raise LrferError(
                    f"cannot read image {f}: {err}",
                    f"{err.hint}, or pass skip_bad=True to skip unreadable images (listed in meta['skipped_files'])",
                ) from None
            skipped.append(rel(f, root))
            continue
        if target is not None:
            im = _fit(im, target)
        arrays.append(np.asarray(im, dtype=np.uint8))
        kept.append(i)
        if (i + 1) % 256 == 0:
            report(progress, task, i + 1, total)
    report(progress, task, total, total)
    channels = 3 if color else 1
    if not arrays:
        return torch.zeros((0, channels, 1, 1), dtype=torch.uint8), np.zeros(0, dtype=np.int64), skipped
    if target is None:
        target = Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
        arrays = [a if a.shape[:2] == target else np.asarray(_fit(Image.fromarray(a), target)) for a in arrays]
    stack = np.stack(arrays)
    del arrays
    tensor = torch.from_numpy(stack)
    tensor = tensor.unsqueeze(1) if channels == 1 else tensor.permute(0, 3, 1, 2).contiguous()
    return tensor, np.asarray(kept, dtype=np.int64), skipped
