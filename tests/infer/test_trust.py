"""The Recognizer's prior and abstention through the Python API: a rule stored in a checkpoint is
read back the same by the PyTorch and ONNX backends and gives the same uncertain faces; a video's
uncertain mark follows the smoothed probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrfer.errors import LrferError
from lrfer.infer.pipeline import Face
from lrfer.infer.recognizer import Recognizer
from lrfer.infer.stream import FaceTracks
from lrfer.models import create_model
from lrfer.models.checkpoint import model_spec, save_checkpoint, update_spec
from lrfer.runtime.decision import Abstain
from lrfer.runtime.prior import prior_record
from tests.conftest import make_faceset

pytest.importorskip("onnxruntime")
CLASSES = ("angry", "happy", "sad", "neutral")
PRIOR = "neutral=0.4"


@pytest.fixture(scope="module")
def faces():
    return make_faceset(40, classes=CLASSES, seed=5).images.numpy()


@pytest.fixture(scope="module")
def stored(tmp_path_factory, faces):
    """A small random checkpoint with an abstention rule at its median confidence and training shares."""
    torch.manual_seed(0)
    m = create_model("cnn2x2", num_classes=4, in_chans=1, input_size=48, input_norm="per_image", widths=(8, 16, 32), fc=32).train()
    with torch.no_grad():  # BatchNorm statistics of varied inputs, so that faces get different answers
        for _ in range(3):
            m(torch.rand(16, 1, 48, 48) * torch.rand(16, 1, 1, 1))
    m.eval()
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "m.safetensors", m, model_spec(m, CLASSES, 1, 48))
    update_spec(path, {"class_prior": prior_record(CLASSES, [0.4, 0.3, 0.2, 0.1], "made by hand")})
    conf = [fs[0].confidence for fs in Recognizer(path, None, backend="torch", prior=PRIOR).predict_batch([f[0] for f in faces])]
    rule = {"min_face": 0, "min_confidence": float(np.median(conf)), "min_margin": 0.0, "chosen": {"split": "made by hand"}}
    return update_spec(path, {"abstain": rule})


def test_both_backends_read_the_stored_rule_and_mark_the_same_faces(stored, faces):
    marks, labels = {}, {}
    for backend in ("torch", "onnx"):
        rec = Recognizer(stored, None, backend=backend, abstain="model", prior=PRIOR)
        assert type(rec.classifier).__name__ == ("FaceClassifier" if backend == "torch" else "OnnxClassifier")
        assert rec.abstain == Abstain(0, rec.abstain.min_confidence, 0.0) and rec.abstain.min_confidence > 0
        assert np.allclose(rec.classifier.train_prior, [0.4, 0.3, 0.2, 0.1])
        got = rec.predict_batch([f[0] for f in faces])
        marks[backend] = [fs[0].uncertain for fs in got]
        labels[backend] = [fs[0].label for fs in got]
    assert marks["torch"] == marks["onnx"] and labels["torch"] == labels["onnx"]
    assert 0 < sum(marks["torch"]) < len(faces)  # the rule splits these faces


def test_abstain_argument_forms(stored):
    rec = Recognizer(stored, None, abstain={"min_confidence": 0.9, "min_face": 20})
    assert rec.abstain == Abstain(20, 0.9, 0.0)
    assert Recognizer(stored, None).abstain is None  # off unless asked: the label and output stay as before
    with pytest.raises(LrferError, match="unknown field"):
        Recognizer(stored, None, abstain={"min_conf": 0.5})


def test_a_tracked_face_is_uncertain_by_its_smoothed_probabilities():
    tracks = FaceTracks(("happy", "sad"), smoothing="ema", alpha=0.5, abstain=Abstain(min_confidence=0.7))
    box = np.array([[0, 0, 40, 40]], np.float32)

    def frame(p):
        f = Face(box=(0, 0, 40, 40), score=1.0, size=40, probabilities={"happy": p, "sad": 1 - p}, label="", confidence=0.0)
        tracks.update(box, [f])
        return f

    assert not frame(0.9).uncertain  # 0.9 alone
    f = frame(0.4)  # smoothed: 0.65 happy, under 0.7 although the frame alone (0.6 sad) would be too
    assert f.label == "happy" and f.uncertain and f.confidence == pytest.approx(0.65)
