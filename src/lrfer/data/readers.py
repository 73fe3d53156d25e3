"""Readers: every native on-disk dataset format, turned into a :class:`FaceSet` at the edge.

One function per format (``fer2013_csv``, ``ferplus``, ``class_folders``, ``ckplus``, ``rafdb``,
``jaffe``, ``affwild2``, ``npz``), plus :func:`load_dataset`, which recognises the format from the
path, and :data:`FORMATS` (name -> reader) for the command line. Conventions shared by all readers:

- class names are canonical (:mod:`lrfer.data.labels`); the label order is the dataset's own order
  mapped to canonical names (folder layouts: sorted folder names, as ``torchvision``'s
  ``ImageFolder`` numbers them, so label indices match models trained that way);
- images are grayscale unless ``color=True``; when a ``size`` is given (or the images of a set
  differ in size), images are centre-cropped to the target aspect ratio and resized with Pillow's
  antialiased bicubic filter. No face detection or alignment is ever done;
- ``dup_group`` is always filled: from the dataset's own duplicate ids where it has them, else by
  hashing the decoded pixels (:func:`duplicate_groups`);
- ``meta["source"]`` records format, path and options, so that split helpers can tell whether two
  sets share one duplicate numbering;
- every problem with the user's files is an :class:`~lrfer.errors.LrferError` that names the file
  (and line) and says what to do; bad images are never skipped silently (``skip_bad=True`` skips
  them and lists them in ``meta["skipped_files"]``).
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from PIL import Image

from ..errors import LrferError, closest
from ..progress import Progress, report
from .faceset import FaceSet
from .labels import ALIASES, CANONICAL, canonical_name

PathLike = Union[str, "os.PathLike[str]"]
Size = Union[int, tuple[int, int], None]

#: Images with more pixels than this are refused before decoding (decompression-bomb guard).
#: Lower than Pillow's own limit so that the user gets an LrferError naming the file, not a warning.
MAX_PIXELS = 40_000_000

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm"})

#: FER2013's own label order (0..6), which is also the start of the canonical order.
FER2013_CLASSES: tuple[str, ...] = CANONICAL[:7]
FER2013_PIXELS = 48 * 48

#: The ten vote columns of FERPlus's ``fer2013new.csv``, in file order.
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
_FERPLUS_TO_CANON = np.array([CANONICAL.index(canonical_name(c)) for c in FERPLUS_COLUMNS[:8]])
_CANON_TO_FERPLUS = np.argsort(_FERPLUS_TO_CANON)
FERPLUS_MODES = ("majority", "plurality", "probability")

#: CK+ emotion codes (``Emotion/*_emotion.txt``): 0 is only used for the optional neutral frame.
CKPLUS_CODES: tuple[str, ...] = ("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
#: RAF-DB basic labels 1..7.
RAFDB_CLASSES: tuple[str, ...] = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
#: Aff-Wild2 EXPR header, and the classes it maps to (``other`` is not canonical, see :func:`affwild2`).
AFFWILD2_HEADER: tuple[str, ...] = ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "other")
AFFWILD2_CLASSES: tuple[str, ...] = ("neutral", "angry", "disgust", "fear", "happy", "sad", "surprise", "other")
JAFFE_CODES: dict[str, str] = {
    "AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprise",
}

_CK_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.\w+$", re.IGNORECASE)
_JAFFE_NAME = re.compile(r"^([A-Za-z]{2})\.([A-Za-z]{2})\d*\.(\d+)\.(tiff?|png|jpe?g|bmp)$", re.IGNORECASE)
_NATURAL = re.compile(r"(\d+)")

LAYOUTS_HINT = (
    "accepted: a .npz archive (images, labels, class_names); FER2013 fer2013.csv (emotion,pixels,Usage); "
    "FERPlus fer2013new.csv (with fer2013.csv or fer2013.npz beside it, or fer2013=PATH); "
    "class folders ROOT/<class>/* or ROOT/<split>/<class>/*; CK+48 (ROOT/<class>/S###_###_########.png) or "
    "original CK+ (cohn-kanade-images/ + Emotion/); RAF-DB (EmoLabel/list_patition_label.txt + Image/aligned/); "
    "JAFFE (files like KA.AN1.39.tiff); Aff-Wild2 (cropped_aligned/ + EXPR_Set/). "
    "Or name the format explicitly (format=...)"
)


# ====================================================================== duplicates
def image_digests(images: torch.Tensor) -> np.ndarray:
    """One 128-bit BLAKE2 digest per image (its shape included), to compare images across sets cheaply."""
    arr = images.contiguous().numpy()
    base = hashlib.blake2b(repr(tuple(arr.shape[1:])).encode(), digest_size=16)
    out = []
    for row in arr.reshape(len(arr), int(np.prod(arr.shape[1:]))):
        h = base.copy()
        h.update(row)
        out.append(h.digest())
    return np.array(out, dtype="S16")


def duplicate_groups(images: torch.Tensor) -> np.ndarray:
    """Exact-duplicate group id per image: rows with identical pixels share an id, unique rows get -1.

    Ids are numbered 0, 1, ... in order of the group's first row, so that the numbering depends only
    on the images and their order (two loads of one file agree).
    """
    n = len(images)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    digests = image_digests(images)
    _, first, inverse, counts = np.unique(digests, return_index=True, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    group_id = np.full(len(counts), -1, dtype=np.int64)
    repeated = np.flatnonzero(counts > 1)
    repeated = repeated[np.argsort(first[repeated], kind="stable")]
    group_id[repeated] = np.arange(len(repeated), dtype=np.int64)
    return group_id[inverse]


# ====================================================================== small helpers
def _existing(path: PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise LrferError(
            f"no such file or folder: {p}",
            f"check the path (relative paths are resolved from {Path.cwd()})",
        )
    return p


def _natural_key(text: str) -> list:
    """Sort key that puts ``im2`` before ``im10`` (the FER2013 folder layout numbers rows that way)."""
    return [int(t) if t.isdigit() else t.lower() for t in _NATURAL.split(text)]


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(
        (d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))),
        key=lambda d: d.name,
    )


def _image_files(folder: Path) -> list[Path]:
    return sorted((f for f in folder.iterdir() if f.is_file() and _is_image(f)), key=lambda f: _natural_key(f.name))


def _is_class_name(name: str) -> bool:
    return name.strip().lower() in ALIASES


def _size_hw(size: Size, what: str = "size") -> Optional[tuple[int, int]]:
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


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _source(fmt: str, path: Path, **options: Any) -> dict:
    """Provenance kept in ``meta``; two sets share one duplicate numbering iff their sources are equal."""
    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(options.items()) if v is not None}
    return {"format": fmt, "path": str(path.resolve()), "options": opts}


def _empty(path: Path, detail: str = "") -> LrferError:
    return LrferError(f"no labelled faces found in {path}{': ' + detail if detail else ''}", LAYOUTS_HINT)


def _finish(
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
        raise _empty(path)
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


# ====================================================================== image decoding
_BAD_IMAGE_HINT = "the file is truncated or not an image: re-extract the dataset or delete the file"


class _BadImage(Exception):
    def __init__(self, what: str, hint: str = _BAD_IMAGE_HINT):
        super().__init__(what)
        self.hint = hint


def _open_image(path: Path, mode: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns (to stderr) above its own limit; our lower cap below refuses those images anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise _BadImage(
                    f"{w}x{h} pixels is above the {MAX_PIXELS} pixel limit (decompression-bomb guard)",
                    "face datasets hold small images: shrink or remove the file",
                )
            return im.convert(mode)  # convert() forces the full decode, so truncation shows up here
    except _BadImage:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as err:
        raise _BadImage(str(err) or type(err).__name__) from err


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


def _decode_images(
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
    target = _size_hw(size)
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    total = len(files)
    for i, f in enumerate(files):
        try:
            im = _open_image(f, mode)
        except _BadImage as err:
            if not skip_bad:
                raise LrferError(
                    f"cannot read image {f}: {err}",
                    f"{err.hint}, or pass skip_bad=True to skip unreadable images (listed in meta['skipped_files'])",
                ) from None
            skipped.append(_rel(f, root))
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


def _gray_or_color(images: np.ndarray) -> torch.Tensor:
    """(N,H,W) or (N,H,W,C) or (N,C,H,W) uint8 array -> (N,C,H,W) tensor."""
    if images.ndim == 3:
        return torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    if images.ndim == 4:
        if images.shape[1] in (1, 3):
            return torch.from_numpy(np.ascontiguousarray(images))
        if images.shape[3] in (1, 3):
            return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    raise ValueError(f"images of shape {images.shape} are not (N,H,W), (N,H,W,C) or (N,C,H,W) with C in 1, 3")


# ====================================================================== FER2013 csv
def _csv_lines(path: Path):
    """Yield (line number, fields) per non-blank line.

    FER2013 files hold no quoted fields, so a plain split is twice as fast as the csv module on the
    ~290 MB file; any line with a quote falls back to the csv module.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if '"' in line:
                yield number, next(csv.reader([line]))
            else:
                yield number, line.split(",")


