"""The batch on a Ray cluster: Ray Data hands the files to actors that each hold one model.

The list of files becomes a Ray dataset; ``map_batches`` runs :class:`_Actor` (a
:class:`~lrfer.batch.analyze.FileAnalyzer`: the onnxruntime runtime, or torch on a GPU when asked)
on ``files_per_task`` files at a time, and the tables stream back to the driver as they are done,
where :func:`lrfer.batch.run.run_batch` writes them. Ray Data restarts an actor whose node died and runs its
unfinished tasks again, so a lost node costs time, not files; the driver keeps each file once.

Every node must see the files at the same absolute paths (a shared or identically mounted folder)
and have lrfer installed; only the driver writes the output folder.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import ray

from ..errors import LrferError
from .analyze import BatchOptions, FileAnalyzer
from .sources import Source
from .table import to_table

#: Our own progress bar and log lines replace Ray's.
_QUIET = {"log_to_driver": False, "logging_level": logging.WARNING}


class _Actor:
    """One model per actor, loaded once; each call analyses a batch of files."""

    def __init__(self, options: BatchOptions):
        self.analyzer = FileAnalyzer(options)

    def __call__(self, batch: pa.Table) -> pa.Table:
        sources = [Source(p, k) for p, k in zip(batch["path"].to_pylist(), batch["kind"].to_pylist())]
        return to_table(self.analyzer.rows(sources), self.analyzer.classes)


def connect(address: str) -> None:
    """Join the cluster at ``address`` (``auto``: the one ``ray start`` runs here, or RAY_ADDRESS),
    or start one in this process (``local``)."""
    try:
        if address == "local":
            ray.init(include_dashboard=False, **_QUIET)
        else:
            ray.init(address=address, **_QUIET)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = (str(err).splitlines() or [""])[0]
        raise LrferError(f"cannot reach the Ray cluster at {address}: {first}", "start it with `ray start --head`, or give --ray local to start one here") from None


@dataclass(frozen=True)
class OnRay:
    """The files analysed by ``workers`` actors on the Ray cluster at ``address`` (``local``: one
    started in this process; ``auto``: the one ``ray start`` runs here, or RAY_ADDRESS), each
    taking ``files_per_task`` files at a time on ``cpus_per_worker`` CPUs. An engine of
    :func:`lrfer.batch.run.run_batch`.

    An actor, like this process, decodes and detects in one thread while it classifies in another:
    with 2 CPUs each it uses them as ``lrfer batch`` does here (one classifier thread beside the
    detection thread); with 1 it shares its CPU between the two."""

    address: str = "local"
    workers: int = 1
    files_per_task: int = 8
    cpus_per_worker: int = 1

    def __post_init__(self):
        if min(self.workers, self.files_per_task, self.cpus_per_worker) < 1:
            raise LrferError(f"workers={self.workers}, files_per_task={self.files_per_task}, cpus_per_worker={self.cpus_per_worker}", "use 1 or more of each")

    @property
    def name(self) -> str:
        return f"ray {self.address}"

    def _check_fits(self) -> None:
        """A pool larger than the cluster would wait for CPUs that never come: one line instead."""
        have = ray.cluster_resources().get("CPU", 0)
        need = self.workers * self.cpus_per_worker
        if need > have:
            ray.shutdown()
            raise LrferError(
                f"{self.workers} workers x {self.cpus_per_worker} CPUs need {need} CPUs; the Ray cluster at {self.address} has {have:g}",
                "use fewer --workers or --cpus-per-worker, or add nodes",
            )

    def __call__(self, todo: Sequence[Source], options: BatchOptions) -> Iterator[pa.Table]:
        """The tables of ``todo``'s files, as the actors finish them."""
        gpu = (options.device or "").startswith("cuda")
        # each actor's classifier runs on the CPUs Ray gives it, less the detection thread's, not on every core of the node
        options = dataclasses.replace(options, threads=options.threads or max(1, self.cpus_per_worker - 1))
        connect(self.address)
        self._check_fits()
        # a pool larger than the tasks of a short list is harmless: Ray Data's warning about it is noise here
        warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = ctx.print_on_execution_start = False  # our bar and summary say what runs
            # Ray Data's default scheduling, SPREAD, puts the actors on as many nodes as it can, so a
            # lost node takes the fewest actors with it
            items = [{"path": s.path, "kind": s.kind} for s in todo]
            per_task = max(1, min(self.files_per_task, math.ceil(len(items) / self.workers)))  # every actor gets work
            ds = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / per_task))
            ds = ds.map_batches(
                _Actor, fn_constructor_kwargs={"options": options}, batch_size=per_task, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=self.workers), num_cpus=self.cpus_per_worker, num_gpus=1 if gpu else 0,
            )  # fmt: skip
            yield from ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0)
        finally:
            ray.shutdown()
