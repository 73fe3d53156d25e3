"""Where tensors run: the one "auto device" rule of the library.

``auto`` is this process's CUDA GPU when there is one (``LOCAL_RANK`` under torchrun), else the
CPU. A device that cannot be used here is an :class:`~lrfer.errors.LrferError`, not a torch
traceback later in the run.
"""

from __future__ import annotations

import os
from typing import Union

import torch

from .errors import LrferError

DeviceLike = Union[str, torch.device, None]


def resolve_device(name: DeviceLike = "auto") -> torch.device:
    """``None`` and ``"auto"``: the GPU when there is one, else the CPU; any other name as torch
    reads it, checked against what this machine has."""
    if isinstance(name, torch.device):
        name = str(name)
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise LrferError(f"unknown device '{name}'", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LrferError(f"device '{name}' was asked for but no CUDA GPU is available", "use --device cpu")
    if device.type == "cuda" and device.index is None:  # torch.cuda.set_device needs an index: "cuda" means this process's GPU
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def is_gpu(device: DeviceLike) -> bool:
    """Whether ``device`` resolves to a GPU (without raising for a GPU that is missing)."""
    if device in (None, "auto"):
        return torch.cuda.is_available()
    try:
        return torch.device(device).type == "cuda"
    except (RuntimeError, ValueError):
        raise LrferError(f"unknown device '{device}'", "use auto, cpu, cuda or cuda:N") from None
