"""Distributed training under ``torchrun``: the process group of a run, and the check that every
rank ends with the same weights."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist

from ..errors import LrferError
from ..files import atomic_write_text


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[tuple[int, int]]:
    """(rank, world size) under torchrun, (0, 1) otherwise. A group this opens it also destroys
    on the way out, as torch asks of every process (NCCL warns of leaked resources otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1
        return
    opened = not dist.is_initialized()
    if opened:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if opened:
            dist.destroy_process_group()


_EXCHANGES = itertools.count()  # one key space per exchange of this process: every rank makes the same exchanges, in order


def exchange(topic: str, value) -> list:
    """``value`` of every rank (a JSON value), in rank order.

    Through the process group's key-value store, not a collective: gloo frees a collective's
    tensors on its own worker thread a moment after ``wait`` returns, and where this is the last
    exchange before the process exits, that free could land in interpreter shutdown and abort the
    rank ("terminate called without an active exception")."""
    store = dist.distributed_c10d._get_default_store()
    key = f"lrfer/{topic}/{next(_EXCHANGES)}/rank"
    store.set(f"{key}{dist.get_rank()}", json.dumps(value))  # json keeps a float's every bit
    return [json.loads(store.get(f"{key}{r}")) for r in range(dist.get_world_size())]


def check_same_start(first_epoch: int, out: Path) -> None:
    """Every rank must start at the same epoch: ``--resume`` reads ``out/last.safetensors`` on
    each node, and only rank 0 writes it. A node without node 0's run folder would start afresh
    while the others resume, train a different number of epochs, corrupt rank 0's next checkpoint
    with its gradients and then hang in a collective the others never join."""
    firsts = exchange("first_epoch", first_epoch)
    if any(f != firsts[0] for f in firsts):
        ranks = ", ".join(f"rank {r} at epoch {f}" for r, f in enumerate(firsts))
        raise LrferError(f"the ranks do not resume from the same epoch ({ranks}): each node reads {out / 'last.safetensors'} itself",
                         "put --out on a filesystem every node shares, or copy node 0's run folder to the same path on every node before --resume")  # fmt: skip


def check_ranks_in_sync(params: list[torch.Tensor], out: Path, is_main: bool) -> None:
    """DDP must leave every rank with the same weights (the model's and the distillation
    projection's); compare fingerprints and record them."""
    v = torch.cat([p.detach().double().flatten() for p in params])
    pos = torch.arange(len(v), dtype=torch.float64, device=v.device)
    rows = exchange("ddp_check", torch.stack([v.sum(), (v * v).sum(), (v * pos).sum()]).tolist())
    if is_main:
        atomic_write_text(out / "ddp_check.json", json.dumps({"world_size": len(rows), "fingerprints": rows}, indent=2))
    if any(r != rows[0] for r in rows):
        raise RuntimeError(f"DDP ranks ended with different weights: {rows}")
