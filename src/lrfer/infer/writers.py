"""Streaming result files: one row per face (or frame) written as it comes, in constant memory.

:class:`RowWriter` writes CSV, JSON lines or a JSON array. In CSV, a row's ``probabilities``
mapping becomes one ``p_<class>`` column per class and other nested values (boxes, landmarks)
are JSON text in their cell; JSON keeps them nested. The CSV header is fixed by ``fields`` or by
the first row, so give ``fields`` when rows can differ in their keys. A JSON array is closed on
``close`` and parses as ``[]`` when nothing was written.

:class:`TrackSummary` accumulates, per track, when it was first and last seen, in how many frames,
and the share of those frames in each expression.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional, TextIO, Union

import numpy as np

from ..errors import LrferError, closest
from .partial import PartialFile

FORMATS = ("csv", "json", "jsonl")
_SUFFIX_FORMAT = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
#: Flush at most this often (seconds): results of a live camera run reach the disk steadily.
FLUSH_INTERVAL = 1.0


def format_for(path: Union[str, os.PathLike]) -> str:
    """The row format a file name asks for (.csv, .json, .jsonl/.ndjson)."""
    fmt = _SUFFIX_FORMAT.get(Path(path).suffix.lower())
    if fmt is None:
        raise LrferError(f"cannot tell the output format of {path}", "name the file .csv, .json or .jsonl")
    return fmt


def _plain(v: Any) -> Any:
    """JSON-safe: numpy scalars/arrays to Python, NaN/inf to None, tuples to lists."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "tolist") and not isinstance(v, (str, bytes)):  # torch tensors
        return _plain(v.tolist())
    return v


