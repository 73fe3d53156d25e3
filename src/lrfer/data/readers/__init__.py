"""Readers: every native on-disk dataset format, turned into a :class:`FaceSet` at the edge.

One module and one function per format (``fer2013_csv`` and ``fer2013_folders``, ``ferplus``,
``class_folders``, ``ckplus``, ``rafdb``, ``jaffe``, ``affwild2``, ``npz``), what they share in
:mod:`._common`, and here :func:`load_dataset`, which recognises the format from the path
(:func:`detect_format`), and :data:`FORMATS` (name -> reader) for the command line.

Conventions shared by all readers:

- class names are canonical (:mod:`lrfer.data.labels`); the label order is the dataset's own order
  mapped to canonical names (folder layouts: sorted folder names, as ``torchvision``'s
  ``ImageFolder`` numbers them, so label indices match models trained that way);
- image files are decoded by :func:`lrfer.files.decode_image` (one decoder, one pixel limit);
  images are grayscale unless ``color=True``; when a ``size`` is given (or the images of a set
  differ in size), images are centre-cropped to the target aspect ratio and resized with Pillow's
  antialiased bicubic filter. No face detection or alignment is ever done;
- ``dup_group`` is always filled: from the dataset's own duplicate ids where it has them, else by
  hashing the decoded pixels (:func:`lrfer.data.splits.duplicate_groups`);
- ``meta["source"]`` records format, path and options, so that split helpers can tell whether two
  sets share one duplicate numbering;
- every problem with the user's files is an :class:`~lrfer.errors.LrferError` that names the file
  (and line) and says what to do; bad images are never skipped silently (``skip_bad=True`` skips
  them and lists them in ``meta["skipped_files"]``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from ...errors import LrferError, closest
from ...files import is_image_file
from ..faceset import FaceSet
from ._common import LAYOUTS_HINT, PathLike, Size, existing, is_class_name, visible_dirs
from .affwild2 import AFFWILD2_CLASSES, AFFWILD2_HEADER, affwild2
from .ckplus import CK_NAME, CKPLUS_CODES, ckplus
from .fer2013 import FER2013_CLASSES, FER2013_PIXELS, fer2013_csv, fer2013_folders
from .ferplus import FERPLUS_COLUMNS, FERPLUS_MODES, ferplus, ferplus_labels, votes_as_soft_labels
from .folders import class_folders
from .jaffe import JAFFE_CODES, JAFFE_NAME, jaffe
from .npz import npz
from .rafdb import RAFDB_CLASSES, rafdb

__all__ = [
    "AFFWILD2_CLASSES", "AFFWILD2_HEADER", "CKPLUS_CODES", "FER2013_CLASSES", "FER2013_PIXELS", "FERPLUS_COLUMNS",
    "FERPLUS_MODES", "FORMATS", "JAFFE_CODES", "LAYOUTS_HINT", "RAFDB_CLASSES", "PathLike", "Size",
    "affwild2", "ckplus", "class_folders", "detect_format", "fer2013_csv", "fer2013_folders", "ferplus",
    "ferplus_labels", "jaffe", "load_dataset", "npz", "rafdb", "votes_as_soft_labels",
]

#: The readers by format name (``load_dataset(format=...)``, ``lrfer data info --format``).
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
    p = existing(path)
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
    near += [f for d in visible_dirs(p) for f in d.iterdir() if f.is_file()]
    if any(JAFFE_NAME.match(f.name) for f in near):
        return "jaffe"
    dirs = visible_dirs(p)
    if dirs and all(is_class_name(d.name) for d in dirs):
        for d in dirs:
            sample = next((f for f in d.iterdir() if is_image_file(f)), None)
            if sample is not None:
                return "ckplus" if CK_NAME.match(sample.name) else "folders"
        return "folders"
    if any(is_class_name(c.name) for d in dirs for c in visible_dirs(d)):
        return "folders"
    raise LrferError(f"{p}: unrecognised dataset layout", LAYOUTS_HINT)


def load_dataset(path: PathLike, format: Optional[str] = None, **options: Any) -> FaceSet:
    """Read any supported dataset into a FaceSet; ``format`` (a :data:`FORMATS` name) skips detection.

    ``options`` go to the reader (``color``, ``size``, ``mode``, ``progress``, ...); an option the
    reader does not take is an LrferError listing the ones it does, rather than a TypeError.
    """
    p = existing(path)
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
