"""FER2013: Kaggle's ``fer2013.csv`` (48x48 grayscale pixels as text) and the image-folder release."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ...errors import LrferError
from ...progress import Progress, report
from ..faceset import FaceSet
from ..labels import CANONICAL
from ._common import PathLike, Size, csv_lines, empty, existing, finish, header_index, source
from .folders import read_class_folders

#: FER2013's own label order (0..6), which is also the start of the canonical order.
FER2013_CLASSES: tuple[str, ...] = CANONICAL[:7]
FER2013_PIXELS = 48 * 48


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


def read_fer2013_csv(path: Path, progress: Optional[Progress] = None, chunk: int = 512) -> dict:
    """The csv as arrays: images (N,48,48), labels, usage (or None), line numbers."""
    rows = csv_lines(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise LrferError(f"{path} is empty", "expected the Kaggle fer2013.csv (columns emotion,pixels,Usage)") from None
    col = header_index(path, header, ("emotion", "pixels"), ("Usage",))
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
        raise empty(path, "the csv has a header but no rows")
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
    p = existing(path)
    data = read_fer2013_csv(p, progress)
    n = len(data["labels"])
    images = torch.from_numpy(data["images"]).unsqueeze(1)
    return finish(
        path=p,
        name="fer2013",
        source=source("fer2013_csv", p),
        images=images,
        labels=data["labels"],
        classes=FER2013_CLASSES,
        split=data["usage"] if data["usage"] is not None else np.full(n, "all"),
        ids=np.char.add("fer2013.csv:row ", np.arange(n).astype(str)),
    )


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
    p = existing(root)
    return read_class_folders(p, name="fer2013", fmt="fer2013_folders", color=color, size=size,
                              skip_bad=skip_bad, progress=progress)
