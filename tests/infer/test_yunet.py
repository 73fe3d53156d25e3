"""YuNet, the default detector: the shipped ONNX graph must find the faces the yuface wheel finds, and
the torch re-implementation it was made from (which needs torch and yuface; those tests skip without)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.errors import LrferError
from lrfer.infer.detect import yunet
from lrfer.infer.detect.yunet import YUNET_ONNX, YuNetDetector, detect_yunet

ROOT = Path(__file__).resolve().parents[2]
ASTRONAUT = ROOT / "examples" / "astronaut.png"
# yuface truncates scores (percent) and pixels to integers; ours are floats
TOL = 1.0 + 1e-3


@pytest.fixture(scope="module")
def run():
    return yunet.onnx_runner()


@pytest.fixture(scope="module")
def astronaut():
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


@pytest.fixture(scope="module")
def net():
    """The torch re-implementation (yunet_net): needs torch, and yuface for the weights."""
    pytest.importorskip("torch")
    pytest.importorskip("yuface")
    from lrfer.infer.detect import yunet_net

    return yunet_net


@pytest.fixture(scope="module")
def model(net):
    return net.load_yunet_from_wheel()


def _paste_face(astronaut: np.ndarray, face_px: int, canvas=(150, 110), at=(61, 37)) -> np.ndarray:
    face = Image.fromarray(astronaut).crop((160, 40, 285, 195))  # about the face box, little margin
    c = Image.new("RGB", canvas, (128, 128, 128))
    c.paste(face.resize((face_px, round(face_px * 155 / 125)), Image.LANCZOS), at)
    return np.asarray(c)


def _frames(astronaut: np.ndarray) -> dict[str, tuple[np.ndarray, float]]:
    """The test frames of the parity checks, with the score threshold each is checked at."""
    small = np.asarray(Image.fromarray(astronaut).resize((230, 230), Image.BILINEAR))
    return {"astronaut": (astronaut, 0.5), "astronaut 0.45x": (small, 0.5), "24 px face": (_paste_face(astronaut, 24), 0.3)}


def _assert_matches_yuface(run, rgb: np.ndarray, conf: float) -> int:
    yuface = pytest.importorskip("yuface")
    c, b, l = yuface.detect(np.ascontiguousarray(rgb[:, :, ::-1]), conf=conf)  # the wheel wants BGR
    # int16 first: the wheel's uint16 wraps negative coordinates
    c, b, l = (a.astype(np.int16).astype(float) for a in (c, b, l))
    boxes, scores, lms = detect_yunet(run, [rgb], conf)[0]
    # yuface keeps int(score * 100) > conf * 100, we keep score >= conf: compare on yuface's rule
    keep = np.floor(scores * 100) > round(conf * 100)
    boxes, scores, lms = boxes[keep], scores[keep], lms[keep]
    assert len(scores) == len(c), (c, scores)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    np.testing.assert_allclose(scores * 100, c, atol=TOL)
    np.testing.assert_allclose(xywh, b, atol=TOL)
    np.testing.assert_allclose(lms.reshape(-1, 10), l, atol=TOL)
    return len(c)


def _assert_same(a, b, px: float = 0.05, score: float = 1e-3) -> None:
    """Two detect_yunet results, frame by frame: same faces, boxes and landmarks within ``px``."""
    for (b0, s0, l0), (b1, s1, l1) in zip(a, b):
        assert len(s0) == len(s1)
        np.testing.assert_allclose(b1, b0, atol=px)
        np.testing.assert_allclose(s1, s0, atol=score)
        np.testing.assert_allclose(l1, l0, atol=px)


# -- the shipped graph ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "astronaut 0.45x", "24 px face"])
def test_shipped_graph_matches_yuface(run, astronaut, name):
    rgb, conf = _frames(astronaut)[name]
    assert _assert_matches_yuface(run, rgb, conf) == 1


def test_shipped_graph_records_its_source_and_licence():
    import onnxruntime as ort

    meta = ort.InferenceSession(str(YUNET_ONNX), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta["source_package"] == "yuface" and meta["source_version"] == "2023.5.1"
    assert len(meta["source_sha256"]) == 64 and meta["license"] == "BSD-3-Clause"
    assert "Shiqi Yu" in meta["license_notice"] and meta["made_by"] == "tools/make_yunet_onnx.py"
    notice = YUNET_ONNX.with_name("LICENSE").read_text()
    assert "3-clause BSD" in notice and "Shiqi Yu" in notice and "Redistributions in binary form" in notice
    assert "make_yunet_onnx.py" in YUNET_ONNX.with_name("README.md").read_text()
    assert YUNET_ONNX.stat().st_size < 1_000_000


def test_default_detector_runs_without_importing_torch():
    code = (
        "import sys, numpy as np\n"
        "from lrfer.infer.detect import create_detector\n"
        "det = create_detector()\n"
        "frame = np.zeros((96, 128, 3), np.uint8)\n"
        "assert len(det.detect(frame)) == 0 and det.detect_batch([frame, frame])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr


def test_landmarks_are_image_left_eye_first(run, astronaut):
    boxes, scores, lms = detect_yunet(run, [astronaut], 0.5)[0]
    eye_l, eye_r, nose, mouth_l, mouth_r = lms[0]
    assert eye_l[0] < nose[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    x1, y1, x2, y2 = boxes[0]
    assert (lms[0, :, 0] > x1).all() and (lms[0, :, 0] < x2).all()


def test_batch_equals_per_frame(run, astronaut):
    small = _paste_face(astronaut, 30)
    frames = [astronaut, small, astronaut[:, ::-1].copy(), small[::-1].copy(), astronaut[:300]]
    batched = detect_yunet(run, frames, 0.3, batch_size=2)
    assert sum(len(s) for _, s, _ in batched) >= 3
    _assert_same(batched, [detect_yunet(run, [f], 0.3)[0] for f in frames], px=1e-3, score=1e-5)


def test_gray_and_empty_frames(run, astronaut):
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    out = detect_yunet(run, [gray, np.zeros((0, 5, 3), np.uint8)], 0.5)
    assert len(out[0][1]) == 1 and len(out[1][1]) == 0
    assert out[0][2].shape == (1, 5, 2) and out[1][0].shape == (0, 4)


def test_bad_inputs_raise_lrfer_error(run, astronaut, monkeypatch, tmp_path):
    with pytest.raises(LrferError, match="uint8"):
        detect_yunet(run, [astronaut.astype(np.float32)], 0.5)
    with pytest.raises(LrferError, match="shape"):
        detect_yunet(run, [np.zeros((8, 8, 5), np.uint8)], 0.5)
    with pytest.raises(LrferError, match="min_score"):
        detect_yunet(run, [astronaut], 1.5)
    with pytest.raises(LrferError, match="unknown yunet backend 'tensorrt'.*auto, eager"):
        YuNetDetector(backend="tensorrt")
    with pytest.raises(LrferError, match="CPU only"):
        YuNetDetector(backend="onnxruntime", device="cuda")
    with pytest.raises(LrferError, match="missing.*reinstall"):
        yunet.onnx_runner(path=tmp_path / "nope.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    with pytest.raises(LrferError, match="cannot load"):
        yunet.onnx_runner(path=tmp_path / "bad.onnx")


def test_torch_backends_without_torch_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    for kw in ({"backend": "eager"}, {"backend": "jit"}, {"device": "cuda"}):
        with pytest.raises(LrferError, match=r"needs torch.*pip install 'lrfer\[train\]'") as err:
            YuNetDetector(**kw)
        assert "\n" not in str(err.value)


def test_detectors_share_one_session():
    a, b = YuNetDetector(), YuNetDetector(min_score=0.3)
    assert yunet._session(YUNET_ONNX, 1) is yunet._session(YUNET_ONNX, 1)
    frame = np.zeros((64, 64, 3), np.uint8)
    assert len(a.detect(frame)) == len(b.detect(frame)) == 0


# -- the torch re-implementation the graph is made from -------------------------------------------


def test_weights_load_with_the_expected_layer_table(net, model):
    import torch

    params = net.read_conv_params()
    assert len(params) == net.NUM_CONV_LAYERS
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


@pytest.mark.parametrize("name", ["astronaut", "astronaut 0.45x", "24 px face"])
def test_shipped_graph_matches_torch_eager(net, model, run, astronaut, name):
    rgb, conf = _frames(astronaut)[name]
    eager = detect_yunet(net.make_runner(model, "eager"), [rgb], conf)
    assert len(eager[0][1]) == 1
    _assert_same(eager, detect_yunet(run, [rgb], conf))
    assert _assert_matches_yuface(net.make_runner(model, "eager"), rgb, conf) == 1


def test_jit_agrees_with_eager_and_the_detector_runs_it(net, model, astronaut):
    rgb = np.asarray(Image.fromarray(astronaut).resize((300, 260)))
    ref = detect_yunet(net.make_runner(model, "eager"), [rgb, astronaut], 0.3)
    assert min(len(s) for _, s, _ in ref) >= 1
    _assert_same(ref, detect_yunet(net.make_runner(model, "jit"), [rgb, astronaut], 0.3))
    det = YuNetDetector(backend="jit", min_score=0.3)
    got = det.detect(astronaut)
    np.testing.assert_allclose(got.boxes, ref[1][0], atol=0.05)


def test_unreadable_library_raises_lrfer_error(net, tmp_path):
    not_elf = tmp_path / "libfacedetection.so"
    not_elf.write_bytes(b"definitely not an ELF file")
    with pytest.raises(LrferError, match="cannot read"):
        net.read_conv_params(not_elf)
    with pytest.raises(LrferError, match="cannot read"):
        net.read_conv_params(tmp_path / "missing.so")


def test_regenerated_graph_gives_the_shipped_outputs(net, astronaut, tmp_path):
    pytest.importorskip("onnx")
    spec = importlib.util.spec_from_file_location("make_yunet_onnx", ROOT / "tools" / "make_yunet_onnx.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rebuilt = tool.build(tmp_path / "yunet.onnx")
    x = np.ascontiguousarray(astronaut.transpose(2, 0, 1)[None], np.float32)
    for a, b in zip(yunet.onnx_runner(path=rebuilt)(x), yunet.onnx_runner()(x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert "Shiqi Yu" in tool.license_text()
