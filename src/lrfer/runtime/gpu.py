"""Whether a GPU is asked for and could be here, answered without importing torch (1-2 s and 600 MB).

``--device auto`` means the GPU when there is one. Asking torch costs its import, which the runtime
exists to avoid; on Linux the answer "certainly none" is cheap: no NVIDIA device node. Only where a
GPU may be present does :func:`lrfer.device.is_gpu` (torch) decide."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from ..errors import LrferError

#: What to do when something needs PyTorch and it is not installed.
TRAIN_HINT = "install PyTorch with `pip install 'lrfer[train]'`"
#: Device nodes of the NVIDIA driver, and WSL's GPU bridge.
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")


def surely_no_gpu() -> bool:
    """True when this machine certainly has no CUDA GPU (Linux without the driver's device nodes);
    False when it may have one, or on other systems, where only torch can tell."""
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_NODES)


def has_torch() -> bool:
    """Whether PyTorch is installed (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def wants_gpu(device: Any) -> bool:
    """Whether ``device`` names a GPU: the one rule of :func:`lrfer.device.is_gpu`, asked of torch
    only where the answer is not known without it. ``None``/``"cpu"`` is the CPU; ``"auto"`` is the
    CPU without PyTorch or where there is certainly no GPU; another name without PyTorch is a
    one-line error."""
    if device is None or str(device).startswith("cpu"):
        return False
    if str(device) == "auto" and (surely_no_gpu() or not has_torch()):
        return False
    if not has_torch():
        raise LrferError(f"device '{device}' needs PyTorch", TRAIN_HINT)
    from ..device import is_gpu  # torch: only where a GPU may be named and may be here

    return is_gpu(device)