def _header_index(path: Path, header: list[str], required: Sequence[str], optional: Sequence[str] = ()) -> dict:
    found = {h.strip().lower(): i for i, h in enumerate(header)}
    missing = [c for c in required if c.lower() not in found]
    if missing:
        raise LrferError(
            f"{path}: missing column(s) {', '.join(missing)}; the header has {', '.join(h.strip() for h in header) or 'nothing'}",
            f"expected the columns {', '.join(list(required) + list(optional))}"
            + (f" ({', '.join(optional)} optional)" if optional else ""),
        )
    return {c: found.get(c.lower()) for c in list(required) + list(optional)}


def _parse_pixel_chunk(fields: list[str], lines: list[int], expected: int, path: Path) -> np.ndarray:
    """Space-separated 0..255 strings -> (rows, expected) uint8, parsed in numpy byte arithmetic.

    Splitting 80 M tokens in Python would need gigabytes of str objects; this reads the digits as
    bytes and combines them per token, so 36k FER2013 rows parse in about a second.
    """
    # two leading spaces: the digit look-behinds below (stops - 1, stops - 2) never wrap around
    data = ("  " + " ".join(fields) + " ").encode("ascii", errors="replace")
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = 2 + np.cumsum(np.fromiter((len(s) + 1 for s in fields), dtype=np.int64, count=len(fields)))
    d = buf - np.uint8(48)  # wraps around for non-digits, so "is a digit" is one comparison
    digit = d < 10
    if not np.all(digit | (buf == 32)):
        bad = int(np.flatnonzero(~digit & (buf != 32))[0])
        row = int(np.searchsorted(ends, bad, side="right"))
        raise LrferError(
            f"{path} line {lines[row]}: the pixels field holds '{data[bad : bad + 1].decode('ascii', 'replace')}', "
            "not only space-separated numbers",
            "each pixels field must be 2304 (48x48) space-separated integers 0-255",
        )
    edges = np.diff(digit.view(np.int8))
    starts = np.flatnonzero(edges == 1) + 1
    stops = np.flatnonzero(edges == -1)
    counts = np.diff(np.searchsorted(starts, ends), prepend=0)
    wrong = np.flatnonzero(counts != expected)
    if len(wrong):
        r = int(wrong[0])
        raise LrferError(
            f"{path} line {lines[r]}: the pixels field has {counts[r]} values, expected {expected} (48x48)",
            "the file is truncated or edited: re-download fer2013.csv, or remove that row",
        )
    dd = np.where(digit, d, np.uint8(0))
    values = dd[stops].astype(np.uint16)
    values += 10 * dd[stops - 1].astype(np.uint16)
    values += np.where(digit[stops - 1], 100 * dd[stops - 2].astype(np.uint16), np.uint16(0))
    over = np.flatnonzero((stops - starts > 2) | (values > 255))
    if len(over):
        t = int(over[0])
        r = int(np.searchsorted(ends, starts[t], side="right"))
        raise LrferError(
            f"{path} line {lines[r]}: pixel value '{data[starts[t] : stops[t] + 1].decode()}' is above 255",
            "pixels must be integers 0-255",
        )
    return values.astype(np.uint8).reshape(len(fields), expected)


