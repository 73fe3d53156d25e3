"""A batch's output folder: Parquet shards of rows, each written whole, and what they hold.

The columns are ``lrfer predict``'s and ``lrfer video``'s together (``file, status, hint, kind, width,
height, frame, time, track_id, face``, the box, ``score, size, label, confidence, uncertain``) with one
``p_<class>`` column per class, as in CSV output; a photo's row has no frame, time or track, a
status row no face. A shard (``part-<run>-<n>.parquet``) holds every row of the files in it and is
moved into place only once written (:func:`lrfer.files.atomic_write`), so the folder never holds
part of a file's rows, and the files named in it are the ones done.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional, TypeVar, Union

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import LrferError
from ..files import atomic_write

_INT, _FLOAT, _TEXT = pa.int64(), pa.float64(), pa.string()
_FIELDS = [
    ("file", _TEXT), ("status", _TEXT), ("hint", _TEXT), ("kind", _TEXT), ("width", _INT), ("height", _INT), ("frame", _INT), ("time", _FLOAT),
    ("track_id", _INT), ("face", _INT), ("x1", _FLOAT), ("y1", _FLOAT), ("x2", _FLOAT), ("y2", _FLOAT), ("score", _FLOAT),
    ("size", _INT), ("label", _TEXT), ("confidence", _FLOAT), ("uncertain", pa.bool_()),
]  # fmt: skip
SHARD_GLOB = "part-*.parquet"
T = TypeVar("T")


def schema(classes: Sequence[str]) -> pa.Schema:
    """The output's columns for a model with these classes."""
    return pa.schema(_FIELDS + [(f"p_{c}", _FLOAT) for c in classes])


def to_table(rows: Sequence[dict], classes: Sequence[str]) -> pa.Table:
    """Rows (as :class:`~lrfer.batch.analyze.FileAnalyzer` gives them) as a table of :func:`schema`."""
    columns = {name: [r.get(name) for r in rows] for name, _ in _FIELDS}
    for c in classes:
        columns[f"p_{c}"] = [r["probabilities"][c] if "probabilities" in r else None for r in rows]
    return pa.Table.from_pydict(columns, schema=schema(classes))


class ShardStore:
    """The output folder: the files already done, and new shards written whole.

    Every shard of a folder has the same columns: one written for a model with other classes is
    a one-line error, before anything is added."""

    def __init__(self, folder: Union[str, os.PathLike]):
        self.folder = Path(folder)
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        self.shards_written = 0
        shards = self.shards()
        self.schema: Optional[pa.Schema] = self._schema_of(shards[0]) if shards else None

    def prepare(self) -> None:
        """Make the folder, and remove the temporary files of shards a killed run was writing."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob("part-*.tmp"):
            stale.unlink(missing_ok=True)

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob(SHARD_GLOB))

    def check(self, columns: pa.Schema) -> None:
        """Rows of ``columns`` can go in this folder."""
        if self.schema is None:
            self.schema = columns
        elif columns.names != self.schema.names:
            raise LrferError(
                f"{self.folder} holds results of a model with the classes {classes_of(self.schema)}, not this model's",
                "write this run to another --out folder, or move the old results away",
            )

    def done(self) -> set[str]:
        """The files some shard already holds."""
        out: set[str] = set()
        for shard in self.shards():
            out.update(self._read(shard, ["file"]).column("file").to_pylist())
        return out

    def write(self, tables: Sequence[pa.Table]) -> Optional[Path]:
        """One new shard holding these tables' rows (whole files), or None when there are none."""
        tables = [t for t in tables if t.num_rows]
        if not tables:
            return None
        for t in tables:
            self.check(t.schema)
        self.shards_written += 1
        path = self.folder / f"part-{self.run_id}-{self.shards_written:05d}.parquet"
        table = pa.concat_tables(tables)
        return atomic_write(path, lambda tmp: pq.write_table(table, tmp))

    def read(self) -> pa.Table:
        """Every row of every shard, sorted by file, then frame and face."""
        tables = [self._read(s) for s in self.shards()]
        if not tables:
            raise LrferError(f"no results in {self.folder}", "give the --out folder of an lrfer batch run")
        for t in tables:
            self.check(t.schema)
        return pa.concat_tables(tables).sort_by([("file", "ascending"), ("frame", "ascending"), ("face", "ascending")])

    def _schema_of(self, shard: Path) -> pa.Schema:
        return _readable(shard, pq.read_schema)

    def _read(self, shard: Path, columns: Optional[list[str]] = None) -> pa.Table:
        return _readable(shard, lambda p: pq.read_table(p, columns=columns))


def _readable(shard: Path, read: Callable[[Path], T]) -> T:
    """``read(shard)``; a damaged shard (changed by hand: ours are written whole) is a one-line error."""
    try:
        return read(shard)
    except (OSError, pa.ArrowException) as err:
        raise LrferError(f"cannot read {shard} ({err})", "delete the damaged shard: its files are then analysed again") from None


def classes_of(columns: pa.Schema) -> list[str]:
    """The model's classes, from the ``p_<class>`` columns."""
    return [n[2:] for n in columns.names if n.startswith("p_")]


def read_results(folder: Union[str, os.PathLike]) -> pa.Table:
    """Every row a batch wrote to ``folder``, sorted by file, frame and face (``pq.read_table`` on
    the folder reads the same rows, unsorted)."""
    return ShardStore(folder).read()
