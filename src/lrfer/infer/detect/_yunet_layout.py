"""The shape of YuNet's output, shared by the torch network (:mod:`.yunet_net`, which the shipped
graph is exported from) and the ONNX detector (:mod:`.yunet`, which decodes it): neither needs the other."""

from __future__ import annotations

#: Feature strides of the three detection levels.
STRIDES = (8, 16, 32)
#: The graph's 12 outputs: per stride 8, 16, 32, the cls, obj, bbox and kps head maps.
HEAD_NAMES = tuple(f"{name}{s}" for s in STRIDES for name in ("cls", "obj", "bbox", "kps"))