class RowWriter:
    """Write dict rows to ``path`` (a file name, ``"-"`` for stdout, or an open text file).

    With ``atomic``, the rows stream into a temporary file beside ``path`` that replaces it on
    :meth:`close` (:class:`~lrfer.infer.partial.PartialFile`): the user's earlier file stays
    until the run has finished. Without it the rows land in ``path`` as they come, for a file
    that is read while it grows (a camera's log).

    ``fmt`` is ``"csv"``, ``"json"`` or ``"jsonl"`` (``None``: from the file name). ``classes`` orders
    the ``p_<class>`` columns of CSV output. Keys that a later CSV row has beyond the header are
    left out of the file and listed in ``extra_fields``.
    """

    def __init__(self, path: Union[str, os.PathLike, TextIO], fmt: Optional[str] = None, classes: Sequence[str] = (), *,
                 fields: Optional[Sequence[str]] = None, atomic: bool = False):  # fmt: skip
        if fmt is None:
            if not isinstance(path, (str, os.PathLike)) or os.fspath(path) == "-":
                raise ValueError("give fmt when writing to a stream")
            fmt = format_for(path)
        if fmt not in FORMATS:
            raise LrferError(f"unknown output format '{fmt}'", closest(fmt, FORMATS))
        self.fmt = fmt
        self.classes = tuple(classes)
        self.rows_written = 0
        self.extra_fields: set[str] = set()
        self._fields: Optional[list[str]] = self._expand(list(fields)) if fields is not None else None
        self._csv: Optional[csv.DictWriter] = None
        self._owns = False
        self._partial: Optional[PartialFile] = None
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == "-":
            self._fh: TextIO = sys.stdout
            self.path: Optional[Path] = None
        elif isinstance(path, (str, os.PathLike)):
            self.path = Path(path)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if atomic:
                    self._partial = PartialFile(self.path)
                self._fh = open(self._partial.tmp if self._partial else self.path, "w", encoding="utf-8", newline="" if fmt == "csv" else None)
            except OSError as err:
                if self._partial is not None:
                    self._partial.discard()
                raise LrferError(f"cannot write {self.path} ({err.strerror or err})", "choose a file path in a writable folder") from None
            self._owns = True
        else:
            self._fh, self.path = path, None
        self._last_flush = time.monotonic()
        self._closed = False
        if fmt == "json":
            self._fh.write("[")

    def _expand(self, keys: list[str]) -> list[str]:
        out: list[str] = []
        for k in keys:
            out += [f"p_{c}" for c in self.classes] if k == "probabilities" else [k]
        return out

    def _flatten(self, row: dict) -> dict:
        flat: dict[str, Any] = {}
        for k, v in row.items():
            if k == "probabilities" and isinstance(v, dict):
                names = list(self.classes) + [c for c in v if c not in self.classes]
                for c in names:
                    p = v.get(c)
                    flat[f"p_{c}"] = "" if p is None else _plain(p)
                continue
            v = _plain(v)
            if isinstance(v, (dict, list)):
                v = json.dumps(v, separators=(",", ":"))
            flat[k] = "" if v is None else v
        return flat

    def write(self, row: dict) -> None:
        if self._closed:
            raise ValueError("write to a closed RowWriter")
        if self.fmt == "csv":
            flat = self._flatten(row)
            if self._csv is None:
                self._start_csv(list(flat))
            extra = flat.keys() - set(self._fields)
            if extra:
                self.extra_fields |= extra
                flat = {k: v for k, v in flat.items() if k not in extra}
            self._csv.writerow(flat)
        else:
            text = json.dumps(_plain(row), ensure_ascii=False, allow_nan=False)
            if self.fmt == "jsonl":
                self._fh.write(text + "\n")
            else:
                self._fh.write(("\n" if self.rows_written == 0 else ",\n") + text)
        self.rows_written += 1
        now = time.monotonic()
        if now - self._last_flush >= FLUSH_INTERVAL:
            self.flush()
            self._last_flush = now

    def _start_csv(self, first_keys: list[str]) -> None:
        if self._fields is None:
            self._fields = first_keys
        self._csv = csv.DictWriter(self._fh, fieldnames=self._fields, restval="", extrasaction="ignore")
        self._csv.writeheader()

    def flush(self) -> None:
        self._fh.flush()

    def close(self, keep: bool = True) -> None:
        """Finish the file. With ``atomic``, it then replaces ``path`` (``keep``), or is removed
        and ``path`` keeps what it held (``keep=False``: the run failed)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.fmt == "csv" and self._csv is None and self._fields is not None:
                self._start_csv(self._fields)  # no rows: still a header
            elif self.fmt == "json":
                self._fh.write("\n]\n" if self.rows_written else "]\n")
            self._fh.flush()
        finally:
            if self._owns:
                self._fh.close()
            if self._partial is not None:
                self._partial.commit() if keep else self._partial.discard()

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close(keep=exc[0] is None)


class TrackSummary:
    """Per-track totals, updated one observation (a face in a frame) at a time.

    ``rows()`` gives one dict per track, by id: ``track_id``, ``first_time``, ``last_time``,
    ``duration``, ``frames`` (observations), ``dominant`` (most frequent label) and
    ``share_<label>`` for every label seen in any track (``classes`` first, in their order). Shares
    are over the frames that had a label, so they sum to 1 for every track with one.
    """

    def __init__(self, classes: Sequence[str] = ()):
        self.labels: list[str] = list(classes)
        self._index = {c: i for i, c in enumerate(self.labels)}
        self._tracks: dict[int, dict] = {}

    def update(self, track_id: int, label: Optional[str], time: float) -> None:
        tid = int(track_id)
        t = float(time)
        tr = self._tracks.get(tid)
        if tr is None:
            tr = self._tracks[tid] = {"first": t, "last": t, "frames": 0, "counts": {}}
        tr["first"] = min(tr["first"], t)
        tr["last"] = max(tr["last"], t)
        tr["frames"] += 1
        if label is not None:
            label = str(label)
            if label not in self._index:
                self._index[label] = len(self.labels)
                self.labels.append(label)
            tr["counts"][label] = tr["counts"].get(label, 0) + 1

    def __len__(self) -> int:
        return len(self._tracks)

    def rows(self) -> list[dict]:
        out = []
        for tid in sorted(self._tracks):
            tr = self._tracks[tid]
            counts = tr["counts"]
            total = sum(counts.values())
            dominant = max(counts, key=lambda c: (counts[c], -self._index[c])) if total else None
            row = {
                "track_id": tid,
                "first_time": tr["first"],
                "last_time": tr["last"],
                "duration": tr["last"] - tr["first"],
                "frames": tr["frames"],
                "dominant": dominant,
            }
            for c in self.labels:
                row[f"share_{c}"] = counts.get(c, 0) / total if total else 0.0
            out.append(row)
        return out


def track_summary(rows: Iterable[dict], classes: Sequence[str] = ()) -> list[dict]:
    """:meth:`TrackSummary.rows` of per-face rows with ``track_id``, ``label`` and ``time`` keys.

    Rows without a track id (``None``) are skipped.
    """
    summary = TrackSummary(classes)
    for row in rows:
        if row.get("track_id") is not None:
            summary.update(row["track_id"], row.get("label"), row.get("time", 0.0))
    return summary.rows()
