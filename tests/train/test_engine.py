"""The training loop: learning, exact resume, resume after SIGKILL, 2-process DDP."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint
from lrfer.train.config import load_config
from lrfer.train.engine import fit
from tests.conftest import make_faceset

TINY_RECIPE = """
model = "resnet18_fer_slim"
model_kwargs = { width = 8, blocks = [1, 1] }
image_size = 24
epochs = {epochs}
batch_size = 16
optimizer = "adamw"
lr = 5e-3
weight_decay = 1e-4
schedule = "cosine"
warmup_epochs = 0
ema_decay = 0.9
train_split = "Training"
val_split = "PublicTest"
[augment]
rotate = 5.0
degrade_p = 0.5
degrade_max = 24
crop = 20
"""


def tiny_config(tmp_path: Path, epochs: int = 3, **overrides):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE.replace("{epochs}", str(epochs)))
    return load_config(str(recipe), **overrides), recipe


def write_npz(path: Path, n: int = 256) -> Path:
    faces = make_faceset(n, size=48)
    np.savez(path, images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), usage=faces.split)
    return path


def test_fit_learns_and_writes_files(tmp_path):
    cfg, _ = tiny_config(tmp_path, epochs=5)
    faces = make_faceset(256)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert res.best_metric > 0.8  # 3 classes, chance is 0.33
    for f in ("best.safetensors", "last.safetensors", "metrics.jsonl", "curves.png", "config.json"):
        assert (tmp_path / "run" / f).stat().st_size > 0
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    ck = load_checkpoint(res.best_path)
    assert ck.spec["input_size"] == [1, 20, 20] and ck.spec["image_size"] == 24
    assert ck.info["epoch"] == res.best_epoch


def test_val_every_skips_validation_but_not_the_last_epoch(tmp_path):
    cfg, _ = tiny_config(tmp_path, epochs=3, val_every=2)
    faces = make_faceset(64)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert ["val_acc" in r for r in res.history] == [False, True, True]
    assert res.best_epoch in (2, 3) and res.best_metric == max(r["val_acc"] for r in res.history[1:])
    assert all(r["epoch_seconds"] > 0 for r in res.history)


class Killed(Exception):
    pass


def fit_cut_and_resumed(cfg, train, val, run_dir: Path):
    """Train in ``run_dir``, stopped by an exception after epoch 1, then resumed to the end."""

    def die_after_epoch_1(event):
        if event.task == "epoch_end" and event.done == 1:
            raise Killed

    with pytest.raises(Killed):
        fit(cfg, train, val, run_dir, progress=die_after_epoch_1)
    return fit(cfg, train, val, run_dir, resume=True)


def test_resume_replays_exactly(tmp_path):
    faces = make_faceset(192)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    cfg, _ = tiny_config(tmp_path, epochs=3, center_loss=0.01)
    full = fit(cfg, train, val, tmp_path / "full")
    resumed = fit_cut_and_resumed(cfg, train, val, tmp_path / "cut")
    a = load_checkpoint(full.last_path).weights("model")
    b = load_checkpoint(resumed.last_path).weights("model")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lrfer", *args]


def test_sigkill_then_resume_loses_at_most_one_epoch(tmp_path):
    data = write_npz(tmp_path / "faces.npz", n=512)
    _, recipe = tiny_config(tmp_path, epochs=4)
    out = tmp_path / "run"
    cmd = _cli("train", "--recipe", str(recipe), "--data", str(data), "--out", str(out), "--no-progress")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = load_checkpoint(out / "last.safetensors").info["epoch"]
    assert done_before >= 1
    subprocess.run([*cmd, "--resume"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [json.loads(l) for l in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]  # nothing lost, nothing twice
    assert load_checkpoint(out / "last.safetensors").info["epoch"] == 4


def train_two_processes(recipe: Path, data: Path, out: Path) -> dict:
    """``lrfer train`` under torchrun with 2 CPU processes; returns the ranks' ``ddp_check.json``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a port free now: a fixed one can still be held by an earlier run
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), "-m", "lrfer",
           "train", "--recipe", str(recipe), "--data", str(data), "--out", str(out), "--device", "cpu", "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "ddp_check.json").read_text())


def test_two_process_ddp_ends_with_identical_weights(tmp_path):
    data = write_npz(tmp_path / "faces.npz", n=256)
    _, recipe = tiny_config(tmp_path, epochs=2)
    out = tmp_path / "ddp"
    check = train_two_processes(recipe, data, out)
    assert check["world_size"] == 2
    assert check["fingerprints"][0] == check["fingerprints"][1]
    assert load_checkpoint(out / "last.safetensors").info["epoch"] == 2


