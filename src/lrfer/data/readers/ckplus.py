"""CK+: the common CK+48 crop folders, or the original release (image sequences + emotion codes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import LrferError
from ...progress import Progress
from ..faceset import FaceSet
from ._common import PathLike, Size, decode_images, empty, existing, finish, image_files, rel, skipped_meta, source
from .folders import read_class_folders

#: CK+ emotion codes (``Emotion/*_emotion.txt``): 0 is only used for the optional neutral frame.
CKPLUS_CODES: tuple[str, ...] = ("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")

#: CK+ frame names, ``S005_001_00000011.png``: subject, sequence, frame.
CK_NAME = re.compile(r"^(S\d+)_(\d+)_(\d+)\.\w+$", re.IGNORECASE)


def _ck48_subject(f: Path) -> str:
    m = CK_NAME.match(f.name)
    if not m:
        raise LrferError(f"{f}: the file name is not S###_###_########.png, so its subject is unknown",
                         "CK+48 file names start with the subject id (S005_001_00000011.png)")
    return m.group(1).upper()


def _read_ck_code(path: Path) -> int:
    text = path.read_text(errors="replace").strip()
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        raise LrferError(f"{path}: '{text[:40]}' is not an emotion code",
                         "CK+ emotion files hold one number 1-7 (e.g. 3.0000000e+00)") from None
    if not 1 <= value <= 7 or value != int(value):  # range first: int() of nan or inf raises
        raise LrferError(f"{path}: emotion code {text} is not one of 1-7",
                         "CK+ codes: 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise")
    return int(value)


def _labelled_frames(
    images_root: Path, emotion_root: Path, peak_frames: int, neutral_first: bool
) -> tuple[list[Path], list[int], list[str]]:
    """(frame files, labels, subjects) of the original release: the last ``peak_frames`` frames of
    each labelled sequence, and its first frame as neutral (label 0) with ``neutral_first``."""
    offset = 0 if neutral_first else 1
    files: list[Path] = []
    labels: list[int] = []
    groups: list[str] = []
    for label_file in sorted(emotion_root.glob("*/*/*_emotion.txt")):
        subject, sequence = label_file.parent.parent.name, label_file.parent.name
        code = _read_ck_code(label_file)
        seq_dir = images_root / subject / sequence
        frames = image_files(seq_dir) if seq_dir.is_dir() else []
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
    return files, labels, groups


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
    p = existing(root)
    if peak_frames < 1:
        raise LrferError(f"peak_frames={peak_frames} keeps no frame", "use peak_frames >= 1 (3 is the usual choice)")
    images_root, emotion_root = p / "cohn-kanade-images", p / "Emotion"
    if not (images_root.is_dir() and emotion_root.is_dir()):
        return read_class_folders(p, name="ckplus", fmt="ckplus", color=color, size=size, skip_bad=skip_bad,
                                  progress=progress, group_of=_ck48_subject)
    classes = CKPLUS_CODES if neutral_first else CKPLUS_CODES[1:]
    files, labels, groups = _labelled_frames(images_root, emotion_root, peak_frames, neutral_first)
    if not files:
        raise empty(p, f"no *_emotion.txt files under {emotion_root}/<subject>/<sequence>/")
    images, kept, skipped = decode_images(
        files, root=p, color=color, size=48 if size is None else size, skip_bad=skip_bad, progress=progress,
        task="decode ckplus",
    )
    return finish(
        path=p, name="ckplus",
        source=source("ckplus", p, peak_frames=peak_frames, neutral_first=neutral_first, size=size, color=color,
                      skip_bad=skip_bad),
        images=images, labels=np.asarray(labels)[kept], classes=classes, split=np.full(len(kept), "all"),
        groups=np.asarray(groups)[kept], ids=np.asarray([rel(f, p) for f in files])[kept],
        meta=skipped_meta(skipped),
    )
