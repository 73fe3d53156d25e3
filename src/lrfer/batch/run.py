"""One batch run: list, skip what is done, analyse the rest here or on Ray, write shards, sum up.

The analysis gives tables that each hold whole files (a chunk of photos, or videos); the
:class:`_Collector` here gathers them and writes a shard every ``shard_files`` files or
``shard_seconds`` seconds, so a killed run loses at most that much work and a rerun does only the
rest. What is collected when the run stops (Ctrl-C, an error) is written before it ends.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LrferError
from ..files import atomic_write_text
from ..infer.stream import batches
from ..progress import Progress, report
from .analyze import READ_STATUSES, BatchOptions, FileAnalyzer
from .sources import Source, list_sources
from .table import ShardStore, classes_of, to_table


@dataclass
class BatchSummary:
    """What a run did (``_summary.json`` in the output folder: the leading underscore keeps Parquet readers of the folder off it)."""

    out: str
    engine: str  # "in-process", or "ray <address>"
    workers: int
    files: int  # the photos and videos the sources name
    skipped: int  # already in the output folder
    analysed: int  # by this run
    read: int  # of those, the files that could be read (status ok or no face found)
    problems: int  # files or paths this run recorded with a status other than ok / no face found
    faces: int  # face rows this run wrote
    shards: int  # written by this run
    seconds: float

    @property
    def files_per_second(self) -> float:
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


#: How the files are analysed: given the files to do and the options, tables of whole files as they
#: are done. :class:`InProcess` here; :class:`lrfer.batch.on_ray.OnRay` on a Ray cluster.
Engine = Callable[[Sequence[Source], BatchOptions], Iterable[pa.Table]]


@dataclass(frozen=True)
class InProcess:
    """The files analysed in this process, ``files_per_task`` at a time (photos read and detected
    in a background thread while the last chunk is classified)."""

    files_per_task: int = 8
    name: str = "in-process"
    workers: int = 1

    def __call__(self, todo: Sequence[Source], options: BatchOptions) -> Iterator[pa.Table]:
        analyzer = FileAnalyzer(options)
        for chunk in batches(todo, self.files_per_task):
            yield to_table(analyzer.rows(chunk), analyzer.classes)


def run_batch(
    paths: Iterable[Union[str, os.PathLike]],
    out: Union[str, os.PathLike],
    options: Optional[BatchOptions] = None,
    *,
    engine: Optional[Engine] = None,
    shard_files: int = 256,
    shard_seconds: float = 60.0,
    progress: Optional[Progress] = None,
) -> BatchSummary:
    """Analyse the photos and videos ``paths`` name into Parquet shards in ``out``; skip the files
    ``out`` already holds. ``engine``: :class:`InProcess` (the default) or
    :class:`~lrfer.batch.on_ray.OnRay`. Progress events: task ``"batch"``, files done of the files
    to do, with faces and problems."""
    if shard_files < 1:
        raise LrferError(f"shard_files={shard_files}", "use 1 or more")
    options, engine = options or BatchOptions(), engine or InProcess()
    started = time.monotonic()
    store = ShardStore(out)
    sources, problems = list_sources(paths)
    done = store.done()
    todo = [s for s in sources if s.path not in done]
    problems = {p: why for p, why in problems.items() if p not in done}
    if not sources and not done:
        raise LrferError(f"nothing to analyse: {'; '.join(f'{p}: {w}' for p, (w, _) in problems.items())}", "give photos, videos or folders that hold them")
    store.prepare()
    collector = _Collector(store, problems, len(todo), shard_files, shard_seconds, progress)
    if todo:
        collector.take_all(engine(todo, options))
    summary = BatchSummary(
        out=str(out), engine=getattr(engine, "name", type(engine).__name__), workers=getattr(engine, "workers", 1), files=len(sources),
        skipped=len(sources) - len(todo), analysed=collector.files, read=collector.read, problems=collector.problems, faces=collector.faces,
        shards=store.shards_written, seconds=round(time.monotonic() - started, 3),
    )  # fmt: skip
    atomic_write_text(store.folder / "_summary.json", json.dumps(asdict(summary), indent=2) + "\n")
    return summary


class _Collector:
    """Gathers the analysis's tables into shards, keeping each file once, and counts."""

    def __init__(self, store: ShardStore, problems: dict[str, tuple[str, str]], total: int, shard_files: int, shard_seconds: float, progress: Optional[Progress]):
        self.store, self.total, self.progress = store, total, progress
        self.shard_files, self.shard_seconds = shard_files, shard_seconds
        self.problem_rows = [{"file": p, "status": what, "hint": hint} for p, (what, hint) in problems.items()]
        self.pending: list[pa.Table] = []
        self.pending_files = 0
        self.seen: set[str] = set()
        self.files = self.read = self.faces = self.problems = 0
        self.last_write = time.monotonic()

    def take_all(self, tables: Iterable[pa.Table]) -> None:
        """Collect every table; what is collected is written however the analysis ends."""
        try:
            for table in tables:
                self.take(table)
        finally:
            self.flush()

    def take(self, table: pa.Table) -> None:
        self.store.check(table.schema)
        if self.problem_rows:  # the paths that could not be listed go with the first shard (the classes are known now)
            self.pending.append(to_table(self.problem_rows, classes_of(table.schema)))
            self.seen |= {r["file"] for r in self.problem_rows}
            self.problems += len(self.problem_rows)
            self.problem_rows = []
        files = set(table["file"].to_pylist())
        again = files & self.seen  # a task Ray ran twice (rare: only what is repeated is looked up)
        if again:
            table = table.filter(pc.invert(pc.is_in(table["file"], pa.array(sorted(again), pa.string()))))
            files -= again
        self.seen |= files
        self.files += len(files)
        self.faces += pc.sum(pc.equal(table["status"], "ok")).as_py() or 0
        read = pc.is_in(table["status"], pa.array(READ_STATUSES))
        self.read += len(set(table.filter(read)["file"].to_pylist()))
        self.problems += len(set(table.filter(pc.invert(read))["file"].to_pylist()))
        self.pending.append(table)
        self.pending_files += len(files)
        report(self.progress, "batch", self.files, self.total, faces=self.faces, problems=self.problems)
        if self.pending_files >= self.shard_files or time.monotonic() - self.last_write >= self.shard_seconds:
            self.flush()

    def flush(self) -> None:
        self.store.write(self.pending)
        self.pending, self.pending_files, self.last_write = [], 0, time.monotonic()