def test_cuda_without_an_index_resolves_to_this_process_gpu(monkeypatch):
    """``--device cuda`` must name a GPU index: torch.cuda.set_device refuses a bare "cuda"."""
    from lrfer.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("cuda") == torch.device("cuda", 3)
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("nhwc", [False, True])
def test_channels_last_on_cpu_only_when_asked_and_it_trains_the_same(tmp_path, monkeypatch, nhwc):
    import lrfer.train.engine as engine

    built = []
    monkeypatch.setattr(engine, "create_model", lambda *a, **kw: built.append(create_model(*a, **kw)) or built[-1])
    faces = make_faceset(128)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    cfg, _ = tiny_config(tmp_path, epochs=2, device="cpu", channels_last_cpu=nhwc)
    res = fit(cfg, train, val, tmp_path / "run")
    # one with several input channels: a 1-channel weight is contiguous in both layouts
    conv = next(m for m in built[0].modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) == nhwc
    base = fit(dataclasses.replace(cfg, channels_last_cpu=False), train, val, tmp_path / "base")
    # the memory format changes the convolution kernels, not the arithmetic: same run up to rounding
    assert [r["train_loss"] for r in res.history] == pytest.approx([r["train_loss"] for r in base.history], rel=1e-3)


def test_progressive_size_grows_linearly_then_holds_the_full_size(tmp_path):
    from lrfer.train.engine import progressive_size

    cfg, _ = tiny_config(tmp_path, epochs=10, progressive_min_size=12)  # crop 20 is the full size
    sizes = [progressive_size(cfg, e) for e in range(1, 11)]
    assert sizes[0] == 12 and sizes[5:] == [20] * 5  # progressive_frac 0.5: epochs 6-10 at full size
    assert sizes == sorted(sizes) and all(s % 4 == 0 for s in sizes) and len(set(sizes[:5])) > 2
    off, _ = tiny_config(tmp_path, epochs=10)
    assert {progressive_size(off, e) for e in range(1, 11)} == {20}


@pytest.mark.parametrize("bad", [{"progressive_min_size": 24}, {"progressive_min_size": 2}, {"progressive_min_size": 12, "progressive_frac": 0.0}])
def test_progressive_settings_out_of_range_are_refused(tmp_path, bad):
    from lrfer.errors import LrferError

    cfg, _ = tiny_config(tmp_path, **bad)
    with pytest.raises(LrferError, match="progressive"):
        cfg.validate()


