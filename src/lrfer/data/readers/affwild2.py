"""Aff-Wild2 expression track: ``cropped_aligned/<video>/<frame>.jpg`` + ``EXPR_Set/<Split>_Set/<video>.txt``."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import LrferError, closest
from ...progress import Progress
from ..faceset import FaceSet
from ._common import LAYOUTS_HINT, PathLike, Size, decode_images, empty, existing, finish, source, visible_dirs

#: Aff-Wild2 EXPR header, and the classes it maps to (``other`` is not canonical, see :func:`affwild2`).
AFFWILD2_HEADER: tuple[str, ...] = ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise", "other")
AFFWILD2_CLASSES: tuple[str, ...] = ("neutral", "angry", "disgust", "fear", "happy", "sad", "surprise", "other")


def _split_dirs(expr_root: Path, splits: Optional[Sequence[str]]) -> list[Path]:
    """The ``<Split>_Set`` folders to read: all, or those ``splits`` names (an unknown name is an error)."""
    split_dirs = [d for d in visible_dirs(expr_root) if d.name.lower().endswith("_set")]
    if splits is not None:
        names = [d.name[:-4] for d in split_dirs]
        for s in splits:
            if s not in names:
                raise LrferError(f"split '{s}' is not in {expr_root}", closest(s, names) if names else LAYOUTS_HINT)
        split_dirs = [d for d in split_dirs if d.name[:-4] in splits]
    return split_dirs


def _usable_frames(ann: Path, video_dir: Path, include_other: bool, counts: Counter) -> list[tuple[int, int]]:
    """(frame number, label) of the annotated frames of one video that are on disk.

    Frames left out are counted in ``counts``: ``unannotated_frames`` (-1), ``other_dropped`` (7
    without ``include_other``), ``missing_frames`` (labelled but absent on disk).
    """
    try:
        lines = ann.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise LrferError(f"{ann} is not UTF-8 text", "an EXPR_Set file is a header line and one label per line: re-extract it") from None
    header = tuple(h.strip().lower() for h in lines[0].split(",")) if lines else ()
    if header != AFFWILD2_HEADER:
        raise LrferError(f"{ann} line 1: header is '{lines[0] if lines else ''}'",
                         "expected Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other")
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
            counts["unannotated_frames"] += 1
            continue
        if not 0 <= code <= 7:
            raise LrferError(f"{ann} line {i + 1}: label {code} is out of range",
                             "labels are -1 (not annotated) or 0-7")
        if code == 7 and not include_other:
            counts["other_dropped"] += 1
            continue
        if f"{i:05d}.jpg" not in present:
            counts["missing_frames"] += 1
            continue
        usable.append((i, code))
    return usable


def _thin(usable: list[tuple[int, int]], stride: int, max_per_video: Optional[int]) -> list[tuple[int, int]]:
    """Every ``stride``-th frame, then at most ``max_per_video`` of those, evenly spaced."""
    usable = usable[::stride]
    if max_per_video is not None and len(usable) > max_per_video:
        pick = np.unique(np.linspace(0, len(usable) - 1, max_per_video).round().astype(int))
        usable = [usable[k] for k in pick]
    return usable


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
    p = existing(root)
    frames_root, expr_root = p / "cropped_aligned", p / "EXPR_Set"
    if not (frames_root.is_dir() and expr_root.is_dir()):
        raise LrferError(f"{p}: Aff-Wild2 needs cropped_aligned/ and EXPR_Set/ folders", LAYOUTS_HINT)
    if stride < 1 or (max_per_video is not None and max_per_video < 1):
        raise LrferError(f"stride={stride}, max_per_video={max_per_video}", "both must be >= 1")
    split_dirs = _split_dirs(expr_root, splits)
    classes = AFFWILD2_CLASSES if include_other else AFFWILD2_CLASSES[:7]
    files: list[Path] = []
    labels: list[int] = []
    split: list[str] = []
    groups: list[str] = []
    counts: Counter = Counter()
    for split_dir in split_dirs:
        for ann in sorted(split_dir.glob("*.txt")):
            video, video_dir = ann.stem, frames_root / ann.stem
            for i, code in _thin(_usable_frames(ann, video_dir, include_other, counts), stride, max_per_video):
                files.append(video_dir / f"{i:05d}.jpg")
                labels.append(code)
                split.append(split_dir.name[:-4])
                groups.append(video)
    if not files:
        raise empty(p, f"no annotated frames found on disk (missing frames: {counts['missing_frames']})")
    images, kept, skipped = decode_images(files, root=p, color=color, size=size, skip_bad=skip_bad,
                                          progress=progress, task="decode affwild2")
    meta: dict = {"affwild2": {k: counts[k] for k in ("missing_frames", "unannotated_frames", "other_dropped")}}
    if skipped:
        meta["skipped_files"] = skipped
    return finish(
        path=p, name="affwild2",
        source=source("affwild2", p, include_other=include_other, size=size, color=color, stride=stride,
                      max_per_video=max_per_video, splits=splits, skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=classes, split=np.asarray(split)[kept],
        groups=np.asarray(groups)[kept], ids=np.asarray([f"{g}/{f.name}" for g, f in zip(groups, files)])[kept], meta=meta,
    )
