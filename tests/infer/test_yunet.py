"""The PyTorch YuNet must reproduce the yuface wheel it reads its weights from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrfer.errors import LrferError

yuface = pytest.importorskip("yuface")

from lrfer.infer.detect import yunet

ASTRONAUT = Path(__file__).resolve().parents[2] / "examples" / "astronaut.png"
# yuface truncates scores (percent) and pixels to integers; ours are floats
TOL = 1.0 + 1e-3


@pytest.fixture(scope="module")
def model():
    return yunet.load_yunet_from_wheel()


@pytest.fixture(scope="module")
def astronaut():
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


def _yuface(rgb: np.ndarray, conf: float):
    c, b, l = yuface.detect(np.ascontiguousarray(rgb[:, :, ::-1]), conf=conf)  # the wheel wants BGR
    # int16 first: the wheel's uint16 wraps negative coordinates
    return c.astype(np.int16).astype(float), b.astype(np.int16).astype(float), l.astype(np.int16).astype(float)


def _assert_parity(model, rgb: np.ndarray, conf: float, backend: str = "eager") -> int:
    c, b, l = _yuface(rgb, conf)
    boxes, scores, lms = yunet.detect_yunet(model, [rgb], conf, backend=backend)[0]
    # yuface keeps int(score * 100) > conf * 100, we keep score >= conf: compare on yuface's rule
    keep = np.floor(scores * 100) > round(conf * 100)
    boxes, scores, lms = boxes[keep], scores[keep], lms[keep]
    assert len(scores) == len(c), (c, scores)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    np.testing.assert_allclose(scores * 100, c, atol=TOL)
    np.testing.assert_allclose(xywh, b, atol=TOL)
    np.testing.assert_allclose(lms.reshape(-1, 10), l, atol=TOL)
    return len(c)


def _paste_face(astronaut: np.ndarray, face_px: int, canvas=(150, 110), at=(61, 37)) -> np.ndarray:
    face = Image.fromarray(astronaut).crop((160, 40, 285, 195))  # about the face box, little margin
    c = Image.new("RGB", canvas, (128, 128, 128))
    c.paste(face.resize((face_px, round(face_px * 155 / 125)), Image.LANCZOS), at)
    return np.asarray(c)


def test_weights_load_with_the_expected_layer_table(model):
    params = yunet.read_conv_params()
    assert len(params) == yunet.NUM_CONV_LAYERS
    # every convolution is a 1x1 point-wise or a 3x3 depth-wise one, never both
    assert all(p.is_pointwise != p.is_depthwise for p in params)
    for p in params:
        assert p.weights.shape == ((9, p.channels) if p.is_depthwise else (p.num_filters, p.channels))
        assert p.biases.shape == (p.num_filters,)
        assert np.isfinite(p.weights).all() and np.abs(p.weights).sum() > 0
    # the stem is a 3x3x3 conv unrolled to 27 inputs padded to 32: the padding must be zero
    assert params[0].channels == 32 and not params[0].weights[:, 27:].any()
    n_table = sum(p.weights.size + p.biases.size for p in params) - 16 * 5
    assert n_table == sum(t.numel() for t in model.parameters())
    # the depth-wise table layout (tap, channel) must land as (channel, 1, ky, kx)
    dw = params[2]
    assert torch.equal(model.stem_dp.dw.weight[3, 0], torch.from_numpy(dw.weights[:, 3].reshape(3, 3)))


@pytest.mark.parametrize("scale", [1.0, 0.45])
def test_matches_yuface_on_the_astronaut(model, astronaut, scale):
    h, w = astronaut.shape[:2]
    rgb = np.asarray(Image.fromarray(astronaut).resize((round(w * scale), round(h * scale)), Image.BILINEAR))
    assert _assert_parity(model, rgb, 0.5) == 1


def test_matches_yuface_on_a_pasted_24px_face(model, astronaut):
    rgb = _paste_face(astronaut, 24)
    assert _assert_parity(model, rgb, 0.3) == 1


def test_landmarks_are_image_left_eye_first(model, astronaut):
    boxes, scores, lms = yunet.detect_yunet(model, [astronaut], 0.5, backend="eager")[0]
    eye_l, eye_r, nose, mouth_l, mouth_r = lms[0]
    assert eye_l[0] < nose[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    x1, y1, x2, y2 = boxes[0]
    assert (lms[0, :, 0] > x1).all() and (lms[0, :, 0] < x2).all()


def test_batch_equals_per_frame(model, astronaut):
    small = _paste_face(astronaut, 30)
    frames = [astronaut, small, astronaut[:, ::-1].copy(), small[::-1].copy(), astronaut[:300]]
    batched = yunet.detect_yunet(model, frames, 0.3, batch_size=2, backend="eager")
    assert sum(len(s) for _, s, _ in batched) >= 3
    for frame, (b, s, l) in zip(frames, batched):
        b1, s1, l1 = yunet.detect_yunet(model, [frame], 0.3, backend="eager")[0]
        np.testing.assert_allclose(b, b1, atol=1e-3)
        np.testing.assert_allclose(s, s1, atol=1e-5)
        np.testing.assert_allclose(l, l1, atol=1e-3)


@pytest.mark.parametrize("backend", ["jit", "onnxruntime"])
def test_accelerated_backends_agree_with_eager(model, astronaut, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime")
    rgb = np.asarray(Image.fromarray(astronaut).resize((300, 260)))
    ref = yunet.detect_yunet(model, [rgb, astronaut], 0.3, backend="eager")
    got = yunet.detect_yunet(model, [rgb, astronaut], 0.3, backend=backend)
    for (b0, s0, l0), (b1, s1, l1) in zip(ref, got):
        assert len(s0) == len(s1) >= 1
        np.testing.assert_allclose(b1, b0, atol=0.05)
        np.testing.assert_allclose(s1, s0, atol=1e-3)
        np.testing.assert_allclose(l1, l0, atol=0.05)


def test_gray_and_empty_frames(model, astronaut):
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    out = yunet.detect_yunet(model, [gray, np.zeros((0, 5, 3), np.uint8)], 0.5, backend="eager")
    assert len(out[0][1]) == 1 and len(out[1][1]) == 0
    assert out[0][2].shape == (1, 5, 2) and out[1][0].shape == (0, 4)


def test_bad_inputs_raise_lrfer_error(model, astronaut, tmp_path):
    with pytest.raises(LrferError, match="uint8"):
        yunet.detect_yunet(model, [astronaut.astype(np.float32)], 0.5)
    with pytest.raises(LrferError, match="shape"):
        yunet.detect_yunet(model, [np.zeros((8, 8, 5), np.uint8)], 0.5)
    with pytest.raises(LrferError, match="min_score"):
        yunet.detect_yunet(model, [astronaut], 1.5)
    with pytest.raises(LrferError, match="backend"):
        yunet.detect_yunet(model, [astronaut], 0.5, backend="tensorrt")
    not_elf = tmp_path / "libfacedetection.so"
    not_elf.write_bytes(b"definitely not an ELF file")
    with pytest.raises(LrferError, match="cannot read"):
        yunet.read_conv_params(not_elf)
    with pytest.raises(LrferError, match="cannot read"):
        yunet.read_conv_params(tmp_path / "missing.so")
