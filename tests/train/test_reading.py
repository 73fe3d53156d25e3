"""Readings (lrfer.train.reading, docs/trust.md): a head fitted on a model's frozen embeddings,
stored beside its own head, and the same answers from every backend and command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lrfer.data.readers import load_dataset
from lrfer.errors import LrferError
from lrfer.models.checkpoint import add_reading, load_checkpoint
from lrfer.predict.classifier import FaceClassifier
from lrfer.train.reading import add_fitted_reading, fit_head, reading_targets
from tests.cli.test_cli import assert_clean_error, run, tiny_checkpoint
from tests.conftest import make_faceset

CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def voted_npz(path: Path, n: int = 42) -> Path:
    """A small FER2013-like archive with Training/PublicTest splits and crowd votes that call every
    face the label says is sad 'neutral' (the disagreement the readings are about)."""
    faces = make_faceset(n, classes=CLASSES, seed=5)
    labels = faces.labels.numpy()
    votes = np.eye(7)[labels]
    sad, neutral = CLASSES.index("sad"), CLASSES.index("neutral")
    votes[labels == sad] = 0.2 * np.eye(7)[sad] + 0.8 * np.eye(7)[neutral]
    usage = np.array(["Training" if i % 3 else "PublicTest" for i in range(n)])
    np.savez(path, images=faces.images[:, 0].numpy(), labels=labels, class_names=np.array(CLASSES), usage=usage, soft_labels=votes.astype(np.float32))
    return path


@pytest.fixture
def with_reading(tmp_path) -> Path:
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    add_fitted_reading(ck, load_dataset(voted_npz(tmp_path / "v.npz")), "calm", vote_weight=1.0, sizes=(48, 16))
    return ck


def test_targets_blend_each_label_with_its_votes(tmp_path):
    faces = load_dataset(voted_npz(tmp_path / "v.npz"))
    t = reading_targets(faces, 0.5).numpy()
    sad_row = int(np.flatnonzero(faces.labels.numpy() == CLASSES.index("sad"))[0])
    assert t[sad_row, CLASSES.index("sad")] == pytest.approx(0.5 + 0.5 * 0.2)
    assert t[sad_row, CLASSES.index("neutral")] == pytest.approx(0.4)
    np.testing.assert_allclose(reading_targets(faces, 0.0).numpy(), np.eye(7)[faces.labels.numpy()])
    np.testing.assert_allclose(t.sum(1), 1, atol=1e-6)


def test_the_head_learns_the_targets_and_the_pull_holds_it_near_the_start():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    emb = torch.randn(300, 8, generator=g) + 3 * torch.nn.functional.one_hot(y, 8).float()
    w0, b0 = torch.zeros(3, 8), torch.zeros(3)
    w, b = fit_head(emb, torch.nn.functional.one_hot(y, 3).float(), w0, b0, l2=1e-4)
    assert ((emb @ w.T + b).argmax(1) == y).float().mean() > 0.95
    w_held, _ = fit_head(emb, torch.nn.functional.one_hot(y, 3).float(), w0, b0, l2=10.0)
    assert w_held.norm() < 0.2 * w.norm()


def test_a_reading_is_stored_beside_the_model_and_swaps_only_the_head(with_reading):
    ckpt = load_checkpoint(with_reading)
    assert list(ckpt.readings) == ["calm"] and ckpt.reading == "default"
    rec = ckpt.readings["calm"]
    assert rec["vote_weight"] == 1.0 and rec["abstain"]["chosen"]["split"].endswith("PublicTest") and set(rec["class_prior"]["shares"]) == set(CLASSES)
    view = ckpt.with_reading("calm")
    assert view.reading == "calm" and view.spec["temperature"] == rec["temperature"] and view.spec["abstain"] == rec["abstain"]
    own, other = ckpt.weights("model"), view.weights("model")
    changed = sorted(k for k in own if not torch.equal(own[k], other[k]))
    assert changed == ["classifier.bias", "classifier.weight"]
    # the calm reading's votes move sad faces to neutral: its class shares say so, the model's own targets do not
    assert rec["class_prior"]["shares"]["neutral"] > rec["class_prior"]["shares"]["sad"]


def test_unknown_or_misshapen_readings_are_one_clear_error(with_reading, tmp_path):
    with pytest.raises(LrferError, match="no reading 'nope'.*default, calm"):
        load_checkpoint(with_reading).with_reading("nope")
    with pytest.raises(LrferError, match="is not a tensor of"):
        add_reading(with_reading, "bad", {"classifier.weight": torch.zeros(3, 2)}, {})
    with pytest.raises(LrferError, match="reading name"):
        add_reading(with_reading, "default", {}, {})


def test_onnx_answers_every_reading_as_torch_does(with_reading, tmp_path):
    pytest.importorskip("onnxruntime")
    from lrfer.export import export_onnx, read_onnx_metadata
    from lrfer.runtime.onnx import OnnxClassifier

    onnx_path = export_onnx(with_reading, tmp_path / "m.onnx")
    meta = read_onnx_metadata(onnx_path)
    assert meta["reading"] == "default" and set(meta["readings"]) == {"calm"}
    x = make_faceset(10, classes=CLASSES, seed=9).images
    for reading in (None, "calm"):
        torch_p = FaceClassifier.load(with_reading, "cpu", reading=reading).predict_proba(x).numpy()
        onnx_clf = OnnxClassifier.load(onnx_path, reading=reading)
        np.testing.assert_allclose(onnx_clf.predict_proba(x), torch_p, atol=1e-4)
    calm = OnnxClassifier.load(onnx_path, reading="calm")
    assert calm.reading == "calm" and calm.abstain.min_confidence == load_checkpoint(with_reading).readings["calm"]["abstain"]["min_confidence"]
    with pytest.raises(LrferError, match="no reading 'nope'"):
        OnnxClassifier.load(onnx_path, reading="nope")


def test_the_cli_fits_lists_and_uses_a_reading(capsys, tmp_path):
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    data = voted_npz(tmp_path / "v.npz")
    code, out, err = run(capsys, "add-reading", "--checkpoint", str(ck), "--data", str(data), "--name", "crowd", "--vote-weight", "1",
                         "--sizes", "48", "--out", str(tmp_path / "r.safetensors"), "--no-progress")  # fmt: skip
    assert code == 0, err
    assert "use it with --reading crowd" in out
    code, out, _ = run(capsys, "readings", "--checkpoint", str(tmp_path / "r.safetensors"))
    assert code == 0 and "crowd" in out and "default" in out
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(tmp_path / "r.safetensors"), "--reading", "crowd", "--data", str(data),
                         "--split", "PublicTest", "--out", str(tmp_path / "ev"), "--no-latency", "--no-progress")  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["reading"] == "crowd"
    code, _, err = run(capsys, "evaluate", "--checkpoint", str(tmp_path / "r.safetensors"), "--reading", "nope", "--data", str(data), "--no-progress")
    assert_clean_error(code, err, "no reading 'nope'")
    code, _, err = run(capsys, "add-reading", "--data", str(data), "--name", "x", "--vote-weight", "1")
    assert_clean_error(code, err, "shipped model in place")


def test_a_site_fits_a_reading_to_its_own_labels_without_votes(capsys, tmp_path):
    ck = tiny_checkpoint(tmp_path / "c.safetensors", width=4, blocks=(1,))
    faces = make_faceset(28, classes=CLASSES, seed=2)
    usage = np.array(["train" if i % 2 else "val" for i in range(28)])
    np.savez(tmp_path / "site.npz", images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(CLASSES), split=usage)
    code, out, err = run(capsys, "add-reading", "--checkpoint", str(ck), "--data", str(tmp_path / "site.npz"), "--name", "site", "--vote-weight", "0",
                         "--train-split", "train", "--split", "val", "--sizes", "48", "--data-only", "--no-progress")  # fmt: skip
    assert code == 0, err
    assert load_checkpoint(ck).readings["site"]["fitted"]["data"].endswith("train")
    code, _, err = run(capsys, "add-reading", "--checkpoint", str(ck), "--data", str(tmp_path / "site.npz"), "--name", "x", "--vote-weight", "0.5",
                       "--train-split", "train", "--split", "val", "--no-progress")  # fmt: skip
    assert_clean_error(code, err, "needs soft labels")


def test_a_damaged_reading_is_one_clear_error(with_reading, tmp_path):
    from lrfer.models.checkpoint import _META_KEY, FORMAT, read_safetensors, write_safetensors

    tensors, meta = read_safetensors(with_reading, _META_KEY, FORMAT, "lrfer checkpoint", "")
    meta["model"]["readings"] = ["calm"]
    write_safetensors(tmp_path / "list.safetensors", tensors, _META_KEY, meta)
    with pytest.raises(LrferError, match="readings that are not a table"):
        load_checkpoint(tmp_path / "list.safetensors")
    tensors, meta = read_safetensors(with_reading, _META_KEY, FORMAT, "lrfer checkpoint", "")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("reading/")}
    write_safetensors(tmp_path / "headless.safetensors", tensors, _META_KEY, meta)
    with pytest.raises(LrferError, match="has no head that fits"):
        FaceClassifier.load(tmp_path / "headless.safetensors", reading="calm")
