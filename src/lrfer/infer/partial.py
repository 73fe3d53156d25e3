"""An output file written in place of the user's only when it is complete.

:func:`lrfer.files.atomic_write` serves a file produced in one call; the writers here stream (rows
of a batch, frames of a video) into a file that is open for the whole run. :class:`PartialFile`
gives them a temporary file beside the target, moved over it by :meth:`~PartialFile.commit` (an
atomic ``os.replace``) or removed by :meth:`~PartialFile.discard`: a run that fails or is killed
leaves the user's earlier file as it was, never a bare header or half a video.

The temporary file is created with ``os.open(..., 0o666)``, so it has the permissions any new
file gets (0666 less the umask), and named ``<name>.<8 hex>.tmp`` (``<stem>.<8 hex>.tmp<suffix>``
with ``keep_suffix``, for FFmpeg, which picks a container from the suffix), the pattern
:func:`lrfer.files.atomic_write` uses, so one rule finds what a killed run left.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Union


class PartialFile:
    """A fresh temporary file beside ``path``; :meth:`commit` puts it in ``path``'s place."""

    def __init__(self, path: Union[str, os.PathLike], *, keep_suffix: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):  # a name taken (by another run) is retried with another
            token = secrets.token_hex(4)
            name = f"{self.path.stem}.{token}.tmp{self.path.suffix}" if keep_suffix else f"{self.path.name}.{token}.tmp"
            self.tmp = self.path.with_name(name)
            try:
                os.close(os.open(self.tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                break
            except FileExistsError:
                continue
        self.done = False

    def commit(self) -> Path:
        """Flush the finished file to disk and move it over ``path`` (atomically)."""
        if not self.done:
            self.done = True
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file; ``path`` keeps what it held before."""
        if not self.done:
            self.done = True
            self.tmp.unlink(missing_ok=True)
