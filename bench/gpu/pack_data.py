"""Pack ../shared/data for the lent GPU machine, whose upload limit (64 MiB) is below the npz's size.

FER2013's pixels compress to 57 MB with LZMA (70 MB with the npz's zlib). Run here:
    python bench/gpu/pack_data.py            # writes .gpu/ (git-ignored; never commit it)
and on the GPU machine (with `.gpu` carried):
    python bench/gpu/pack_data.py --unpack /tmp/data   # writes /tmp/data/fer2013.npz, ckplus48.npz
"""

from __future__ import annotations

import argparse
import lzma
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[2]
SHARED = HERE.parent / "shared" / "data"
PACK = HERE / ".gpu"


def pack() -> None:
    PACK.mkdir(exist_ok=True)
    d = np.load(SHARED / "fer2013.npz")
    (PACK / "fer2013_images.xz").write_bytes(lzma.compress(d["images"].tobytes(), preset=6))
    np.savez_compressed(PACK / "fer2013_meta.npz", **{k: d[k] for k in d.files if k != "images"})
    c = np.load(SHARED / "ckplus48.npz")
    np.savez_compressed(PACK / "ckplus48.npz", **{k: c[k] for k in c.files})


def unpack(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    meta = np.load(PACK / "fer2013_meta.npz")
    n = len(meta["labels"])
    images = np.frombuffer(lzma.decompress((PACK / "fer2013_images.xz").read_bytes()), np.uint8).reshape(n, 48, 48)
    np.savez(dest / "fer2013.npz", images=images, **{k: meta[k] for k in meta.files})
    c = np.load(PACK / "ckplus48.npz")
    np.savez(dest / "ckplus48.npz", **{k: c[k] for k in c.files})


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--unpack", type=Path)
    args = ap.parse_args()
    unpack(args.unpack) if args.unpack else pack()