def test_progressive_resizing_feeds_the_model_the_scheduled_sizes(tmp_path, monkeypatch):
    import lrfer.train.engine as engine

    seen: list[tuple[int, int]] = []

    def record_training_sizes(*a, **kw):
        model = create_model(*a, **kw)
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first_conv.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])) if m.training else None)
        return model

    monkeypatch.setattr(engine, "create_model", record_training_sizes)
    faces = make_faceset(64)
    cfg, _ = tiny_config(tmp_path, epochs=4, progressive_min_size=12, progressive_frac=0.5)
    res = fit(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert [r["train_size"] for r in res.history] == [12, 16, 20, 20]
    steps = len(seen) // 4
    assert [seen[i * steps] for i in range(4)] == [(12, 12), (16, 16), (20, 20), (20, 20)]
    assert load_checkpoint(res.best_path).spec["input_size"] == [1, 20, 20]  # inference runs at full size


def test_lr_factor_follows_the_clock_under_a_time_budget(tmp_path):
    from lrfer.train.optim import lr_factor

    cfg, _ = tiny_config(tmp_path, epochs=10, time_budget_minutes=1.0)
    # half the budget spent at step 0: the schedule stands where step 500 of 1000 would
    assert lr_factor(cfg, 0, 100, 1.0, time_frac=0.5) == pytest.approx(lr_factor(cfg, 500, 100, 1.0))
    assert lr_factor(cfg, 0, 100, 1.0, time_frac=0.5) == pytest.approx(0.5)
    assert lr_factor(cfg, 800, 100, 1.0, time_frac=0.5) == lr_factor(cfg, 800, 100, 1.0)  # steps ahead of the clock
    assert lr_factor(cfg, 10, 100, 1.0, time_frac=1.0) == pytest.approx(0.0, abs=1e-12)


class TickingClock:
    """Stands in for the engine's ``time``: every reading advances 10 ms, so a run under a time
    budget takes the same steps however busy the machine is."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.01
        return self.now


def test_time_budget_stops_training_validates_the_last_epoch_and_resume_adds_nothing(tmp_path, monkeypatch):
    import lrfer.train.engine as engine

    monkeypatch.setattr(engine, "time", TickingClock())
    faces = make_faceset(128)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    budget_min = 1.5 / 60
    cfg, _ = tiny_config(tmp_path, epochs=10_000, time_budget_minutes=budget_min, val_every=10_000)
    res = fit(cfg, train, val, tmp_path / "run")
    rows = res.history
    assert 1 < len(rows) < 10_000
    assert rows[-1].get("out_of_time") and not any(r.get("out_of_time") for r in rows[:-1])
    assert "val_acc" in rows[-1] and all("val_acc" not in r for r in rows[:-1])  # validated once, at the end
    spent = sum(r["epoch_seconds"] for r in rows)
    # the epoch in which the budget runs out is the last; one whose validation or bookkeeping
    # spent the rest leaves a last epoch of a single step
    assert spent >= budget_min * 60
    assert spent - rows[-1]["epoch_seconds"] < budget_min * 60 or rows[-1].get("steps") == 1
    assert rows[-1]["lr"] < 0.05 * cfg.lr  # the cosine ran to its end with the clock, not with the 10,000 epochs
    assert res.best_epoch == rows[-1]["epoch"] and res.best_path.exists()
    again = fit(cfg, train, val, tmp_path / "run", resume=True)
    assert again.history == rows and load_checkpoint(again.last_path).info["epoch"] == rows[-1]["epoch"]


@pytest.mark.parametrize("bad", [{"schedule": "step"}, {"time_budget_minutes": -1.0}, {"progressive_min_size": 12}])
def test_time_budget_settings_that_cannot_work_are_refused(tmp_path, bad):
    from lrfer.errors import LrferError

    cfg, _ = tiny_config(tmp_path, **{"time_budget_minutes": 1.0, **bad})
    with pytest.raises(LrferError, match="time_budget_minutes"):
        cfg.validate()


def test_soft_label_weight_blends_one_hot_labels_with_the_soft_ones(tmp_path):
    from lrfer.errors import LrferError
    from lrfer.train.engine import label_targets

    faces = make_faceset(8, size=24)
    soft = torch.softmax(torch.randn(8, faces.num_classes), 1)
    cfg, _ = tiny_config(tmp_path, soft_label_weight=0.25)
    targets = label_targets(dataclasses.replace(faces, soft_labels=soft), cfg.validate())
    one_hot = torch.nn.functional.one_hot(faces.labels, faces.num_classes).float()
    assert torch.allclose(targets, 0.75 * one_hot + 0.25 * soft) and torch.allclose(targets.sum(1), torch.ones(8))
    with pytest.raises(LrferError, match="soft_label_weight 0.25 needs soft labels"):
        label_targets(faces, cfg)
    for bad, match in (({"soft_label_weight": 1.5}, "must lie in"), ({"soft_label_weight": 0.5, "label_mode": "soft"}, "already 'soft'")):
        with pytest.raises(LrferError, match=match):
            tiny_config(tmp_path, **bad)[0].validate()


def test_stem_init_whiten_sets_the_stem_from_the_training_faces_and_refuses_other_models(tmp_path):
    from lrfer.errors import LrferError
    from lrfer.models.checkpoint import load_checkpoint

    faces = make_faceset(64, size=24)
    events = []
    cfg, _ = tiny_config(tmp_path, epochs=1, model="airnet_fer", model_kwargs={"widths": [8, 16], "stem_width": 8},
                         stem_init="whiten", freeze=["stem.0"])
    res = fit(cfg, faces.select_split("Training"), None, tmp_path / "run", progress=events.append)
    assert any(e.task == "stem_init" and e.done == 8 for e in events)
    stem = load_checkpoint(res.last_path).build_model().stem[0].weight
    expected = create_model("airnet_fer", widths=(8, 16), stem_width=8)
    expected.whiten_stem(faces.select_split("Training").resized(24).images.float() / 255)
    assert torch.allclose(stem, expected.stem[0].weight, atol=1e-5)  # frozen: still the whitening basis
    cfg, _ = tiny_config(tmp_path, epochs=1, stem_init="whiten")
    with pytest.raises(LrferError, match="has none"):
        fit(cfg, faces.select_split("Training"), None, tmp_path / "run2")
