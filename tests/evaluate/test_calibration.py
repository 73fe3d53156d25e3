import math

import pytest
import torch

from lrfer.data.transforms import predict_logits
from lrfer.errors import LrferError
from lrfer.evaluate.calibration import T_MAX, T_MIN, apply_temperature, calibrate_checkpoint, calibration_report, fit_temperature, set_checkpoint_temperature
from lrfer.evaluate.metrics import expected_calibration_error
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.predict.classifier import FaceClassifier

from ..conftest import make_faceset

CLASSES = ("angry", "happy", "neutral")


def calibrated_logits(n=4000, k=7, seed=0):
    """Logits whose softmax is the true class distribution: labels are drawn from it."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g) * 1.5
    y = torch.multinomial(z.softmax(-1), 1, generator=g).squeeze(1)
    return z, y


def small_checkpoint(path, *, seed=0, **spec_extra):
    torch.manual_seed(seed)
    m = create_model("cnn2x2", num_classes=len(CLASSES), in_chans=1)
    spec = {**model_spec(m, CLASSES, in_chans=1, image_size=48), **spec_extra}
    return save_checkpoint(path, m, spec, info={"note": "kept"}, state={"epoch": 4, "rng": torch.arange(5)})


def test_fit_recovers_the_temperature_of_overconfident_logits():
    z, y = calibrated_logits()
    t = fit_temperature(z * 3, y)
    assert t == pytest.approx(3.0, rel=0.1)
    rep = calibration_report(z * 3, y, t)
    assert rep["ece_after"] < rep["ece_before"] / 2
    assert rep["nll_after"] < rep["nll_before"]
    assert rep["n"] == len(y) and rep["temperature"] == t
    # under-confident logits need T < 1
    assert fit_temperature(z / 2, y) == pytest.approx(0.5, rel=0.1)


def test_fit_is_the_nll_minimum_and_stays_in_bounds():
    z, y = calibrated_logits(n=800, seed=1)
    t = fit_temperature(z * 2, y)

    def loss(v):
        return float(torch.nn.functional.cross_entropy(z.double() * 2 / v, y))

    assert loss(t) <= min(loss(t * 1.01), loss(t / 1.01))
    # every face right with a margin: the NLL keeps falling as T shrinks, so the lower bound holds
    y_sep = torch.arange(30) % 3
    z_sep = torch.nn.functional.one_hot(y_sep, 3).double() * 5
    assert fit_temperature(z_sep, y_sep) == pytest.approx(T_MIN)
    # labels unrelated to confident logits: pushed towards the uniform distribution, the upper bound
    z_wrong = torch.nn.functional.one_hot((y_sep + 1) % 3, 3).double() * 5
    assert fit_temperature(z_wrong, y_sep) == pytest.approx(T_MAX)


def test_temperature_one_is_a_no_op():
    z, y = calibrated_logits(n=500)
    assert torch.allclose(apply_temperature(z, 1.0), z.softmax(-1), atol=1e-6)
    rep = calibration_report(z, y, 1.0)
    assert rep["ece_before"] == rep["ece_after"] and rep["nll_before"] == rep["nll_after"]
    assert rep["ece_before"] == pytest.approx(expected_calibration_error(z.softmax(-1), y, 15))
    # scaling never changes the predicted class
    assert torch.equal(apply_temperature(z, 4.0).argmax(-1), z.argmax(-1))


def test_bad_inputs():
    z, y = calibrated_logits(n=20)
    with pytest.raises(LrferError, match="no faces"):
        fit_temperature(z[:0], y[:0])
    with pytest.raises(ValueError, match="outside"):
        fit_temperature(z, y + 7)
    with pytest.raises(ValueError, match="rows"):
        fit_temperature(z, y[:5])
    z_nan = z.clone()
    z_nan[0, 0] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_temperature(z_nan, y)
    with pytest.raises(LrferError, match="positive"):
        apply_temperature(z, 0.0)
    with pytest.raises(LrferError, match="positive"):
        calibration_report(z, y, -1)


def test_checkpoint_roundtrip_keeps_everything_else(tmp_path):
    src = small_checkpoint(tmp_path / "c.safetensors")
    before = load_checkpoint(src)
    record = {"split": "PublicTest", "n": 10, "nll_before": 1.2, "nll_after": 1.0, "ece_before": 0.1, "ece_after": 0.02}
    out = set_checkpoint_temperature(src, 2.5, tmp_path / "out" / "t.safetensors", calibration=record)
    after = load_checkpoint(out)
    assert after.spec["temperature"] == 2.5
    assert after.spec["calibration"]["split"] == "PublicTest" and after.spec["calibration"]["ece_after"] == 0.02
    assert after.info == before.info and after.state["epoch"] == 4 and torch.equal(after.state["rng"], torch.arange(5))
    for k, v in before.weights().items():
        assert torch.equal(after.weights()[k], v)
    assert "temperature" not in load_checkpoint(src).spec  # path_out leaves the input untouched
    # in place, without a record: the old record described another temperature and goes
    set_checkpoint_temperature(out, 1.5)
    again = load_checkpoint(out)
    assert again.spec["temperature"] == 1.5 and "calibration" not in again.spec
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(LrferError, match="no such checkpoint"):
        set_checkpoint_temperature(tmp_path / "missing.safetensors", 2.0)
    sr = create_model("edsr_light", num_classes=0, in_chans=1, scale=2)
    path = save_checkpoint(tmp_path / "sr.safetensors", sr, model_spec(sr, (), 1, 24))
    with pytest.raises(LrferError, match="no classes"):
        set_checkpoint_temperature(path, 2.0)
    clf = small_checkpoint(tmp_path / "c.safetensors")
    with pytest.raises(LrferError, match="positive"):
        set_checkpoint_temperature(clf, float("nan"))


def test_face_classifier_applies_the_stored_temperature(tmp_path):
    path = small_checkpoint(tmp_path / "c.safetensors", seed=3)
    images = make_faceset(n=12, size=40, seed=5).images  # not 48 px: the resize path runs too
    plain = FaceClassifier.load(path, device="cpu")
    assert plain.temperature == 1.0
    logits = predict_logits(plain.model, images, input_size=plain.image_size)
    assert torch.allclose(plain.predict_proba(images), logits.softmax(-1), atol=1e-6)

    set_checkpoint_temperature(path, 2.0)
    hot = FaceClassifier.load(path, device="cpu")
    assert hot.temperature == 2.0
    probs = hot.predict_proba(images)
    assert torch.allclose(probs, (logits / 2).softmax(-1), atol=1e-6)
    assert not torch.allclose(probs, logits.softmax(-1), atol=1e-3)
    # with TTA each view is scaled before the views' probabilities are averaged
    flip = hot.predict_proba(images, tta="flip")
    views = torch.stack([predict_logits(hot.model, v, input_size=48) for v in (images, images.flip(-1))])
    assert torch.allclose(flip, (views / 2).softmax(-1).mean(0), atol=1e-6)


def test_calibrate_checkpoint_fits_and_stores(tmp_path):
    path = small_checkpoint(tmp_path / "c.safetensors", seed=1)
    faces = make_faceset(n=48, classes=CLASSES, seed=2)
    rep = calibrate_checkpoint(path, faces, split="synthetic", path_out=tmp_path / "cal.safetensors")
    spec = load_checkpoint(tmp_path / "cal.safetensors").spec
    assert spec["temperature"] == rep["temperature"] and T_MIN <= rep["temperature"] <= T_MAX
    assert spec["calibration"]["split"] == "synthetic" and spec["calibration"]["n"] == 48
    assert rep["nll_after"] <= rep["nll_before"] + 1e-9  # T = 1 was a candidate
