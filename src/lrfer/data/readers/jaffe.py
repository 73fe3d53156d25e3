"""JAFFE: files named ``KA.AN1.39.tiff`` (subject, expression code and take, image number)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import LrferError
from ...progress import Progress
from ..faceset import FaceSet
from ..labels import CANONICAL
from ._common import PathLike, Size, decode_images, empty, existing, finish, rel, skipped_meta, source

JAFFE_CODES: dict[str, str] = {
    "AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprise",
}
#: A JAFFE file name: subject, expression code (+ take), image number.
JAFFE_NAME = re.compile(r"^([A-Za-z]{2})\.([A-Za-z]{2})\d*\.(\d+)\.(tiff?|png|jpe?g|bmp)$", re.IGNORECASE)


def _jaffe_files(root: Path) -> list[Path]:
    return sorted((f for f in root.rglob("*") if f.is_file() and JAFFE_NAME.match(f.name)), key=lambda f: f.name)


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
    p = existing(root)
    files = _jaffe_files(p) if p.is_dir() else []
    labels_text: list[str] = []
    groups: list[str] = []
    for f in files:
        m = JAFFE_NAME.match(f.name)
        code = m.group(2).upper()
        if code not in JAFFE_CODES:
            raise LrferError(f"{f}: unknown JAFFE expression code '{code}'",
                             "JAFFE codes are " + ", ".join(JAFFE_CODES))
        labels_text.append(JAFFE_CODES[code])
        groups.append(m.group(1).upper())
    if not files:
        raise empty(p, "no files named like KA.AN1.39.tiff")
    classes = tuple(c for c in CANONICAL if c in set(labels_text))
    images, kept, skipped = decode_images(files, root=p, color=color, size=size, skip_bad=skip_bad,
                                          progress=progress, task="decode jaffe")
    return finish(
        path=p, name="jaffe", source=source("jaffe", p, color=color, size=size, skip_bad=skip_bad),
        images=images, labels=np.asarray([classes.index(c) for c in labels_text])[kept], classes=classes,
        split=np.full(len(kept), "all"), groups=np.asarray(groups)[kept],
        ids=np.asarray([rel(f, p) for f in files])[kept], meta=skipped_meta(skipped),
    )