def _read_fer2013_csv(path: Path, progress: Optional[Progress] = None, chunk: int = 512) -> dict:
    """The csv as arrays: images (N,48,48), labels, usage (or None), line numbers."""
    rows = _csv_lines(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise LrferError(f"{path} is empty", "expected the Kaggle fer2013.csv (columns emotion,pixels,Usage)") from None
    col = _header_index(path, header, ("emotion", "pixels"), ("Usage",))
    ie, ip, iu = col["emotion"], col["pixels"], col["Usage"]
    width = len(header)
    labels: list[str] = []
    usage: list[str] = []
    lines: list[int] = []
    blocks: list[np.ndarray] = []
    pending: list[str] = []
    pending_lines: list[int] = []
    for number, fields in rows:
        if len(fields) != width:
            raise LrferError(
                f"{path} line {number}: {len(fields)} fields, the header has {width}",
                "each row must be emotion,pixels,Usage; the file may be truncated or damaged",
            )
        labels.append(fields[ie])
        if iu is not None:
            usage.append(fields[iu].strip())
        lines.append(number)
        pending.append(fields[ip])
        pending_lines.append(number)
        if len(pending) == chunk:
            blocks.append(_parse_pixel_chunk(pending, pending_lines, FER2013_PIXELS, path))
            report(progress, f"read {path.name}", len(lines))
            pending, pending_lines = [], []
    if pending:
        blocks.append(_parse_pixel_chunk(pending, pending_lines, FER2013_PIXELS, path))
    if not lines:
        raise _empty(path, "the csv has a header but no rows")
    report(progress, f"read {path.name}", len(lines), len(lines))
    y = np.empty(len(labels), dtype=np.int64)
    for k, (text, number) in enumerate(zip(labels, lines)):
        try:
            y[k] = int(text)
        except ValueError:
            raise LrferError(
                f"{path} line {number}: emotion '{text}' is not an integer", "emotion must be 0-6"
            ) from None
    out_of_range = np.flatnonzero((y < 0) | (y > 6))
    if len(out_of_range):
        k = int(out_of_range[0])
        raise LrferError(
            f"{path} line {lines[k]}: emotion {y[k]} is out of range",
            "FER2013 labels are 0-6 (angry, disgust, fear, happy, sad, surprise, neutral)",
        )
    return {
        "images": np.concatenate(blocks).reshape(-1, 48, 48),
        "labels": y,
        "usage": np.asarray(usage, dtype=str) if iu is not None else None,
        "lines": np.asarray(lines, dtype=np.int64),
    }


def fer2013_csv(path: PathLike, *, progress: Optional[Progress] = None) -> FaceSet:
    """Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``; 48x48 grayscale).

    ``split`` is the ``Usage`` value (Training / PublicTest / PrivateTest). A file without ``Usage``
    is accepted with every row in split ``"all"`` (not ``"Training"``: nothing says those rows are
    training rows, and a wrong split name would leak silently into evaluation). ``emotion`` is
    required: the label-less Kaggle ``test.csv`` cannot be used for training or evaluation.
    ``ids`` are ``"fer2013.csv:row K"`` with K the 0-based data row, the same numbering as the
    ``row_index`` of the shared npz and as the FERPlus row join.
    """
    p = _existing(path)
    data = _read_fer2013_csv(p, progress)
    n = len(data["labels"])
    images = torch.from_numpy(data["images"]).unsqueeze(1)
    return _finish(
        path=p,
        name="fer2013",
        source=_source("fer2013_csv", p),
        images=images,
        labels=data["labels"],
        classes=FER2013_CLASSES,
        split=data["usage"] if data["usage"] is not None else np.full(n, "all"),
        ids=np.char.add("fer2013.csv:row ", np.arange(n).astype(str)),
    )


# ====================================================================== FERPlus
def ferplus_labels(
    votes: np.ndarray, mode: str = "majority", ties: str = "drop", min_votes: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """FERPlus label modes from the 10 vote columns (file order, :data:`FERPLUS_COLUMNS`).

    Returns ``(keep, labels, soft, excluded)``: a row mask, canonical label indices, votes of the 8
    emotions normalised to sum 1 in canonical order (float32), and the number of rows dropped per
    reason. Rules (Barsoum et al. 2016; the reference code's ``np.argmax`` tie order):

    - always dropped: rows without any vote (``no_votes``), and rows where ``unknown`` or ``NF``
      has strictly more votes than the best emotion (``unknown_or_nf``; this includes every row with
      no emotion vote). A tie goes to the emotion, as ``argmax`` over the columns does, because the
      emotion columns come first;
    - ``majority``: keep rows whose top emotion has more than half of all 10 columns' votes;
    - ``plurality``: the top emotion; a row whose top count is shared (with another emotion, or with
      unknown/NF) is dropped with ``ties="drop"``, or goes to the first column with ``ties="first"``;
    - ``probability``: every remaining row; the hard label is the first top emotion, the soft label
      carries the votes.

    ``min_votes=2`` zeroes counts of a single tagger before anything else, the outlier removal of
    the FERPlus reference code; the default 1 keeps every vote.
    """
    if mode not in FERPLUS_MODES:
        raise LrferError(f"unknown FERPlus label mode '{mode}'", closest(mode, FERPLUS_MODES))
    if ties not in ("drop", "first"):
        raise LrferError(f"unknown ties rule '{ties}'", "use ties='drop' (drop tied rows) or ties='first'")
    v = np.asarray(votes, dtype=np.int64).copy()
    if v.ndim != 2 or v.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(f"FERPlus votes must be (N, 10), got {v.shape}")
    if min_votes > 1:
        v[v < min_votes] = 0
    emotions, other = v[:, :8], v[:, 8:]
    best = emotions.max(1)
    first = emotions.argmax(1)
    no_votes = v.sum(1) == 0
    not_face = other.max(1) > best  # includes rows whose only votes are unknown / NF
    no_emotion = no_votes | not_face
    tie = (v == best[:, None]).sum(1) > 1
    if mode == "majority":
        rule, rule_name = 2 * best > v.sum(1), "no_majority"
    elif mode == "plurality" and ties == "drop":
        rule, rule_name = ~tie, "tie"
    else:
        rule, rule_name = np.ones(len(v), dtype=bool), None
    keep = ~no_emotion & rule
    excluded = {"no_votes": int(no_votes.sum()), "unknown_or_nf": int(not_face.sum())}
    if rule_name:
        excluded[rule_name] = int((~no_emotion & ~rule).sum())
    total = emotions.sum(1, keepdims=True)
    soft = np.divide(emotions, total, out=np.zeros(emotions.shape, dtype=np.float64), where=total > 0)
    soft = soft[:, _CANON_TO_FERPLUS].astype(np.float32)
    return keep, _FERPLUS_TO_CANON[first].astype(np.int64), soft, excluded


def votes_as_soft_labels(votes: np.ndarray, classes: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """FERPlus votes as class distributions over ``classes`` (e.g. FER2013's 7), ``(N, len(classes))``.

    Votes for classes outside ``classes`` (FER2013 has no contempt) and for unknown / NF are left
    out before normalising; a row with no vote left (no votes, or only unknown / NF / an absent
    class) keeps its own label, one-hot, so the distribution never says less than the hard label.
    """
    v = np.asarray(votes, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != len(FERPLUS_COLUMNS):
        raise ValueError(f"FERPlus votes must be (N, 10), got {v.shape}")
    canon = v[:, :8][:, _CANON_TO_FERPLUS]  # canonical order
    picked = canon[:, [CANONICAL.index(c) for c in classes]].astype(np.float32)
    total = picked.sum(1, keepdims=True)
    soft = np.eye(len(classes), dtype=np.float32)[labels]
    has_votes = total[:, 0] > 0
    soft[has_votes] = picked[has_votes] / total[has_votes]
    return soft


def _read_ferplus_votes(path: Path) -> dict:
    rows = _csv_lines(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise LrferError(f"{path} is empty", "expected FERPlus's fer2013new.csv") from None
    required = ("Usage", "Image name") + FERPLUS_COLUMNS
    col = _header_index(path, header, required)
    idx = [col[c] for c in FERPLUS_COLUMNS]
    votes: list[list[int]] = []
    usage: list[str] = []
    names: list[str] = []
    for number, fields in rows:
        if len(fields) != len(header):
            raise LrferError(f"{path} line {number}: {len(fields)} fields, the header has {len(header)}",
                             "the file may be truncated or damaged: re-download fer2013new.csv")
        try:
            row = [int(fields[i]) for i in idx]
        except ValueError:
            raise LrferError(f"{path} line {number}: a vote count is not an integer",
                             "vote columns must hold whole numbers of taggers") from None
        if min(row) < 0:
            raise LrferError(f"{path} line {number}: negative vote count", "vote counts must be >= 0")
        votes.append(row)
        usage.append(fields[col["Usage"]].strip())
        names.append(fields[col["Image name"]].strip())
    if not votes:
        raise _empty(path, "the csv has a header but no rows")
    return {
        "votes": np.asarray(votes, dtype=np.int64),
        "usage": np.asarray(usage, dtype=str),
        "names": np.asarray(names, dtype=str),
    }


def _fer2013_source(path: Path, progress: Optional[Progress]) -> dict:
    """FER2013 pixels for the FERPlus join: the csv, or the shared npz (which carries its row numbers)."""
    if path.suffix.lower() == ".npz":
        with _open_npz(path) as z:
            _require_keys(path, z, ("images", "labels", "usage", "row_index"))
            return {
                "images": z["images"],
                "labels": z["labels"].astype(np.int64),
                "usage": z["usage"].astype(str),
                "row_index": z["row_index"].astype(np.int64),
                "dup_group": z["dup_group_id"].astype(np.int64) if "dup_group_id" in z.files else None,
            }
    data = _read_fer2013_csv(path, progress)
    data["row_index"] = np.arange(len(data["labels"]), dtype=np.int64)
    data["dup_group"] = None
    return data


def _find_fer2013_beside(path: Path) -> Path:
    folder = path.parent
    candidates = [folder / "fer2013.csv", folder / "fer2013.npz", folder / "fer2013" / "fer2013.csv",
                  folder.parent / "fer2013.csv", folder.parent / "fer2013" / "fer2013.csv"]
    for c in candidates:
        if c.is_file():
            return c
    raise LrferError(
        f"{path} holds FERPlus votes only, and no FER2013 pixels were found beside it "
        f"(looked for {', '.join(str(c) for c in candidates[:3])})",
        "pass fer2013=PATH to fer2013.csv or to the fer2013.npz archive",
    )


def _ferplus_faceset(
    *, path: Path, fmt: str, source_opts: dict, images: np.ndarray, votes: np.ndarray, split: np.ndarray,
    row_index: np.ndarray, dup_group: Optional[np.ndarray], mode: str, ties: str, min_votes: int,
) -> FaceSet:
    keep, labels, soft, excluded = ferplus_labels(votes, mode, ties, min_votes)
    tensor = torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    if dup_group is None:  # numbered over all rows, so every mode of one file shares the numbering
        dup_group = duplicate_groups(tensor)
    rows = np.flatnonzero(keep)
    t = torch.from_numpy(rows)
    return _finish(
        path=path,
        name="ferplus",
        source=_source(fmt, path, **source_opts, mode=mode, ties=ties, min_votes=min_votes),
        images=tensor[t],
        labels=labels[rows],
        classes=CANONICAL,
        split=split[rows],
        ids=np.char.add("fer2013.csv:row ", row_index[rows].astype(str)),
        dup_group=dup_group[rows],
        soft_labels=torch.from_numpy(soft[rows]),
        meta={"ferplus": {"mode": mode, "ties": ties, "min_votes": min_votes, "excluded": excluded}},
    )


def ferplus(
    path: PathLike,
    *,
    fer2013: Optional[PathLike] = None,
    mode: str = "majority",
    ties: str = "drop",
    min_votes: int = 1,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """FERPlus: ``fer2013new.csv`` votes joined to FER2013 pixels by row order, 8 canonical classes.

    Row k of ``fer2013new.csv`` is row k of ``fer2013.csv``: the ``Image name`` column is not a row
    index (it skips unnamed rows and drifts by up to 85), so it is ignored. The pixels come from
    ``fer2013`` (the csv or the shared npz) or from a ``fer2013.csv``/``fer2013.npz`` found beside the
    vote file. The ``Usage`` columns of both files must agree row by row, which catches files from
    different releases. Label modes: see :func:`ferplus_labels`. ``soft_labels`` always hold the
    normalised emotion votes; split names are FER2013's.
    """
    p = _existing(path)
    src = _existing(fer2013) if fer2013 is not None else _find_fer2013_beside(p)
    votes = _read_ferplus_votes(p)
    data = _fer2013_source(src, progress)
    row_index = data["row_index"]
    m = len(votes["votes"])
    if src.suffix.lower() != ".npz" and m != len(row_index):
        raise LrferError(
            f"{p} has {m} rows but {src} has {len(row_index)}; FERPlus votes are joined by row order",
            "use the complete files of one release (both have 35887 rows)",
        )
    if len(row_index) and int(row_index.max()) >= m:
        raise LrferError(f"{src} refers to row {int(row_index.max())} but {p} has only {m} rows",
                         "use the complete fer2013new.csv (35887 rows)")
    split = votes["usage"][row_index]
    if data["usage"] is not None:
        differ = np.flatnonzero(data["usage"] != split)
        if len(differ):
            k = int(differ[0])
            raise LrferError(
                f"{p} line {int(row_index[k]) + 2} says Usage '{split[k]}' but row {int(row_index[k])} of {src} "
                f"says '{data['usage'][k]}' ({len(differ)} rows disagree)",
                "the vote file and the FER2013 file do not match row by row: use files of the same release",
            )
    return _ferplus_faceset(
        path=p, fmt="ferplus", source_opts={"fer2013": str(src.resolve())}, images=data["images"],
        votes=votes["votes"][row_index], split=split, row_index=row_index, dup_group=data["dup_group"],
        mode=mode, ties=ties, min_votes=min_votes,
    )


# ====================================================================== npz
class _open_npz:
    """``np.load`` without pickles, with format errors turned into LrferError."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        try:
            self.z = np.load(self.path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise LrferError(f"cannot read {self.path} as a numpy .npz archive: {err}",
                             "check that the file is complete (re-copy it)") from None
        if not hasattr(self.z, "files"):
            raise LrferError(f"{self.path} holds a single array, not an .npz archive",
                             "save with np.savez(path, images=..., labels=..., class_names=...)")
        return self.z

    def __exit__(self, *exc):
        self.z.close()
        return False


def _require_keys(path: Path, z, keys: Sequence[str]) -> None:
    missing = [k for k in keys if k not in z.files]
    if missing:
        raise LrferError(
            f"{path} has no array(s) {', '.join(missing)} (it has {', '.join(z.files) or 'none'})",
            "an npz dataset needs images, labels and class_names (optionally split or usage, groups, ids)",
        )


def npz(
    path: PathLike,
    *,
    labels: Optional[str] = None,
    mode: str = "majority",
    ties: str = "drop",
    min_votes: int = 1,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """The ``.npz`` archives of ``shared/data`` and any npz with ``images``, ``labels``, ``class_names``.

    Recognised by their arrays: ``row_index``+``usage`` is the FER2013 archive (split from ``usage``,
    ``dup_group`` from ``dup_group_id``, ids ``fer2013.csv:row K``); ``labels="ferplus"`` switches it
    to its FERPlus votes (8 classes, ``mode``/``ties``/``min_votes`` as in :func:`ferplus_labels`).
    ``subject`` is the CK+48 archive (groups = subject, ids = file name, split ``"all"``). A generic
    archive may add ``split`` or ``usage``, ``groups``, ``ids``, ``dup_group`` and ``soft_labels``;
    the FER2013 archive's ``soft_labels`` are its FERPlus votes over its own 7 classes
    (:func:`votes_as_soft_labels`), for training with ``soft_label_weight``. ``labels`` defaults
    to the archive's own labels (``"fer2013"`` is accepted as a synonym).
    """
    del progress  # an npz loads in one read; nothing to report
    p = _existing(path)
    with _open_npz(p) as z:
        keys = set(z.files)
        if labels not in (None, "fer2013", "native", "ferplus"):
            raise LrferError(f"unknown labels='{labels}' for an npz archive",
                             "use labels='ferplus' for FERPlus votes, or leave it out for the archive's labels")
        if "ferplus_columns" in keys:
            columns = tuple(str(c) for c in z["ferplus_columns"])
            if columns != FERPLUS_COLUMNS:
                raise LrferError(f"{p}: ferplus_columns are {', '.join(columns)}",
                                 f"expected {', '.join(FERPLUS_COLUMNS)} (fer2013new.csv order)")
        if labels == "ferplus":
            _require_keys(p, z, ("images", "usage", "row_index", "ferplus_votes", "ferplus_columns"))
            return _ferplus_faceset(
                path=p, fmt="npz", source_opts={"labels": "ferplus"}, images=z["images"], votes=z["ferplus_votes"],
                split=z["usage"].astype(str), row_index=z["row_index"].astype(np.int64),
                dup_group=z["dup_group_id"].astype(np.int64) if "dup_group_id" in keys else None,
                mode=mode, ties=ties, min_votes=min_votes,
            )
        _require_keys(p, z, ("images", "labels", "class_names"))
        images_np = z["images"]
        if images_np.dtype != np.uint8:
            raise LrferError(f"{p}: images are {images_np.dtype}, not uint8",
                             "store pixels as uint8 0-255 (np.clip(x, 0, 255).astype(np.uint8))")
        try:
            images = _gray_or_color(images_np)
        except ValueError as err:
            raise LrferError(f"{p}: {err}", "store images as (N,H,W) grayscale or (N,H,W,3) colour") from None
        y = z["labels"].astype(np.int64)
        native = [str(c) for c in z["class_names"]]
        try:
            classes = tuple(canonical_name(c) for c in native)
        except LrferError as err:
            raise LrferError(f"{p}: class_names: {err.what}", err.hint) from None
        if len(set(classes)) != len(classes):
            raise LrferError(f"{p}: class_names {', '.join(native)} name one class twice",
                             "give each class once")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            bad = int(np.flatnonzero((y < 0) | (y >= len(classes)))[0])
            raise LrferError(f"{p}: labels[{bad}] = {y[bad]} is not an index into the {len(classes)} class_names",
                             "labels must be 0..len(class_names)-1")
        n = len(y)
        split = next((z[k].astype(str) for k in ("split", "usage") if k in keys), np.full(n, "all"))
        groups = next((z[k].astype(str) for k in ("groups", "subject") if k in keys), None)
        dup = next((z[k].astype(np.int64) for k in ("dup_group", "dup_group_id") if k in keys), None)
        soft = torch.from_numpy(z["soft_labels"].astype(np.float32)) if "soft_labels" in keys else None
        if soft is None and "ferplus_votes" in keys:
            soft = torch.from_numpy(votes_as_soft_labels(z["ferplus_votes"], classes, y))
        if "row_index" in keys:
            ids = np.char.add("fer2013.csv:row ", z["row_index"].astype(np.int64).astype(str))
            name = "fer2013"
        else:
            ids = next((z[k].astype(str) for k in ("ids", "filename") if k in keys), None)
            name = "ckplus" if "subject" in keys else p.stem
        for key, value in (("split", split), ("groups", groups), ("ids", ids), ("dup_group", dup), ("soft_labels", soft)):
            if value is not None and len(value) != n:
                raise LrferError(f"{p}: {key} has {len(value)} rows, labels have {n}", "all arrays need one row per image")
        if len(images) != n:
            raise LrferError(f"{p}: images has {len(images)} rows, labels have {n}", "all arrays need one row per image")
        return _finish(
            path=p, name=name, source=_source("npz", p, labels=labels), images=images, labels=y, classes=classes,
            split=split, groups=groups, ids=ids, dup_group=dup, soft_labels=soft,
        )


# ====================================================================== class folders
def _class_layout(root: Path) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """(split name, class folder name, folder) for ``ROOT/<class>/*`` or ``ROOT/<split>/<class>/*``.

    Also returns split folders that were ignored because they hold no class folders (e.g. SFEW's
    unlabelled ``Test``).
    """
    if not root.is_dir():
        raise LrferError(f"{root} is not a folder", LAYOUTS_HINT)
    dirs = _visible_dirs(root)
    if not dirs:
        raise _empty(root, "no sub-folders")
    classy = [d for d in dirs if _is_class_name(d.name)]
    if classy:
        others = [d.name for d in dirs if not _is_class_name(d.name)]
        if others:
            raise LrferError(
                f"{root}: folder(s) {', '.join(others)} are not expression classes (beside {', '.join(d.name for d in classy)})",
                "class folders must be named after expressions (" + ", ".join(CANONICAL) + " or a dataset "
                "spelling such as 'happiness'); move other folders out of the dataset folder",
            )
        return [("all", d.name, d) for d in dirs], []
    entries: list[tuple[str, str, Path]] = []
    ignored: list[str] = []
    for s in dirs:
        sub = _visible_dirs(s)
        classes = [c for c in sub if _is_class_name(c.name)]
        if not classes:
            ignored.append(s.name)
            continue
        others = [c.name for c in sub if not _is_class_name(c.name)]
        if others:
            raise LrferError(
                f"{s}: folder(s) {', '.join(others)} are not expression classes",
                "class folders must be named after expressions (" + ", ".join(CANONICAL) + ")",
            )
        entries += [(s.name, c.name, c) for c in classes]
    if not entries:
        raise LrferError(f"{root}: no class folders found (sub-folders: {', '.join(d.name for d in dirs)})", LAYOUTS_HINT)
    return entries, ignored


def _folder_classes(entries: Sequence[tuple[str, str, Path]]) -> tuple[tuple[str, ...], dict[str, int]]:
    """Canonical classes in sorted-folder-name order (ImageFolder's numbering), aliases merged."""
    classes: list[str] = []
    for folder in sorted({e[1] for e in entries}):
        c = canonical_name(folder)
        if c not in classes:
            classes.append(c)
    return tuple(classes), {folder: classes.index(canonical_name(folder)) for folder in {e[1] for e in entries}}


def _read_class_folders(
    root: Path, *, name: str, fmt: str, color: bool, size: Size, skip_bad: bool,
    progress: Optional[Progress], subject_from_name: bool = False,
) -> FaceSet:
    entries, ignored = _class_layout(root)
    classes, index = _folder_classes(entries)
    files: list[Path] = []
    labels: list[int] = []
    split: list[str] = []
    for split_name, folder, path in entries:
        imgs = _image_files(path)
        files += imgs
        labels += [index[folder]] * len(imgs)
        split += [split_name] * len(imgs)
    groups = None
    if subject_from_name:
        groups = []
        for f in files:
            m = _CK_NAME.match(f.name)
            if not m:
                raise LrferError(f"{f}: the file name is not S###_###_########.png, so its subject is unknown",
                                 "CK+48 file names start with the subject id (S005_001_00000011.png)")
            groups.append(m.group(1).upper())
    if not files:
        raise _empty(root, "the class folders hold no image files")
    images, kept, skipped = _decode_images(
        files, root=root, color=color, size=size, skip_bad=skip_bad, progress=progress, task=f"decode {name}"
    )
    meta: dict = {}
    if skipped:
        meta["skipped_files"] = skipped
    if ignored:
        meta["ignored_folders"] = ignored
    return _finish(
        path=root, name=name, source=_source(fmt, root, color=color, size=size, skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=classes, split=np.asarray(split)[kept],
        groups=None if groups is None else np.asarray(groups)[kept],
        ids=np.asarray([_rel(f, root) for f in files])[kept], meta=meta,
    )


def class_folders(
    root: PathLike,
    *,
    color: bool = False,
    size: Size = None,
    skip_bad: bool = False,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """Any dataset laid out ``ROOT/<split>/<class>/*`` or ``ROOT/<class>/*`` (split ``"all"``).

    Covers the FER2013 image folders (``train``/``test``), SFEW (``Train``/``Val``) and the like.
    Split names are the folder names as they are (the FER2013 folder ``test`` mixes PublicTest and
    PrivateTest, so renaming it to either would be wrong); split folders without class folders (an
    unlabelled ``Test``) are ignored and listed in ``meta["ignored_folders"]``. Class folder names
    may use any dataset spelling (``Angry``, ``happiness``); files within a class are read in natural
    order (``im2`` before ``im10``). ``size=None`` keeps the most common image size.
    """
    p = _existing(root)
    return _read_class_folders(p, name=p.resolve().name or "faces", fmt="folders", color=color, size=size,
                               skip_bad=skip_bad, progress=progress)


def fer2013_folders(
    root: PathLike,
    *,
    color: bool = False,
    size: Size = None,
    skip_bad: bool = False,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """The FER2013 image-folder release (``ROOT/train/<class>/*``, ``ROOT/test/<class>/*``).

    Split names stay ``train``/``test``; see :func:`class_folders`.
    """
    p = _existing(root)
    return _read_class_folders(p, name="fer2013", fmt="fer2013_folders", color=color, size=size,
                               skip_bad=skip_bad, progress=progress)


# ====================================================================== CK+
def _read_ck_code(path: Path) -> int:
    text = path.read_text(errors="replace").strip()
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        raise LrferError(f"{path}: '{text[:40]}' is not an emotion code",
                         "CK+ emotion files hold one number 1-7 (e.g. 3.0000000e+00)") from None
    if value != int(value) or not 1 <= value <= 7:
        raise LrferError(f"{path}: emotion code {text} is not one of 1-7",
                         "CK+ codes: 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise")
    return int(value)


def ckplus(
    root: PathLike,
    *,
    peak_frames: int = 3,
    neutral_first: bool = False,
    size: Size = None,
    color: bool = False,
    skip_bad: bool = False,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """CK+, either the common CK+48 crop folders or the original release; groups = subject, split ``"all"``.

    CK+48 (``ROOT/<class>/S###_###_########.png``): classes in folder order (anger, contempt, ...,
    like the shared ``ckplus48.npz``), native 48x48 unless ``size`` is given.

    Original (``cohn-kanade-images/S005/001/*.png`` + ``Emotion/S005/001/*_emotion.txt``): each
    labelled sequence gives its last ``peak_frames`` frames, and with ``neutral_first=True`` its first
    frame as ``neutral``. Classes follow the CK+ code order (neutral only when asked for, so that no
    class is empty). Frames are 640x490 whole-scene images: they are centre-cropped to a square and
    resized to ``size`` (default 48). No face detection is done, so the face fills only part of that
    square; use the CK+48 crops for face-tight images.
    """
    p = _existing(root)
    if peak_frames < 1:
        raise LrferError(f"peak_frames={peak_frames} keeps no frame", "use peak_frames >= 1 (3 is the usual choice)")
    images_root, emotion_root = p / "cohn-kanade-images", p / "Emotion"
    if not (images_root.is_dir() and emotion_root.is_dir()):
        return _read_class_folders(p, name="ckplus", fmt="ckplus", color=color, size=size, skip_bad=skip_bad,
                                   progress=progress, subject_from_name=True)
    classes = CKPLUS_CODES if neutral_first else CKPLUS_CODES[1:]
    offset = 0 if neutral_first else 1
    files: list[Path] = []
    labels: list[int] = []
    groups: list[str] = []
    for label_file in sorted(emotion_root.glob("*/*/*_emotion.txt")):
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        code = _read_ck_code(label_file)
        seq_dir = images_root / subject / sequence
        frames = _image_files(seq_dir) if seq_dir.is_dir() else []
        if not frames:
            raise LrferError(f"{label_file} labels sequence {subject}/{sequence}, but {seq_dir} holds no frames",
                             "extract cohn-kanade-images completely (extended-cohn-kanade-images.zip)")
        peaks = frames[-peak_frames:]
        if neutral_first and len(frames) > len(peaks):
            files.append(frames[0])
            labels.append(0)
            groups.append(subject)
        files += peaks
        labels += [code - offset] * len(peaks)
        groups += [subject] * len(peaks)
    if not files:
        raise _empty(p, f"no *_emotion.txt files under {emotion_root}/<subject>/<sequence>/")
    images, kept, skipped = _decode_images(
        files, root=p, color=color, size=48 if size is None else size, skip_bad=skip_bad, progress=progress,
        task="decode ckplus",
    )
    return _finish(
        path=p, name="ckplus",
        source=_source("ckplus", p, peak_frames=peak_frames, neutral_first=neutral_first, size=size, color=color,
                       skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=classes, split=np.full(len(kept), "all"),
        groups=np.asarray(groups)[kept], ids=np.asarray([_rel(f, p) for f in files])[kept],
        meta={"skipped_files": skipped} if skipped else None,
    )


# ====================================================================== RAF-DB
def _rafdb_root(root: Path) -> Path:
    for candidate in (root, root / "basic"):
        if (candidate / "EmoLabel" / "list_patition_label.txt").is_file():
            return candidate
    raise LrferError(f"{root}: no EmoLabel/list_patition_label.txt",
                     "point at RAF-DB's 'basic' folder (EmoLabel/ and Image/aligned/)")


def rafdb(
    root: PathLike,
    *,
    color: bool = False,
    size: Size = None,
    skip_bad: bool = False,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/<name>_aligned.jpg``.

    Labels 1..7 are surprise, fear, disgust, happiness, sadness, anger, neutral (that order is kept);
    split ``train``/``test`` from the file-name prefix. Native size 100x100 unless ``size`` is given.
    """
    p = _rafdb_root(_existing(root))
    list_file = p / "EmoLabel" / "list_patition_label.txt"
    aligned = p / "Image" / "aligned"
    files: list[Path] = []
    labels: list[int] = []
    split: list[str] = []
    with open(list_file, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise LrferError(f"{list_file} line {number}: '{line.strip()}' is not '<image name> <label>'",
                                 "each line must be like 'train_00001.jpg 5'")
            label = int(parts[1])
            if not 1 <= label <= 7:
                raise LrferError(f"{list_file} line {number}: label {label} is out of range",
                                 "RAF-DB basic labels are 1-7")
            stem = Path(parts[0]).stem
            prefix = stem.split("_")[0].lower()
            if prefix not in ("train", "test"):
                raise LrferError(f"{list_file} line {number}: '{parts[0]}' starts with neither train_ nor test_",
                                 "RAF-DB basic image names are train_NNNNN.jpg or test_NNNN.jpg")
            image = aligned / f"{stem}_aligned.jpg"
            if not image.is_file():
                raise LrferError(f"{list_file} line {number}: image {image} is missing",
                                 "unpack RAF-DB's aligned.zip into Image/aligned/")
            files.append(image)
            labels.append(label - 1)
            split.append(prefix)
    if not files:
        raise _empty(p, f"{list_file} lists no images")
    images, kept, skipped = _decode_images(files, root=p, color=color, size=size, skip_bad=skip_bad,
                                           progress=progress, task="decode rafdb")
    return _finish(
        path=p, name="rafdb", source=_source("rafdb", p, color=color, size=size, skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=RAFDB_CLASSES, split=np.asarray(split)[kept],
        ids=np.asarray([_rel(f, p) for f in files])[kept], meta={"skipped_files": skipped} if skipped else None,
    )


# ====================================================================== JAFFE
def _jaffe_files(root: Path) -> list[Path]:
    return sorted((f for f in root.rglob("*") if f.is_file() and _JAFFE_NAME.match(f.name)), key=lambda f: f.name)


def jaffe(
    root: PathLike,
    *,
    color: bool = False,
    size: Size = None,
    skip_bad: bool = False,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """JAFFE: files named ``KA.AN1.39.tiff`` (subject, expression code and take, image number).

    Groups = subject, split ``"all"``. JAFFE has no class numbering of its own, so classes are the
    codes present in canonical order. Other files (the README) are ignored.
    """
    p = _existing(root)
    files = _jaffe_files(p) if p.is_dir() else []
    labels_text: list[str] = []
    groups: list[str] = []
    for f in files:
        m = _JAFFE_NAME.match(f.name)
        code = m.group(2).upper()
        if code not in JAFFE_CODES:
            raise LrferError(f"{f}: unknown JAFFE expression code '{code}'",
                             "JAFFE codes are " + ", ".join(JAFFE_CODES))
        labels_text.append(JAFFE_CODES[code])
        groups.append(m.group(1).upper())
    if not files:
        raise _empty(p, "no files named like KA.AN1.39.tiff")
    classes = tuple(c for c in CANONICAL if c in set(labels_text))
    images, kept, skipped = _decode_images(files, root=p, color=color, size=size, skip_bad=skip_bad,
                                           progress=progress, task="decode jaffe")
    return _finish(
        path=p, name="jaffe", source=_source("jaffe", p, color=color, size=size, skip_bad=skip_bad),
        images=images, labels=np.asarray([classes.index(c) for c in labels_text])[kept], classes=classes,
        split=np.full(len(kept), "all"), groups=np.asarray(groups)[kept],
        ids=np.asarray([_rel(f, p) for f in files])[kept], meta={"skipped_files": skipped} if skipped else None,
    )


# ====================================================================== Aff-Wild2
def affwild2(
    root: PathLike,
    *,
    include_other: bool = False,
    size: Size = None,
    color: bool = False,
    stride: int = 1,
    max_per_video: Optional[int] = None,
    splits: Optional[Sequence[str]] = None,
    skip_bad: bool = False,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """Aff-Wild2 expression track: ``cropped_aligned/<video>/<frame>.jpg`` + ``EXPR_Set/<Split>_Set/<video>.txt``.

    Each annotation file starts with the header ``Neutral,Anger,...,Other``; line i+1 labels frame
    ``i`` (file ``{i:05d}.jpg``, 1-based). ``-1`` (not annotated) is skipped; frames listed but
    absent on disk are skipped and counted in ``meta["affwild2"]["missing_frames"]`` (the cropped
    release lacks frames where no face was found). Class 7 "Other" is dropped unless
    ``include_other=True``, which adds the non-canonical class ``"other"`` (last), so such a set can
    only be compared with others after ``with_classes`` drops it. Split = folder name without
    ``_Set`` (``Train``, ``Validation``); ``splits`` reads only those. groups = video.
    Aff-Wild2 has ~1M labelled frames: ``stride`` keeps every n-th usable frame of a video and
    ``max_per_video`` then keeps at most that many, evenly spaced, before any image is decoded.
    """
    p = _existing(root)
    frames_root, expr_root = p / "cropped_aligned", p / "EXPR_Set"
    if not (frames_root.is_dir() and expr_root.is_dir()):
        raise LrferError(f"{p}: Aff-Wild2 needs cropped_aligned/ and EXPR_Set/ folders", LAYOUTS_HINT)
    if stride < 1 or (max_per_video is not None and max_per_video < 1):
        raise LrferError(f"stride={stride}, max_per_video={max_per_video}", "both must be >= 1")
    split_dirs = [d for d in _visible_dirs(expr_root) if d.name.lower().endswith("_set")]
    if splits is not None:
        names = [d.name[:-4] for d in split_dirs]
        for s in splits:
            if s not in names:
                raise LrferError(f"split '{s}' is not in {expr_root}", closest(s, names) if names else LAYOUTS_HINT)
        split_dirs = [d for d in split_dirs if d.name[:-4] in splits]
    classes = AFFWILD2_CLASSES if include_other else AFFWILD2_CLASSES[:7]
    files: list[Path] = []
    labels: list[int] = []
    split: list[str] = []
    groups: list[str] = []
    ids: list[str] = []
    missing = unannotated = other = 0
    for split_dir in split_dirs:
        split_name = split_dir.name[:-4]
        for ann in sorted(split_dir.glob("*.txt")):
            video = ann.stem
            lines = ann.read_text(encoding="utf-8-sig").splitlines()
            header = tuple(h.strip().lower() for h in lines[0].split(",")) if lines else ()
            if header != AFFWILD2_HEADER:
                raise LrferError(f"{ann} line 1: header is '{lines[0] if lines else ''}'",
                                 "expected Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other")
            video_dir = frames_root / video
            present = set(os.listdir(video_dir)) if video_dir.is_dir() else set()
            usable: list[tuple[int, int]] = []
            for i, text in enumerate(lines[1:], start=1):
                text = text.strip()
                if not text:
                    continue
                try:
                    code = int(text)
                except ValueError:
                    raise LrferError(f"{ann} line {i + 1}: '{text}' is not a label",
                                     "labels are -1 (not annotated) or 0-7") from None
                if code == -1:
                    unannotated += 1
                    continue
                if not 0 <= code <= 7:
                    raise LrferError(f"{ann} line {i + 1}: label {code} is out of range",
                                     "labels are -1 (not annotated) or 0-7")
                if code == 7 and not include_other:
                    other += 1
                    continue
                if f"{i:05d}.jpg" not in present:
                    missing += 1
                    continue
                usable.append((i, code))
            usable = usable[::stride]
            if max_per_video is not None and len(usable) > max_per_video:
                pick = np.unique(np.linspace(0, len(usable) - 1, max_per_video).round().astype(int))
                usable = [usable[k] for k in pick]
            for i, code in usable:
                files.append(video_dir / f"{i:05d}.jpg")
                labels.append(code)
                split.append(split_name)
                groups.append(video)
                ids.append(f"{video}/{i:05d}.jpg")
    if not files:
        raise _empty(p, f"no annotated frames found on disk (missing frames: {missing})")
    images, kept, skipped = _decode_images(files, root=p, color=color, size=size, skip_bad=skip_bad,
                                           progress=progress, task="decode affwild2")
    meta: dict = {"affwild2": {"missing_frames": missing, "unannotated_frames": unannotated,
                               "other_dropped": other}}
    if skipped:
        meta["skipped_files"] = skipped
    return _finish(
        path=p, name="affwild2",
        source=_source("affwild2", p, include_other=include_other, size=size, color=color, stride=stride,
                       max_per_video=max_per_video, splits=splits, skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=classes, split=np.asarray(split)[kept],
        groups=np.asarray(groups)[kept], ids=np.asarray(ids)[kept], meta=meta,
    )


# ====================================================================== detection and dispatch
FORMATS: dict[str, Callable[..., FaceSet]] = {
    "npz": npz,
    "fer2013_csv": fer2013_csv,
    "ferplus": ferplus,
    "folders": class_folders,
    "fer2013_folders": fer2013_folders,
    "ckplus": ckplus,
    "rafdb": rafdb,
    "jaffe": jaffe,
    "affwild2": affwild2,
}


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        first = f.readline(1 << 16)
    return [h.strip().strip('"').lower() for h in first.split(",")]


def detect_format(path: PathLike) -> str:
    """The :data:`FORMATS` name of a dataset path, from its name, csv header or folder layout."""
    p = _existing(path)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".npz":
            return "npz"
        if suffix == ".csv":
            header = _csv_header(p)
            if "pixels" in header:
                return "fer2013_csv"
            if "nf" in header or "contempt" in header:
                return "ferplus"
            raise LrferError(f"{p}: csv header '{','.join(header)}' is neither FER2013 nor FERPlus", LAYOUTS_HINT)
        raise LrferError(f"{p}: cannot tell the dataset format of a '{suffix}' file", LAYOUTS_HINT)
    if (p / "EmoLabel" / "list_patition_label.txt").is_file() or (
        p / "basic" / "EmoLabel" / "list_patition_label.txt"
    ).is_file():
        return "rafdb"
    if (p / "cropped_aligned").is_dir() and (p / "EXPR_Set").is_dir():
        return "affwild2"
    if (p / "cohn-kanade-images").is_dir() and (p / "Emotion").is_dir():
        return "ckplus"
    near = [f for f in p.iterdir() if f.is_file()]
    near += [f for d in _visible_dirs(p) for f in d.iterdir() if f.is_file()]
    if any(_JAFFE_NAME.match(f.name) for f in near):
        return "jaffe"
    dirs = _visible_dirs(p)
    if dirs and all(_is_class_name(d.name) for d in dirs):
        for d in dirs:
            sample = next((f for f in d.iterdir() if f.is_file() and _is_image(f)), None)
            if sample is not None:
                return "ckplus" if _CK_NAME.match(sample.name) else "folders"
        return "folders"
    if any(_is_class_name(c.name) for d in dirs for c in _visible_dirs(d)):
        return "folders"
    raise LrferError(f"{p}: unrecognised dataset layout", LAYOUTS_HINT)


def load_dataset(path: PathLike, format: Optional[str] = None, **options: Any) -> FaceSet:
    """Read any supported dataset into a FaceSet; ``format`` (a :data:`FORMATS` name) skips detection.

    ``options`` go to the reader (``color``, ``size``, ``mode``, ``progress``, ...); an option the
    reader does not take is an LrferError listing the ones it does, rather than a TypeError.
    """
    p = _existing(path)
    if format is None:
        format = detect_format(p)
    elif format not in FORMATS:
        raise LrferError(f"unknown dataset format '{format}'", closest(format, FORMATS))
    reader = FORMATS[format]
    accepted = [n for n, prm in inspect.signature(reader).parameters.items() if prm.kind is prm.KEYWORD_ONLY]
    unknown = [k for k in options if k not in accepted]
    if unknown:
        raise LrferError(
            f"option(s) {', '.join(unknown)} not accepted by the '{format}' reader",
            f"it takes: {', '.join(accepted) or 'no options'}",
        )
    if "progress" in options and options["progress"] is None:
        options.pop("progress")
    return reader(p, **options)
