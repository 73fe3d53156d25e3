"""What a batch reads: photos and videos, from files and folders, each with its kind."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from ..files import IMAGE_EXTENSIONS
from ..infer.io import expand_paths
from ..infer.video import VIDEO_EXTENSIONS

PHOTO, VIDEO = "photo", "video"


@dataclass(frozen=True)
class Source:
    """One file of the archive: its absolute path (the ``file`` column, and the key a rerun skips
    by; absolute, because Ray's workers run in folders of their own) and whether it is a photo or a video."""

    path: str
    kind: str


def kind_of(path: Union[str, os.PathLike]) -> str:
    """``video`` by a video file's suffix, else ``photo`` (a GIF is a photo: its first frame)."""
    suffix = Path(path).suffix.lower()
    return VIDEO if suffix in VIDEO_EXTENSIONS and suffix not in IMAGE_EXTENSIONS else PHOTO


def _is_media(f: Path) -> bool:
    """A photo or video by its name (hidden files are not), a regular file or a link that leads
    nowhere (reported, not dropped)."""
    if f.name.startswith(".") or f.suffix.lower() not in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
        return False
    return f.is_file() or (f.is_symlink() and not f.exists())


def list_sources(paths: Iterable[Union[str, os.PathLike]]) -> tuple[list[Source], dict[str, tuple[str, str]]]:
    """The photos and videos that ``paths`` name (folders searched recursively, sorted), each once,
    and the paths that could not be listed (absolute path -> (what is wrong, what to do))."""
    problems: dict[Path, str] = {}
    hints: dict[Path, str] = {}
    files = expand_paths(paths, problems, hints, wanted=_is_media, what="photos or videos")
    seen: dict[str, Source] = {}
    for f in files:
        path = os.path.abspath(f)
        seen.setdefault(path, Source(path, kind_of(f)))
    return list(seen.values()), {os.path.abspath(p): (what, hints.get(p, "check the path")) for p, what in problems.items()}
