"""What every trainer shares: the run folder, exact resume, per-epoch seeding and the epoch's files.

A run folder holds ``best.safetensors`` (the best epoch so far), ``last.safetensors`` (the latest
epoch, with the training state needed to resume), ``metrics.jsonl`` (one JSON row per epoch) and
``config.json``. The classifier (:mod:`lrfer.train.engine`), the SR trainers
(:mod:`lrfer.train.sr`, :mod:`lrfer.train.srgan`) and the fusion head (:mod:`lrfer.train.fusion`)
all keep it through :class:`Run`, so resuming means the same thing for each.

Exact resume without stored RNG states: epoch ``k`` re-seeds the global RNG and draws its order
from ``(seed, k)`` alone (:func:`seed_epoch`, :func:`epoch_order`), so a run resumed from the
checkpoint of epoch ``k`` replays epochs ``k+1...`` as the uninterrupted run would have.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import LrferError
from ..files import append_jsonl, atomic_write_text, read_jsonl
from ..models.checkpoint import Checkpoint, load_checkpoint, load_weights, save_checkpoint
from ..progress import Progress, report


def seed_epoch(seed: int, epoch: int, rank: int = 0) -> None:
    """Seed the global RNG (augmentation, dropout) of epoch ``epoch`` on process ``rank``."""
    torch.manual_seed(seed * 1_000_003 + epoch * 101 + rank)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the ``n`` training samples in epoch ``epoch``: the same on every rank (each takes its shard)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))


def resume_checkpoint(last_path: Path, model: nn.Module, resume: bool) -> tuple[Optional[Checkpoint], list[dict]]:
    """What a resumed run starts from: its ``last.safetensors`` (weights loaded into ``model``;
    the training state in ``.state``) and the rows of ``metrics.jsonl`` beside it for the epochs
    the file holds. ``(None, [])`` when not resuming, or when there is nothing to resume from."""
    if not (resume and last_path.exists()):
        return None, []
    ckpt = load_checkpoint(last_path)
    load_weights(model, ckpt, "model")  # first: a checkpoint of another model is the error to report
    state = ckpt.state
    if state is None:
        raise LrferError(f"{last_path} holds weights but no training state to resume from (written by an older lrfer)", "train into a new --out, or start from its weights (init_weights / --init-from)")
    return ckpt, _history(ckpt, state, last_path.parent / "metrics.jsonl")


def _history(ckpt: Checkpoint, state: dict, log: Path) -> list[dict]:
    """The rows of every epoch ``ckpt`` holds, each once. The checkpoint carries them itself
    (:meth:`Run.save_epoch`), so a kill between writing it and appending the epoch's row to the
    log loses nothing, and a log cut, doubled or deleted is rebuilt. A checkpoint from before
    that: the log's first rows (one per epoch, in order: the trainers' state counts epochs across
    phases too), the last completed from the checkpoint's own ``metrics`` row if the log lacks it."""
    rows = state.get("history")
    if isinstance(rows, list) and len(rows) == state["epoch"] and all(isinstance(r, dict) for r in rows):
        return rows
    rows = read_jsonl(log)[: state["epoch"]]
    own = ckpt.info.get("metrics")
    if len(rows) == state["epoch"] - 1 and isinstance(own, dict):
        rows.append(own)
    return rows


#: What an atomic write leaves when the process is killed before its rename: ``<name>.<8 chars>.tmp``
#: (``tempfile.mkstemp`` in :func:`lrfer.files.atomic_write`), with the target's suffix after it
#: for a file whose writer reads the type from the name.
_STALE_TEMP = re.compile(r".+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files that killed atomic writes left in ``folder`` (a killed
    checkpoint write leaves one of the checkpoint's full size); the removed paths."""
    stale = [f for f in folder.iterdir() if _STALE_TEMP.fullmatch(f.name) and f.is_file()] if folder.is_dir() else []
    for f in stale:
        f.unlink(missing_ok=True)
    return stale


@dataclass
class Run:
    """A run folder and the epochs logged so far. ``writes`` is False on the DDP ranks that only
    train: they keep the history but leave the files to rank 0."""

    out: Path
    history: list[dict] = field(default_factory=list)
    writes: bool = True

    @property
    def best_path(self) -> Path:
        return self.out / "best.safetensors"

    @property
    def last_path(self) -> Path:
        return self.out / "last.safetensors"

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    @classmethod
    def open(cls, out: Path, model: nn.Module, config: dict, *, resume: bool, writes: bool = True,
             progress: Optional[Progress] = None) -> tuple["Run", Optional[Checkpoint]]:  # fmt: skip
        """Start (or resume) the run in ``out``: the checkpoint resumed from (None for a fresh
        start; its weights are already in ``model``), and ``config.json`` and ``metrics.jsonl``
        rewritten to the epochs that checkpoint holds (a killed run may have logged one more)."""
        run = cls(Path(out), writes=writes)
        ckpt, run.history = resume_checkpoint(run.last_path, model, resume)
        if ckpt is None and resume:
            report(progress, "resume", 0, message=f"no checkpoint in {out}; starting from scratch")
        if writes:
            run.out.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(run.out)
            atomic_write_text(run.out / "config.json", json.dumps(config, indent=2))
            # the log as the checkpoint has it: a row the kill cut, lost or doubled is put right
            atomic_write_text(run.metrics_path, "".join(json.dumps(r) + "\n" for r in run.history))
        return run, ckpt

    def save_epoch(self, row: dict, model: nn.Module, spec: dict, *, state: dict, info: dict,
                   best: Optional[nn.Module] = None, ema: Optional[nn.Module] = None) -> None:  # fmt: skip
        """Log the epoch's ``row``; write ``best`` (the epoch's best model, when it improved) and
        the resumable ``last.safetensors`` atomically, then the row: a row in ``metrics.jsonl``
        always has its checkpoint on disk. ``last.safetensors`` holds every row so far too, so
        that resume rebuilds the log from it (:func:`_history`) wherever a kill struck."""
        self.history.append(row)
        if not self.writes:
            return
        if best is not None:
            save_checkpoint(self.best_path, best, spec, info=info)
        save_checkpoint(self.last_path, model, spec, ema=ema, state={**state, "history": self.history}, info=info)
        append_jsonl(self.metrics_path, row)
