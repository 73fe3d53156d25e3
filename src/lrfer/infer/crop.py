"""Cutting face crops out of a frame for the classifier.

Crops always come from the ORIGINAL frame (never from the copy a detector looked at), so a face
keeps every pixel it has: a 200 px face shrunk to 48 px is area-averaged, not aliased, and a
12 px face is upsampled from its 12 px rather than from something smaller.

All faces of a frame are sampled bilinearly on one batched grid per size group (faces are grouped
by a power-of-two oversampling level, so a frame needs at most a handful of passes), in numpy, so
the runtime needs no PyTorch; the arithmetic is ``torch.nn.functional.grid_sample``'s
(align_corners=False, border padding), which this module used until 2026-12:
each face is sampled at ``size * k`` with ``k >= side / size`` (at most one source pixel between
samples, so bilinear sampling sees every pixel), then ``k x k`` average-pooled to ``size``: an
area (box-filter) downsample, and plain bilinear when the face is smaller than ``size``
(``k == 1``). For faces more than four times ``size``, the frame region is first box-averaged by
a power of two ``q`` so that ``k`` stays 4, which keeps large faces about as cheap as small ones.
"""

from __future__ import annotations

import math

import numpy as np

#: ITU-R 601 luma, the weights of PIL's ``convert("L")``.
LUMA = (0.299, 0.587, 0.114)

#: Crop margin around a YuNet box, as a fraction of its side. Chosen on FER2013 PublicTest faces
#: pasted into photos (the framing the shipped model was trained on): margins 0 / 0.1 / 0.2 / 0.3 /
#: 0.45 gave 67.1 / 69.3 / 64.4 / 62.7 / 56.4% accuracy on the 225 of 240 faces found (2026-11-22,
#: bench/photos_vs_fer.py's photos at 64 px, upscale 2).
DEFAULT_MARGIN = 0.1


