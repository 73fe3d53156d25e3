"""Class folders: ``ROOT/<class>/*`` or ``ROOT/<split>/<class>/*``, the layout of the FER2013 image
release, SFEW, CK+48 and most hand-made sets; labels numbered like torchvision's ``ImageFolder``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ...errors import LrferError
from ...progress import Progress
from ..faceset import FaceSet
from ..labels import CANONICAL, canonical_name
from ._common import LAYOUTS_HINT, PathLike, Size, decode_images, empty, existing, finish, image_files, is_class_name, rel, source, visible_dirs


def _class_layout(root: Path) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """(split name, class folder name, folder) for ``ROOT/<class>/*`` or ``ROOT/<split>/<class>/*``.

    Also returns split folders that were ignored because they hold no class folders (e.g. SFEW's
    unlabelled ``Test``).
    """
    if not root.is_dir():
        raise LrferError(f"{root} is not a folder", LAYOUTS_HINT)
    dirs = visible_dirs(root)
    if not dirs:
        raise empty(root, "no sub-folders")
    classy = [d for d in dirs if is_class_name(d.name)]
    if classy:
        others = [d.name for d in dirs if not is_class_name(d.name)]
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
        sub = visible_dirs(s)
        classes = [c for c in sub if is_class_name(c.name)]
        if not classes:
            ignored.append(s.name)
            continue
        others = [c.name for c in sub if not is_class_name(c.name)]
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


def read_class_folders(
    root: Path, *, name: str, fmt: str, color: bool, size: Size, skip_bad: bool,
    progress: Optional[Progress], group_of: Optional[Callable[[Path], str]] = None,
) -> FaceSet:
    """The FaceSet of a class-folder layout; ``group_of(file)`` names each image's group (CK+48: its subject)."""
    entries, ignored = _class_layout(root)
    classes, index = _folder_classes(entries)
    files: list[Path] = []
    labels: list[int] = []
    split: list[str] = []
    for split_name, folder, path in entries:
        imgs = image_files(path)
        files += imgs
        labels += [index[folder]] * len(imgs)
        split += [split_name] * len(imgs)
    groups = None if group_of is None else [group_of(f) for f in files]
    if not files:
        raise empty(root, "the class folders hold no image files")
    images, kept, skipped = decode_images(
        files, root=root, color=color, size=size, skip_bad=skip_bad, progress=progress, task=f"decode {name}"
    )
    meta: dict = {}
    if skipped:
        meta["skipped_files"] = skipped
    if ignored:
        meta["ignored_folders"] = ignored
    return finish(
        path=root, name=name, source=source(fmt, root, color=color, size=size, skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=classes, split=np.asarray(split)[kept],
        groups=None if groups is None else np.asarray(groups)[kept],
        ids=np.asarray([rel(f, root) for f in files])[kept], meta=meta,
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
    p = existing(root)
    return read_class_folders(p, name=p.resolve().name or "faces", fmt="folders", color=color, size=size,
                              skip_bad=skip_bad, progress=progress)
