"""Whether a GPU could be here, answered without importing torch (1-2 s and 600 MB).

``--device auto`` means the GPU when there is one. Asking torch costs its import, which the runtime
exists to avoid; on Linux the answer "certainly none" is cheap: no NVIDIA device node. Only where a
GPU may be present does :func:`lrfer.device.is_gpu` (torch) decide."""

from __future__ import annotations

import os
import sys

#: Device nodes of the NVIDIA driver, and WSL's GPU bridge.
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg")


def surely_no_gpu() -> bool:
    """True when this machine certainly has no CUDA GPU (Linux without the driver's device nodes);
    False when it may have one, or on other systems, where only torch can tell."""
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_NODES)