def face_sizes(boxes) -> np.ndarray:
    """The native pixel size of each face: ``round(min(w, h))`` of its box, as ``(N,)`` int64."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.round(np.minimum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])).clip(min=0).astype(np.int64)


def crop_faces(
    frame: np.ndarray,
    boxes: np.ndarray,
    landmarks: np.ndarray | None = None,
    *,
    size: int,
    margin: float = DEFAULT_MARGIN,
    align: bool = False,
    channels: int = 1,
) -> np.ndarray:
    """Square face crops as uint8 ``(N, channels, size, size)``.

    ``frame`` is ``HxWx3`` RGB (``HxWx4`` loses its alpha) or ``HxW`` gray, uint8. Each crop is
    centred on its box with side ``max(w, h) * (1 + margin)``; outside the frame the edge pixels
    are repeated. With ``align`` and landmarks (``(N, 5, 2)``, first two points the image-left and
    image-right eye), the crop is rotated about the box centre so that the eyes are level; faces
    without landmarks are cropped upright. ``channels == 1`` gives ITU-R 601 luma (PIL ``"L"``).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    size = int(size)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(b)
    if n == 0:
        return np.zeros((0, channels, size, size), dtype=np.uint8)
    a = _frame_array(frame)
    h, w = a.shape[:2]

    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]).clip(min=1.0) * (1.0 + margin)
    angle = np.zeros(n)
    if align and landmarks is not None:
        lm = np.asarray(landmarks, dtype=np.float64).reshape(n, -1, 2)
        d = lm[:, 1] - lm[:, 0]
        angle = np.nan_to_num(np.arctan2(d[:, 1], d[:, 0]))
    # Half the side of the axis-aligned square that holds the (rotated) crop.
    reach = side / 2 * (np.abs(np.cos(angle)) + np.abs(np.sin(angle)))

    # Oversampling level per face: 2**level >= side / size, so faces group by level.
    ratio = np.maximum(side / size, 1.0)
    level = np.array([max(0, math.ceil(math.log2(r) - 1e-9)) for r in ratio], dtype=np.int64)
    # Boxes far larger than the frame: pooling windows no bigger than the frame itself.
    level = np.minimum(level, 2 + int(math.log2(max(1, min(h, w)))))

    out = np.empty((n, channels, size, size), dtype=np.uint8)
    for lv in np.unique(level).tolist():
        idx = np.flatnonzero(level == lv)
        # Large faces: box-average the frame by q first (an exact area filter, and cheap), then
        # oversample 4x on that; sampling at 2**level x size directly would cost q**2 times more.
        # The blur stays between a box filter's and PIL's antialiased bilinear (triangle).
        q = 1 << (lv - 2) if lv >= 3 else 1
        k = (1 << lv) // q
        # Only the frame region under this group's crops is converted and pooled, on a lattice of
        # q px anchored at the frame origin so a face's crop does not depend on its neighbours.
        pad = 2 + q
        x0 = _clip((math.floor(float(np.min(cx[idx] - reach[idx]))) - pad) // q * q, 0, (w - 1) // q * q)
        y0 = _clip((math.floor(float(np.min(cy[idx] - reach[idx]))) - pad) // q * q, 0, (h - 1) // q * q)
        x1 = _clip(-(-(math.ceil(float(np.max(cx[idx] + reach[idx]))) + pad) // q) * q, x0 + 1, w)
        y1 = _clip(-(-(math.ceil(float(np.max(cy[idx] + reach[idx]))) + pad) // q) * q, y0 + 1, h)
        src = _region(a[y0:y1, x0:x1], channels)  # (C, y1-y0, x1-x0) float32
        if q > 1:
            src = _pool(src, q)
        res = size * k
        grid = _grid((cx[idx] - x0) / q, (cy[idx] - y0) / q, side[idx] / q, angle[idx], res, src.shape[-1], src.shape[-2])
        s = _sample(src, grid)  # (m, C, res, res)
        if k > 1:
            s = s.reshape(len(idx), src.shape[0], size, k, size, k).mean(axis=(3, 5), dtype=np.float32)
        out[idx] = np.clip(np.rint(s), 0, 255).astype(np.uint8)
    return out


def _clip(v: int, lo: int, hi: int) -> int:
    return max(lo, min(v, hi))


def _frame_array(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"a frame must be HxW or HxWx3, got shape {a.shape}")
    return a


def _region(a: np.ndarray, channels: int) -> np.ndarray:
    """A frame region as float32 ``(C, H, W)``: luma for one channel (linear, so taking it before
    sampling equals taking it after, at a third of the cost), grey repeated for three."""
    f = np.asarray(a, dtype=np.float32)
    if f.ndim == 2:
        return f[None] if channels == 1 else np.repeat(f[None], 3, axis=0)
    if channels == 1:
        return (f @ np.asarray(LUMA, np.float32))[None]
    return np.ascontiguousarray(f.transpose(2, 0, 1))


def _pool(src: np.ndarray, q: int) -> np.ndarray:
    """``q x q`` box average; windows cut by the bottom/right edge average the pixels they hold
    (``avg_pool2d(ceil_mode=True)``)."""
    c, h, w = src.shape
    hp, wp = -(-h // q) * q, -(-w // q) * q
    padded = np.zeros((c, hp, wp), np.float32)
    padded[:, :h, :w] = src
    sums = padded.reshape(c, hp // q, q, wp // q, q).sum(axis=(2, 4))
    rows = np.minimum(np.arange(1, hp // q + 1) * q, h) - np.arange(hp // q) * q
    cols = np.minimum(np.arange(1, wp // q + 1) * q, w) - np.arange(wp // q) * q
    return (sums / (rows[:, None] * cols[None, :]).astype(np.float32)).astype(np.float32)


def _sample(src: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``src`` (C, H, W) at ``grid`` (m, res, res, 2) in [-1, 1] coordinates,
    as ``grid_sample(align_corners=False, padding_mode="border")``: ``(m, C, res, res)`` float32."""
    c, h, w = src.shape
    ix = np.clip(((grid[..., 0] + 1) * w - 1) / 2, 0, w - 1)
    iy = np.clip(((grid[..., 1] + 1) * h - 1) / 2, 0, h - 1)
    x0, y0 = np.floor(ix).astype(np.int64), np.floor(iy).astype(np.int64)
    fx, fy = (ix - x0).astype(np.float32), (iy - y0).astype(np.float32)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    flat = src.reshape(c, h * w)
    top = flat[:, y0 * w + x0] * (1 - fx) + flat[:, y0 * w + x1] * fx
    bottom = flat[:, y1 * w + x0] * (1 - fx) + flat[:, y1 * w + x1] * fx
    return (top * (1 - fy) + bottom * fy).transpose(1, 0, 2, 3)


def _grid(cx, cy, side, angle, res: int, w: int, h: int) -> np.ndarray:
    """Sampling coordinates in [-1, 1] (align_corners=False) of a ``res x res`` grid over each face."""
    # Sample centres as fractions of the side, in [-0.5, 0.5]; pixel i covers [i, i+1) of the frame.
    u = (np.arange(res, dtype=np.float64) + 0.5) / res - 0.5
    uu, vv = np.meshgrid(u, u, indexing="xy")  # (res, res): uu varies along x, vv along y
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    sd = side[:, None, None]
    # The crop's x axis runs along the eye line: rotate the offsets by the eye angle.
    x = cx[:, None, None] + sd * (c * uu - s * vv)
    y = cy[:, None, None] + sd * (s * uu + c * vv)
    return np.stack([2.0 * x / w - 1.0, 2.0 * y / h - 1.0], axis=-1).astype(np.float32)
