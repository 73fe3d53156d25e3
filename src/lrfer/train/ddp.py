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


_SYNC_CHECKS = itertools.count()  # one key space per fit() of this process: every rank runs the same fits


def check_ranks_in_sync(params: list[torch.Tensor], out: Path, is_main: bool) -> None:
    """DDP must leave every rank with the same weights (the model's and the distillation
    projection's); compare fingerprints and record them.

    The fingerprints travel through the process group's key-value store, not a collective: gloo
    frees a collective's tensors on its own worker thread a moment after ``wait`` returns, and as
    this is the last exchange before the process exits, that free could land in interpreter
    shutdown and abort the rank ("terminate called without an active exception")."""
    v = torch.cat([p.detach().double().flatten() for p in params])
    pos = torch.arange(len(v), dtype=torch.float64, device=v.device)
    mine = torch.stack([v.sum(), (v * v).sum(), (v * pos).sum()]).tolist()
    store = dist.distributed_c10d._get_default_store()
    key = f"lrfer/ddp_check/{next(_SYNC_CHECKS)}/rank"
    store.set(f"{key}{dist.get_rank()}", json.dumps(mine))  # json keeps a float's every bit
    rows = [json.loads(store.get(f"{key}{r}")) for r in range(dist.get_world_size())]
    if is_main:
        atomic_write_text(out / "ddp_check.json", json.dumps({"world_size": len(rows), "fingerprints": rows}, indent=2))
    if any(r != rows[0] for r in rows):
        raise RuntimeError(f"DDP ranks ended with different weights: {rows}")
