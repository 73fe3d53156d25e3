"""Write the shipped default model as ONNX, for the runtime that has no PyTorch:
``src/lrfer/assets/default/model.onnx`` from ``model.safetensors`` beside it.

    python tools/export_default.py

Run it whenever the checkpoint changes (a new default, or ``lrfer calibrate`` writing a fitted
temperature into it): the export records the checkpoint's sha256, and a test fails while the two
disagree, so a stale graph never ships.
"""

from __future__ import annotations

from lrfer.export import export_onnx, read_onnx_metadata
from lrfer.predict.classifier import DEFAULT_CHECKPOINT
from lrfer.runtime.onnx import DEFAULT_ONNX


def main() -> None:
    export_onnx(DEFAULT_CHECKPOINT, DEFAULT_ONNX)
    meta = read_onnx_metadata(DEFAULT_ONNX)
    print(f"wrote {DEFAULT_ONNX} ({DEFAULT_ONNX.stat().st_size / 2**20:.1f} MB) from {meta['source']} sha256 {meta['source_sha256'][:16]}")


if __name__ == "__main__":
    main()
