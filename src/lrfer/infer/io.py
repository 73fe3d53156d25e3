"""Image files in, rows of faces out: the ``lrfer predict`` path.

:func:`predict_files` runs a Recognizer over files and folders; images are decoded by
:func:`lrfer.infer.pipeline.read_image` (any mode, a pixel-count cap against decompression bombs). Every file gets at least one row with a ``status``: ``ok`` (one row per face), ``no face found``, or what went
wrong (unreadable, empty, too large), so one bad file never stops a run and is never dropped silently.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

import numpy as np
from PIL import Image

from ..errors import LrferError
from ..files import ImageReadError, atomic_write, is_image_file
from .annotate import draw_faces
from .detect import Detections
from .pipeline import read_image
from .stream import batches, in_background

__all__ = ["expand_paths", "predict_files", "read_image"]


def expand_paths(
    paths: Iterable[Union[str, os.PathLike]],
    problems: Optional[dict[Path, str]] = None,
    hints: Optional[dict[Path, str]] = None,
    *,
    wanted: Callable[[Path], bool] = lambda f: is_image_file(f, broken_links=True),
    what: str = "image files",
) -> list[Path]:
    """Files as given, folders expanded to the files in them that are ``wanted`` (by default image
    files; recursively, sorted).

    A path that is missing, unreadable, or a folder without such files raises a one-line LrferError;
    with ``problems`` it is recorded there (path -> what is wrong; ``hints``: path -> what to do)
    and the others go on."""
    out: list[Path] = []
    for p in map(Path, paths):
        try:
            out += _expand(p, wanted, what)
        except LrferError as err:
            if problems is None:
                raise
            problems[p] = err.what
            if hints is not None and err.hint:
                hints[p] = err.hint
    return out


def _expand(p: Path, wanted: Callable[[Path], bool], what: str) -> list[Path]:
    try:
        if p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise LrferError(f"cannot read folder {p} (permission denied)", "check its permissions")
            found = sorted(f for f in p.rglob("*") if wanted(f))
            if not found:
                raise LrferError(f"no {what} in folder {p}", f"give {what} or a folder that holds them")
            return found
        if p.exists():
            return [p]
    except OSError as err:  # a symlink loop, a path too long
        raise LrferError(f"cannot read {p} ({err.strerror or err})", "check the path") from None
    raise LrferError(f"no such file or folder: {p}", "check the path")


def predict_files(
    recognizer,
    paths: Iterable[Union[str, os.PathLike]],
    *,
    annotate_dir: Union[str, os.PathLike, None] = None,
    batch_images: int = 16,
) -> Iterator[dict]:
    """Rows for image files, one per face found (``recognizer`` is a :class:`~lrfer.infer.recognizer.Recognizer`).

    A file that cannot be read, or in which no face is found, still gets one row whose ``status``
    says so (and, for a file that cannot be read, whose ``hint`` says what to do); the other files go on. Images are read and classified ``batch_images`` at a time, so
    a folder of thousands of photos never sits in memory at once. With ``annotate_dir``, a copy
    of each image with boxes and labels drawn is saved there as ``<stem>.png`` (``<stem>_2.png``...
    when names repeat).
    """
    problems: dict[Path, str] = {}
    hints: dict[Path, str] = {}
    files = expand_paths(paths, problems, hints)
    names = _output_names(files)
    for p, what in problems.items():  # a bad path is reported, and the others are processed
        yield {"file": str(p), "status": what, "hint": hints.get(p, "check the path")}

    def read_and_detect(chunk: list[Path]) -> tuple[list[tuple[Path, np.ndarray]], dict[Path, tuple[str, str]], list[Detections]]:
        readable, bad = [], {}
        for f in chunk:
            try:
                readable.append((f, read_image(f)))
            except ImageReadError as err:
                bad[f] = (str(err), err.hint)
            except OSError as err:  # gone or unreadable since it was listed
                bad[f] = (f"cannot read ({err.strerror or err})", "check that the file is there and readable")
        return readable, bad, recognizer.detect([im for _, im in readable]) if readable else []

    # The next chunk is read and detected in a thread while this one is cropped and classified:
    # the two halves run on two cores, as a video's do (Recognizer.stream).
    with contextlib.closing(in_background(batches(files, batch_images), read_and_detect, name="lrfer-photos")) as work:
        for chunk, (readable, bad, dets) in work:
            yield from _chunk_rows(recognizer, chunk, readable, bad, dets, names, annotate_dir)


def _chunk_rows(recognizer, chunk, readable, bad, dets, names, annotate_dir) -> Iterator[dict]:
    """The rows of one chunk of files, in the order given: a status row for each file that could
    not be read or shows no face, one row per face otherwise."""
    faces_of = dict(zip((f for f, _ in readable), recognizer.recognize([im for _, im in readable], dets))) if readable else {}
    images = dict(readable)
    for f in chunk:
        if f in bad:
            yield {"file": str(f), "status": bad[f][0], "hint": bad[f][1]}
            continue
        faces = faces_of[f]
        h, w = images[f].shape[:2]
        if annotate_dir is not None:
            _save_annotated(images[f], faces, Path(annotate_dir) / names[f])
        if not faces:
            yield {"file": str(f), "status": "no face found", "width": w, "height": h}
        for i, face in enumerate(faces):
            yield {"file": str(f), "status": "ok", "width": w, "height": h, "face": i, **face.to_row()}


def _output_names(files: list[Path]) -> dict[Path, str]:
    """A distinct .png name per input: its own stem, with ``_2``, ``_3``... when stems repeat."""
    names: dict[Path, str] = {}
    taken: set[str] = set()
    for f in files:
        name, k = f"{f.stem}.png", 1
        while name in taken:
            k += 1
            name = f"{f.stem}_{k}.png"
        taken.add(name)
        names[f] = name
    return names


def _save_annotated(image: np.ndarray, faces: list, path: Path) -> None:
    # atomically: a run stopped mid-save leaves the earlier picture of that name, not half a PNG
    atomic_write(path, lambda tmp: Image.fromarray(draw_faces(image, faces)).save(tmp, format="PNG"))
