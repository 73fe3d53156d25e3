"""Pack ../shared/data for the lent GPU machine, whose upload limit (64 MiB, the repository included)
is below the npz's size.

FER2013's pixels compress to 70 MB with the npz's zlib and 57 MB with plain LZMA. Coding each pixel
as its residual from the median edge detector prediction of JPEG-LS (LOCO-I) before LZMA brings
them to 50 MB, which leaves room for the repository. Lossless: unpacking checks nothing is changed
against the packed checksum. Run here:
    python bench/gpu/pack_data.py            # writes .gpu/ (git-ignored; never commit it)
    python bench/gpu/pack_data.py --no-ckplus   # FER2013 only, when the tree is near the limit
and on the GPU machine (with `.gpu` carried):
    python bench/gpu/pack_data.py --unpack /tmp/data   # writes /tmp/data/fer2013.npz (and ckplus48.npz)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[2]
SHARED = HERE.parent / "shared" / "data"
PACK = HERE / ".gpu"


def med_prediction(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    """LOCO-I's median edge detector: min/max of left and up at an edge, else the planar guess."""
    hi, lo = np.maximum(left, up), np.minimum(left, up)
    return np.where(up_left >= hi, lo, np.where(up_left <= lo, hi, left + up - up_left))


def med_residuals(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.int16)
    left = np.zeros_like(x); left[:, :, 1:] = x[:, :, :-1]
    up = np.zeros_like(x); up[:, 1:, :] = x[:, :-1, :]
    up_left = np.zeros_like(x); up_left[:, 1:, 1:] = x[:, :-1, :-1]
    return ((x - med_prediction(left, up, up_left)) % 256).astype(np.uint8)


def med_decode(residuals: np.ndarray) -> np.ndarray:
    """Inverse of med_residuals, one pixel position at a time, all images at once."""
    n, h, w = residuals.shape
    x = np.zeros((n, h, w), np.int16)
    zero = np.zeros(n, np.int16)
    for i in range(h):
        for j in range(w):
            left = x[:, i, j - 1] if j else zero
            up = x[:, i - 1, j] if i else zero
            up_left = x[:, i - 1, j - 1] if i and j else zero
            x[:, i, j] = (med_prediction(left, up, up_left) + residuals[:, i, j]) % 256
    return x.astype(np.uint8)


def pack(ckplus: bool) -> None:
    PACK.mkdir(exist_ok=True)
    for old in PACK.iterdir():
        old.unlink()
    d = np.load(SHARED / "fer2013.npz")
    images = d["images"]
    (PACK / "fer2013_images.med.xz").write_bytes(lzma.compress(med_residuals(images).tobytes(), preset=6))
    np.savez_compressed(PACK / "fer2013_meta.npz", images_shape=np.array(images.shape), images_sha256=np.array(hashlib.sha256(images.tobytes()).hexdigest()),
                        **{k: d[k] for k in d.files if k != "images"})
    if ckplus:
        c = np.load(SHARED / "ckplus48.npz")
        raw = io.BytesIO()
        np.savez(raw, **{k: c[k] for k in c.files})  # uncompressed first: LZMA then does better than on zlib's output
        (PACK / "ckplus48.npz.xz").write_bytes(lzma.compress(raw.getvalue(), preset=9 | lzma.PRESET_EXTREME))


def unpack(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    meta = dict(np.load(PACK / "fer2013_meta.npz"))
    shape = tuple(meta.pop("images_shape"))
    digest = str(meta.pop("images_sha256"))
    residuals = np.frombuffer(lzma.decompress((PACK / "fer2013_images.med.xz").read_bytes()), np.uint8).reshape(shape)
    images = med_decode(residuals)
    if hashlib.sha256(images.tobytes()).hexdigest() != digest:
        raise SystemExit("unpacked FER2013 pixels differ from the packed ones: pack again")
    np.savez(dest / "fer2013.npz", images=images, **meta)
    if (PACK / "ckplus48.npz.xz").is_file():
        (dest / "ckplus48.npz").write_bytes(lzma.decompress((PACK / "ckplus48.npz.xz").read_bytes()))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--unpack", type=Path)
    ap.add_argument("--no-ckplus", action="store_true")
    args = ap.parse_args()
    unpack(args.unpack) if args.unpack else pack(not args.no_ckplus)
