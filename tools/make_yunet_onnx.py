"""Make the default face detector's graph, ``src/lrfer/assets/yunet/yunet.onnx``, from the yuface wheel.

    python tools/make_yunet_onnx.py [--out src/lrfer/assets/yunet/yunet.onnx]

Run once by a maintainer, in an environment with ``lrfer[train]`` (torch, onnx, yuface): it reads
libfacedetection's YuNet weights out of the installed wheel's ``libfacedetection.so``
(:func:`lrfer.infer.detect.yunet_net.load_yunet_from_wheel`), exports the network as ONNX (RGB float
0..255 ``(N, 3, H, W)`` in, H and W multiples of 32, batch, height and width dynamic; the 12 head maps
out), records where it came from in the file's metadata (wheel, version, the .so's SHA-256, licence)
and writes it atomically, with the upstream licence notice as ``LICENSE`` beside it. The graph is
plain (no offline optimisation: onnxruntime optimises it when it loads), and the same wheel and torch
give the same outputs. ``tests/infer/test_yunet.py`` checks a rebuilt graph against the shipped one.
"""

from __future__ import annotations

import argparse
import io
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "src" / "lrfer" / "assets" / "yunet" / "yunet.onnx"
#: IR version 8 carries opset 17 and loads in every onnxruntime lrfer supports (>= 1.17).
IR_VERSION = 8
OPSET = 17
UPSTREAM = "https://github.com/ShiqiYu/libfacedetection"


def provenance() -> dict[str, str]:
    """Where the weights come from: the wheel, its version, the shared object's SHA-256, the licence."""
    from lrfer.files import sha256_file
    from lrfer.infer.detect.yunet_net import find_wheel_library

    so = find_wheel_library()
    return {
        "source_package": "yuface",
        "source_version": metadata.version("yuface"),
        "source_file": f"yuface/{so.name}",
        "source_sha256": sha256_file(so),
        "upstream": UPSTREAM,
        "license": "BSD-3-Clause",
        "license_notice": f"{copyright_line()} See LICENSE beside this file.",
        "made_by": "tools/make_yunet_onnx.py",
        "input": "image: float32 (N, 3, H, W), RGB 0..255, H and W multiples of 32 (zero-padded at the bottom/right)",
        "outputs": "cls, obj, bbox, kps head maps of stride 8, 16, 32 (decoded by lrfer.infer.detect.yunet.postprocess)",
    }


def license_text() -> str:
    """libfacedetection's BSD-3-Clause notice, as the yuface wheel carries it."""
    text = metadata.distribution("yuface").read_text("LICENSE")
    if not text or "BSD" not in text:
        raise SystemExit("the installed yuface wheel carries no BSD licence notice: reinstall it (pip install --force-reinstall yuface)")
    return text.rstrip() + "\n"


def copyright_line() -> str:
    """The notice's copyright line (holder and years), as the wheel's LICENSE states it."""
    return next(line.strip() for line in license_text().splitlines() if line.strip().startswith("Copyright"))


def build(out_path: Path | str = DEFAULT_OUT) -> Path:
    """Export YuNet with the installed wheel's weights to ``out_path`` (atomically); the path."""
    import onnx
    import torch

    from lrfer.files import atomic_write_bytes
    from lrfer.infer.detect.yunet_net import export_yunet_onnx, load_yunet_from_wheel

    buf = io.BytesIO()
    export_yunet_onnx(load_yunet_from_wheel(), buf, opset=OPSET)
    model = onnx.load_from_string(buf.getvalue())
    model.ir_version = IR_VERSION
    model.producer_name, model.producer_version = "lrfer tools/make_yunet_onnx.py", f"torch {torch.__version__.split('+')[0]}"
    model.doc_string = "libfacedetection's 2023 YuNet face detector (BSD-3-Clause, Shiqi Yu), weights from the yuface wheel"
    del model.metadata_props[:]
    for key, value in provenance().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return atomic_write_bytes(out_path, model.SerializeToString())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    from lrfer.files import atomic_write_text

    path = build(args.out)
    atomic_write_text(path.with_name("LICENSE"), license_text())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and {path.with_name('LICENSE')}", file=sys.stderr)


if __name__ == "__main__":
    main()
