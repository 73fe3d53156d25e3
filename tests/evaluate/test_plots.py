"""Figures and the report writers produce real files."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from lrfer.data.faceset import FaceSet
from lrfer.errors import LrferError
from lrfer.evaluate.plots import plot_confusion, plot_sweep, plot_training_curves
from lrfer.evaluate.report import evaluate_model, measure_cpu_latency, model_size, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES8 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == PNG_MAGIC and len(data) > 2000


def test_plot_confusion(tmp_path):
    rng = np.random.default_rng(0)
    cm = rng.random((8, 8)) + 4 * np.eye(8)
    cm /= cm.sum(1, keepdims=True)
    path = plot_confusion(cm, CLASSES8, tmp_path / "sub" / "cm.png", "toy")
    assert _is_png(path)
    with pytest.raises(ValueError):
        plot_confusion(cm, CLASSES8[:7], tmp_path / "bad.png")


def test_plot_sweep_single_and_many(tmp_path):
    rows = [{"size": s, "accuracy": a, "macro_f1": a - 0.1, "n": 10} for s, a in [(8, 0.4), (16, 0.6), (48, 0.7)]]
    assert _is_png(plot_sweep(rows, tmp_path / "one.png", "one"))
    other = [{"size": s, "accuracy": a, "macro_f1": a - 0.05, "n": 10} for s, a in [(8, 0.5), (12, 0.55), (16, 0.6)]]
    assert _is_png(plot_sweep({"a": rows, "b": other}, tmp_path / "two.png", "two"))
    # accuracy-only rows: one panel
    assert _is_png(plot_sweep([{"size": 8, "accuracy": 0.5}], tmp_path / "acc.png"))


def test_plot_sweep_other_metrics_one_panel_each(tmp_path):
    """The robustness suite plots recalls and read-negative shares; a None (not measured) is a gap."""
    from PIL import Image

    rows = [{"size": s, "neutral_recall": r, "neutral_read_negative": 1 - r, "happy_read_negative": None} for s, r in [(16, 0.2), (48, 0.3)]]
    metrics = [("neutral_recall", "neutral recall"), ("neutral_read_negative", "neutral read negative"), ("happy_read_negative", "happy read negative")]
    path = plot_sweep({"m": rows, "n": rows[:1]}, tmp_path / "calm.png", "calm", metrics=metrics)
    with Image.open(path) as im:
        assert im.width == 3 * 5 * 120  # three panels of 5 in at 120 dpi
    with Image.open(plot_sweep(rows, tmp_path / "one.png", "one", metrics=metrics[:1])) as im:
        assert im.width == 5 * 120


def test_plot_training_curves(tmp_path):
    rows = [
        {"epoch": e, "train_loss": 2 / e, "train_acc": 1 - 1 / (e + 1), "lr": 0.1 * 0.9**e}
        | ({"val_loss": 2.2 / e, "val_acc": 1 - 1.2 / (e + 1)} if e % 2 == 0 else {})
        for e in range(1, 11)
    ]
    assert _is_png(plot_training_curves(rows, tmp_path / "curves.png"))
    with pytest.raises(ValueError):
        plot_training_curves([], tmp_path / "none.png")


class _Tiny(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)
        self.num_classes = num_classes
        self.in_chans = 1

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def _faceset(n=30):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 12, 12), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 4
    return FaceSet(images, labels, ("angry", "happy", "sad", "neutral"), np.array(["test"] * n), name="toy")


def test_model_size_and_latency():
    model = _Tiny()
    info = model_size(model)
    assert info["params"] == 4 * 9 + 4 + 4 * 3 + 3
    assert info["size_mb"] == pytest.approx(info["params"] * 4 / 1e6)
    lat = measure_cpu_latency(model, (1, 12, 12), runs=2, warmup=1)
    assert lat["ms_per_face_batch1"] > 0 and lat["ms_per_face_batch64"] > 0


def test_evaluate_model_and_write_report(tmp_path):
    fs = _faceset()
    model = _Tiny().train()
    # the model knows 3 of the set's 4 classes: the 7 "neutral" rows (labels i % 4 == 3) are dropped
    result = evaluate_model(model, fs, ("angry", "happy", "sad"), tta="flip", batch_size=8)
    assert model.training  # mode restored
    assert result["n"] == 23 and result["dataset"]["dropped_classes"] == ["neutral"]
    assert set(result["per_class"]) == {"angry", "happy", "sad"}
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["ece"] <= 1 and result["nll"] > 0
    m = result["model"]
    assert m["name"] == "_Tiny" and m["tta_views"] == 2 and m["params"] > 0
    assert m["cpu_latency"]["ms_per_face_batch1"] > 0

    paths = write_report(result, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["accuracy"] == pytest.approx(result["accuracy"])
    assert _is_png(paths["confusion"])

    quick = evaluate_model(_Tiny(num_classes=4), fs, measure_latency=False)  # classes default to the set's
    assert "cpu_latency" not in quick["model"] and quick["n"] == 30
    with pytest.raises(LrferError, match="3 classes"):
        evaluate_model(model, fs, measure_latency=False)
