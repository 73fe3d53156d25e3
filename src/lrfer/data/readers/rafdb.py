"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and the aligned 100x100 faces."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import LrferError
from ...progress import Progress
from ..faceset import FaceSet
from ._common import PathLike, Size, decode_images, empty, existing, finish, rel, skipped_meta, source

#: RAF-DB basic labels 1..7.
RAFDB_CLASSES: tuple[str, ...] = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")


def _rafdb_root(root: Path) -> Path:
    for candidate in (root, root / "basic"):
        if (candidate / "EmoLabel" / "list_patition_label.txt").is_file():
            return candidate
    raise LrferError(f"{root}: no EmoLabel/list_patition_label.txt",
                     "point at RAF-DB's 'basic' folder (EmoLabel/ and Image/aligned/)")


def _read_list(list_file: Path, aligned: Path) -> tuple[list[Path], list[int], list[str]]:
    """(aligned image files, labels 0..6, splits) listed in ``list_patition_label.txt``, checked line by line."""
    files: list[Path] = []
    labels: list[int] = []
    split: list[str] = []
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise LrferError(f"{list_file} is not UTF-8 text", "each line must be like 'train_00001.jpg 5': re-extract RAF-DB's EmoLabel") from None
    for number, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        try:  # int() itself judges the label: isdigit() passes '²' and '--5', which int() refuses
            label = int(parts[1]) if len(parts) == 2 else None
        except ValueError:
            label = None
        if label is None:
            raise LrferError(f"{list_file} line {number}: '{line.strip()}' is not '<image name> <label>'",
                             "each line must be like 'train_00001.jpg 5'")
        if not 1 <= label <= 7:
            raise LrferError(f"{list_file} line {number}: label {label} is out of range",
                             "RAF-DB basic labels are 1-7")
        stem = Path(parts[0]).stem
        prefix = stem.split("_")[0].lower()
        if prefix not in ("train", "test"):
            raise LrferError(f"{list_file} line {number}: '{parts[0]}' starts with neither train_ nor test_",
                             "RAF-DB basic image names are train_NNNNN.jpg or test_NNNN.jpg")
        image = aligned / f"{stem}_aligned.jpg"
        try:
            present = image.is_file()
        except OSError:  # a name too long for the file system (ENAMETOOLONG): no such image either
            present = False
        if not present:
            raise LrferError(f"{list_file} line {number}: image {image} is missing",
                             "unpack RAF-DB's aligned.zip into Image/aligned/")
        files.append(image)
        labels.append(label - 1)
        split.append(prefix)
    return files, labels, split


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
    p = _rafdb_root(existing(root))
    list_file = p / "EmoLabel" / "list_patition_label.txt"
    files, labels, split = _read_list(list_file, p / "Image" / "aligned")
    if not files:
        raise empty(p, f"{list_file} lists no images")
    images, kept, skipped = decode_images(files, root=p, color=color, size=size, skip_bad=skip_bad,
                                          progress=progress, task="decode rafdb")
    return finish(
        path=p, name="rafdb", source=source("rafdb", p, color=color, size=size, skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=RAFDB_CLASSES, split=np.asarray(split)[kept],
        ids=np.asarray([rel(f, p) for f in files])[kept], meta=skipped_meta(skipped),
    )
