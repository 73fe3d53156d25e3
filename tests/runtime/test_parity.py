"""The runtime (numpy + ONNX Runtime) and the torch path give the same answers (issue 26: 1e-4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lrfer.files import sha256_file
from lrfer.infer.crop import crop_faces
from lrfer.infer.io import read_image
from lrfer.infer.recognizer import Recognizer
from lrfer.runtime.faces import resize_faces
from lrfer.runtime.onnx import DEFAULT_ONNX, OnnxClassifier
from tests.runtime.conftest import ROOT, SCENE

PARITY = 1e-4
FER2013 = ROOT.parent / "shared" / "data" / "fer2013.npz"


def test_the_shipped_onnx_is_the_shipped_checkpoint():
    clf = OnnxClassifier.load(None)
    checkpoint = Path(DEFAULT_ONNX).with_name("model.safetensors")
    assert clf.metadata["source"] == checkpoint.name
    assert clf.metadata["source_sha256"] == sha256_file(checkpoint), "the checkpoint changed: run `python tools/export_default.py`"


@pytest.mark.parametrize("reading", ["half", "crowd"])
def test_the_shipped_readings_agree_on_real_faces(reading):
    """The runtime applies a reading's head to the graph's embedding in numpy; torch swaps the head."""
    torch = pytest.importorskip("torch")
    from lrfer.predict.classifier import FaceClassifier

    ours, theirs = OnnxClassifier.load(None, threads=1, reading=reading), FaceClassifier.load(None, "cpu", reading=reading)
    assert ours.reading == theirs.reading == reading and ours.abstain == theirs.abstain and ours.temperature == pytest.approx(theirs.temperature)
    faces = real_faces()
    got, want = ours.predict_proba(faces), theirs.predict_proba(torch.from_numpy(faces)).numpy()
    assert np.abs(got - want).max() <= PARITY and (got.argmax(1) == want.argmax(1)).mean() == 1.0
    # and it is another reading: some faces get another answer than the model's own head gives
    assert (got.argmax(1) != OnnxClassifier.load(None, threads=1).predict_proba(faces).argmax(1)).any()


def test_numpy_resize_is_torchs():
    torch = pytest.importorskip("torch")
    from lrfer.data.augment import resize_faces as torch_resize

    x = np.random.default_rng(0).random((3, 2, 37, 53), dtype=np.float32)
    for size in [(48, 48), (20, 17), (37, 53), (90, 64), (12, 100)]:
        want = torch_resize(torch.from_numpy(x), size).numpy()
        assert np.abs(resize_faces(x, size) - want).max() < 1e-5, size


def real_faces(n: int = 256) -> np.ndarray:
    if FER2013.exists():
        with np.load(FER2013) as d:
            return d["images"][d["usage"] == "PublicTest"][:n, None]
    return np.random.default_rng(1).integers(0, 256, (n, 1, 48, 48), dtype=np.uint8)


@pytest.mark.parametrize("tta", ["none", "flip"])
def test_shipped_model_agrees_on_real_faces_at_any_size(tta):
    torch = pytest.importorskip("torch")
    from lrfer.predict.classifier import FaceClassifier

    ours, theirs = OnnxClassifier.load(None, threads=1), FaceClassifier.load(None, "cpu")
    faces = real_faces()
    for x in (faces, faces[:64, :, 4:44, 4:44], np.repeat(np.repeat(faces[:32], 2, axis=2), 2, axis=3)):
        got = ours.predict_proba(x, tta=tta)
        want = theirs.predict_proba(torch.from_numpy(np.ascontiguousarray(x)), tta=tta).numpy()
        assert got.shape == want.shape and np.abs(got - want).max() <= PARITY
        assert (got.argmax(1) == want.argmax(1)).mean() == 1.0


def test_recognizer_backends_agree_on_the_example_scene():
    pytest.importorskip("torch")
    runtime, torch_path = Recognizer(upscale="auto", backend="onnx"), Recognizer(upscale="auto", backend="torch")
    assert type(runtime.classifier).__name__ == "OnnxClassifier" and type(torch_path.classifier).__name__ == "FaceClassifier"
    a, b = runtime.predict(SCENE), torch_path.predict(SCENE)
    assert len(a) >= 3 and [f.box for f in a] == [f.box for f in b] and [f.label for f in a] == [f.label for f in b]
    frame = read_image(SCENE)
    det = runtime.detect([frame])[0]
    crops = crop_faces(frame, det.boxes, size=runtime.classifier.image_size, margin=runtime.margin, channels=runtime.classifier.in_chans)
    assert np.abs(runtime.classify(crops) - torch_path.classify(crops)).max() <= PARITY
