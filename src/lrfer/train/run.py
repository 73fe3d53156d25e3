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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import LrferError
from ..files import append_jsonl, read_jsonl, write_jsonl
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
    # one row per epoch, in order (the trainers' state counts epochs across phases too)
    return ckpt, read_jsonl(last_path.parent / "metrics.jsonl")[: state["epoch"]]


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
            (run.out / "config.json").write_text(json.dumps(config, indent=2))
            write_jsonl(run.metrics_path, run.history)
        return run, ckpt

    def save_epoch(self, row: dict, model: nn.Module, spec: dict, *, state: dict, info: dict,
                   best: Optional[nn.Module] = None, ema: Optional[nn.Module] = None) -> None:  # fmt: skip
        """Log the epoch's ``row``; write ``best`` (the epoch's best model, when it improved) and
        the resumable ``last.safetensors`` atomically, then the row: a row in ``metrics.jsonl``
        always has its checkpoint on disk."""
        self.history.append(row)
        if not self.writes:
            return
        if best is not None:
            save_checkpoint(self.best_path, best, spec, info=info)
        save_checkpoint(self.last_path, model, spec, ema=ema, state=state, info=info)
        append_jsonl(self.metrics_path, row)
