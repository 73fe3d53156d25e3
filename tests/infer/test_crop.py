"""Face crops: geometry against PIL, antialiasing, alignment, frame borders, batching."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lrfer.infer.crop import crop_faces, face_sizes
from tests.infer.conftest import draw_face, face_eyes


def smooth_frame(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """Colour content with detail at several scales (random coarse image, bicubic-enlarged)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC))


def pil_crop(frame: np.ndarray, box, size: int, resample) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).convert("L").crop(tuple(int(v) for v in box)).resize((size, size), resample), dtype=np.float64)


def test_matches_pil_crop_and_resize():
    frame = smooth_frame()
    # An exact 2x reduction is a 2x2 box average, which is what PIL's BOX filter computes.
    box = (40, 30, 136, 126)
    ours = crop_faces(frame, np.array([box], np.float32), size=48, margin=0)[0, 0].astype(np.float64)
    diff = np.abs(ours - pil_crop(frame, box, 48, Image.BOX))
    assert diff.max() <= 1.0 and diff.mean() < 0.6

    # Non-integer reductions and enlargements: close to PIL's antialiased bilinear.
    for box in [(40, 30, 140, 130), (150, 100, 221, 171), (200, 50, 230, 80)]:
        ours = crop_faces(frame, np.array([box], np.float32), size=48, margin=0)[0, 0].astype(np.float64)
        ref = pil_crop(frame, box, 48, Image.BILINEAR)
        assert np.abs(ours - ref).mean() < 1.5, box

    # Faces many times the output size go through a pre-pooled path; its blur stays within PIL's
    # own range, between the box filter and the (wider) antialiased bilinear.
    big = smooth_frame(480, 640)
    for box in [(20, 20, 420, 420), (300, 60, 600, 360)]:
        ours = crop_faces(big, np.array([box], np.float32), size=48, margin=0)[0, 0].astype(np.float64)
        box_ref, bil_ref = pil_crop(big, box, 48, Image.BOX), pil_crop(big, box, 48, Image.BILINEAR)
        spread = np.abs(box_ref - bil_ref).mean()
        assert np.abs(ours - box_ref).mean() < spread and np.abs(ours - bil_ref).mean() < spread, box


def test_shrinking_is_antialiased():
    frame = np.full((300, 300, 3), 90, np.uint8)
    yy, xx = np.mgrid[:300, :300]
    checker = ((yy + xx) % 2 * 255).astype(np.uint8)
    frame[50:250, 50:250] = checker[50:250, 50:250, None]
    box = np.array([[100, 100, 200, 200]], np.float32)  # inside the checkerboard, 100 px -> 48
    crop = crop_faces(frame, box, size=48, margin=0)[0, 0].astype(np.float64)
    # Area averaging turns a 1-px checkerboard into flat mid-gray ...
    assert abs(crop.mean() - 127.5) < 2 and crop.std() < 4
    # ... whereas resampling without a low-pass filter aliases it into a strong pattern.
    region = frame[100:200, 100:200, 0].astype(np.float64)
    at = (np.arange(48) + 0.5) * 100 / 48 - 0.5  # bilinear sample points, no filter
    i0, f = np.floor(at).astype(int), at - np.floor(at)
    rows = region[i0] * (1 - f)[:, None] + region[np.minimum(i0 + 1, 99)] * f[:, None]
    naive = rows[:, i0] * (1 - f) + rows[:, np.minimum(i0 + 1, 99)] * f
    assert naive.std() > 30


def test_margin_and_square_crop():
    frame = np.zeros((200, 300), np.uint8)
    frame[50:110, 100:140] = 255  # a 40x60 bright box
    box = np.array([[100, 50, 140, 110]], np.float32)
    crop = crop_faces(frame, box, size=60, margin=0.5)[0, 0]
    # Side 60 * 1.5 = 90 source px -> 60 output px: the box spans 40/90 x 60/90 of the crop, centred.
    bright = crop > 127
    rows, cols = np.flatnonzero(bright.any(1)), np.flatnonzero(bright.any(0))
    assert abs(len(rows) - 40) <= 1 and abs(len(cols) - 40 * 60 / 90) <= 1
    assert abs((rows[0] + rows[-1]) / 2 - 29.5) <= 0.6 and abs((cols[0] + cols[-1]) / 2 - 29.5) <= 0.6


