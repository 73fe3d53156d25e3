"""Resolution sweep on a model that looks only at high frequencies."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from lrfer.data.faceset import FaceSet
from lrfer.errors import LrferError
from lrfer.evaluate.report import write_sweep
from lrfer.evaluate.sweep import ensemble_sweep, resolution_sweep
from lrfer.predict.ensemble import ProbabilityEnsemble
from tests.conftest import make_faceset
from tests.predict.test_ensemble import CLASSES, tiny_checkpoint


class TotalVariation(nn.Module):
    """Class 0 ("textured") when the mean absolute neighbour difference exceeds 0.1, else class 1.

    Degrading a face removes exactly what this model measures, so its accuracy must fall with size.
    """

    num_classes = 2

    def forward(self, x):
        tv = (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3)) + (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3))
        score = 50 * (tv - 0.1)
        return torch.stack([score, -score], 1)


def _textured_and_smooth(n=20, size=32) -> FaceSet:
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)  # TV ~ 2/3
    ramp = torch.linspace(0, 255, size).round().to(torch.uint8)  # TV ~ 1/32
    smooth = ramp.view(1, 1, 1, size).expand(n, 1, size, size).clone()
    images = torch.cat([noise, smooth])
    labels = torch.tensor([0] * n + [1] * n)
    return FaceSet(images, labels, ("happy", "neutral"), np.array(["test"] * (2 * n)), name="toy")


def test_accuracy_changes_with_size():
    fs = _textured_and_smooth()
    res = resolution_sweep(TotalVariation(), fs, sizes=(4, 8, 16, 32, 64), batch_size=16)
    assert [r["size"] for r in res] == [4, 8, 16, 32]  # 64 > native 32: skipped
    by_size = {r["size"]: r for r in res}
    assert by_size[32]["accuracy"] == 1.0 and by_size[32]["macro_f1"] == 1.0  # native: untouched
    # at 4 px the noise is averaged away: every face looks smooth
    assert by_size[4]["accuracy"] == 0.5
    assert by_size[4]["macro_f1"] == pytest.approx(1 / 3)  # F1 2/3 for "neutral", 0 for "happy"
    assert all(r["n"] == 40 for r in res)
    accs = [r["accuracy"] for r in res]
    assert accs == sorted(accs)  # monotone for this model


def test_sizes_are_the_faces_pixels_not_the_models_input():
    fs = _textured_and_smooth(n=4)
    res = resolution_sweep(TotalVariation(), fs, sizes=(8, 16, 32, 64), input_size=16)
    assert [r["size"] for r in res] == [8, 16, 32]  # 64 > the faces' 32 px: skipped
    by_size = {r["size"]: r for r in res}
    # at and above the model's 16 px input the faces are only resized to it: the same views
    assert by_size[32]["accuracy"] == by_size[16]["accuracy"]
    assert by_size[8]["accuracy"] < by_size[16]["accuracy"]


def test_progress_and_errors():
    fs = _textured_and_smooth(n=4)
    events = []
    resolution_sweep(TotalVariation(), fs, sizes=(8, 32), progress=events.append)
    sweep_events = [e for e in events if e.task == "sweep"]
    assert [(e.done, e.total, e.info["size"]) for e in sweep_events] == [(1, 2, 8), (2, 2, 32)]
    assert {e.task for e in events} == {"sweep", "sweep 8px", "sweep 32px"}
    with pytest.raises(LrferError, match="above"):
        resolution_sweep(TotalVariation(), fs, sizes=(64,))
    three = FaceSet(fs.images, fs.labels, ("happy", "neutral", "sad"), fs.split)
    with pytest.raises(LrferError, match="with_classes"):
        resolution_sweep(TotalVariation(), three, sizes=(8,))


def test_write_sweep(tmp_path):
    rows = [
        {"size": 16, "accuracy": 0.75, "macro_f1": 0.7, "n": 40},
        {"size": 8, "accuracy": 0.5, "macro_f1": 1 / 3, "n": 40},
    ]
    table = write_sweep(rows, tmp_path, "toy")
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["size"] for r in data] == [8, 16]
    assert set(data[0]) == {"size", "accuracy", "macro_f1", "n"}
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    lines = table.strip().splitlines()
    assert lines[0].startswith("| size")
    assert lines[2] == "| 8 | 50.0 | 33.3 | 40 |"
    assert lines[3] == "| 16 | 75.0 | 70.0 | 40 |"

    table2 = write_sweep({"a": rows, "b": rows[:1]}, tmp_path / "cmp")
    data2 = json.loads((tmp_path / "cmp" / "sweep.json").read_text())
    assert set(data2) == {"a", "b"}
    assert "| 8 | 50.0 | 33.3 | - | - |" in table2



class BandReader(nn.Module):
    """Reads make_faceset's cue (which horizontal third is bright), plus a fixed bias per class."""

    def __init__(self, bias):
        super().__init__()
        self.register_buffer("bias", torch.tensor(bias))

    def forward(self, x):
        return 10 * torch.stack([band.mean((1, 2, 3)) for band in x.chunk(3, dim=-2)], 1) + self.bias


def test_ensemble_sweep_scores_each_member_as_alone_and_their_mean(tmp_path):
    # Members of different input sizes (24 px; 32 px with a 28 px centre crop) on 48 px faces. Their
    # networks are swapped for band readers: one right on every face, one that always says "happy";
    # their mean is right on some faces, and on fewer as the faces shrink and the cue blurs.
    a = tiny_checkpoint(tmp_path / "a.safetensors", "cnn2x2", depth=2, widths=(4, 8), fc=32, fc_layers=1, input_size=24)
    b = tiny_checkpoint(tmp_path / "b.safetensors", "resnet18_fer_slim", image_size=32, crop=28, width=8, blocks=(1, 1))
    faces = make_faceset(30, classes=CLASSES, size=48)
    ens = ProbabilityEnsemble([a, b], device="cpu")
    ens.members[0].model, ens.members[1].model = BandReader([0.0, 0.0, 0.0]), BandReader([0.0, 10.0, 0.0])
    events = []
    rows = ensemble_sweep(ens, faces, sizes=(8, 16, 32, 48, 64), tta="flip", progress=events.append)
    assert list(rows) == ["member0", "member1", "ensemble"]
    sizes = [8, 16, 32, 48]  # 64 > the faces' 48 px: skipped
    for m, name in zip(ens.members, ("member0", "member1")):
        assert rows[name] == resolution_sweep(m.model, faces, sizes, tta="flip", crop=m.crop, input_size=m.image_size)
    assert [r["accuracy"] for r in rows["member0"]] == [1.0] * 4 and [r["accuracy"] for r in rows["member1"]] == [1 / 3] * 4
    mean_acc = [r["accuracy"] for r in rows["ensemble"]]
    assert mean_acc[0] < mean_acc[1] < mean_acc[2]  # not either member's: the mean of their probabilities
    for row in rows["ensemble"]:
        p = ens.predict_proba(faces.images, tta="flip", degrade_to=None if row["size"] >= 48 else row["size"])
        assert row["accuracy"] == pytest.approx((p.argmax(1) == faces.labels).float().mean().item())
    assert [(e.done, e.info["size"]) for e in events] == [(1, 8), (2, 16), (3, 32), (4, 48)]
    with pytest.raises(LrferError, match="with_classes"):
        ensemble_sweep(ens, faces.with_classes(tuple(reversed(CLASSES))), sizes=(8,))