def test_alignment_levels_the_eyes():
    frame = Image.new("RGB", (200, 200), (120, 120, 120))
    box = (60, 50, 140, 150)
    draw_face(frame, box, angle_deg=25)
    eyes = face_eyes(box, 25)
    landmarks = np.zeros((1, 5, 2), np.float32)
    landmarks[0, :2] = eyes
    frame = np.asarray(frame)
    boxes = np.array([box], np.float32)

    def eye_centres(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dark = crop < 60
        ys, xs = np.nonzero(dark)
        left = xs < crop.shape[1] / 2
        return np.array([xs[left].mean(), ys[left].mean()]), np.array([xs[~left].mean(), ys[~left].mean()])

    upright = crop_faces(frame, boxes, landmarks, size=64, margin=0.1, align=False)[0, 0]
    aligned = crop_faces(frame, boxes, landmarks, size=64, margin=0.1, align=True)[0, 0]
    (lu, ru), (la, ra) = eye_centres(upright), eye_centres(aligned)
    assert abs(ru[1] - lu[1]) > 6  # tilted as drawn
    assert abs(ra[1] - la[1]) < 1.0  # level after alignment
    assert ra[0] - la[0] > 20  # and still left-to-right, not flipped
    # Without landmarks, align has nothing to go by and crops upright.
    same = crop_faces(frame, boxes, None, size=64, margin=0.1, align=True)[0, 0]
    assert np.array_equal(same, upright)


def test_boxes_over_the_border_repeat_the_edge():
    h, w = 100, 160
    frame = np.tile(np.linspace(10, 250, w).astype(np.uint8)[None, :, None], (h, 1, 3))
    boxes = np.array([[-40, 20, 20, 80], [130, -30, 200, 40], [-500, -500, -400, -400]], np.float32)
    crops = crop_faces(frame, boxes, size=32, margin=0)
    assert crops.shape == (3, 1, 32, 32)
    first = crops[0, 0].astype(int)
    # 40 of the box's 60 px lie left of the frame: those columns repeat column 0.
    assert np.all(np.abs(first[:, :20] - int(frame[0, 0, 0])) <= 1)
    assert first[:, -1].mean() > first[:, 0].mean() + 10
    # A box entirely outside gives the corner pixel, not garbage or an error.
    assert np.all(np.abs(crops[2, 0].astype(int) - int(frame[0, 0, 0])) <= 1)


def test_zero_boxes():
    frame = smooth_frame()
    for c in (1, 3):
        out = crop_faces(frame, np.zeros((0, 4), np.float32), size=40, channels=c)
        assert out.shape == (0, c, 40, 40) and out.dtype == np.uint8


def test_channels_and_gray_frames():
    frame = smooth_frame()
    box = np.array([[60, 40, 108, 88]], np.float32)  # 48 px: no resampling at size 48
    gray = crop_faces(frame, box, size=48, margin=0, channels=1)[0, 0].astype(int)
    pil_l = np.asarray(Image.fromarray(frame[40:88, 60:108]).convert("L"), dtype=int)
    assert np.abs(gray - pil_l).max() <= 1
    rgb = crop_faces(frame, box, size=48, margin=0, channels=3)[0].transpose(1, 2, 0).astype(int)
    assert np.abs(rgb - frame[40:88, 60:108]).max() <= 1
    from_gray = crop_faces(frame[..., 1], box, size=48, margin=0, channels=3)[0]
    assert np.array_equal(from_gray[0], from_gray[2]) and np.abs(from_gray[1].astype(int) - frame[40:88, 60:108, 1]).max() <= 1


def test_batch_equals_one_by_one():
    frame = smooth_frame(480, 640)
    # Mixed sizes fall in different oversampling groups; results must land at the right index.
    boxes = np.array([[10, 10, 30, 34], [100, 50, 300, 260], [400, 300, 470, 370], [50, 200, 90, 240], [300, 10, 620, 330]], np.float32)
    lm = np.random.default_rng(1).uniform(0, 400, (5, 5, 2)).astype(np.float32)
    batch = crop_faces(frame, boxes, lm, size=32, align=True, channels=3)
    single = np.concatenate([crop_faces(frame, boxes[i : i + 1], lm[i : i + 1], size=32, align=True, channels=3) for i in range(5)])
    # Float rounding may differ with the region a group covers: at most 1 grey level.
    assert np.abs(batch.astype(int) - single.astype(int)).max() <= 1
    assert len({tuple(c.flatten()[:50].tolist()) for c in batch}) == 5


def test_face_sizes():
    boxes = np.array([[0, 0, 20.4, 30], [5, 5, 105, 55.6], [0, 0, 0, 0]], np.float32)
    assert face_sizes(boxes).tolist() == [20, 51, 0]
    assert face_sizes(np.zeros((0, 4))).shape == (0,)


def test_rejects_bad_channels():
    with pytest.raises(ValueError):
        crop_faces(smooth_frame(), np.array([[0, 0, 10, 10]], np.float32), size=8, channels=2)
