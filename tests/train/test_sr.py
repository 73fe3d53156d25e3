"""SR training, the STN + SR front end (fronted), and the Qin 2021 recipes (PSNR / SSIM: tests/evaluate/test_metrics.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.models.edsr import EDSR
from lrfer.train.config import list_recipes, load_config
from lrfer.train.engine import fit
from lrfer.train.sr import SRConfig, train_sr
from tests.conftest import make_faceset

# ---------------------------------------------------------------------------- train_sr
TINY_SR = {"n_feats": 8, "n_blocks": 1}


def test_train_sr_writes_checkpoint_and_report(tmp_path):
    faces = make_faceset(64, size=48)
    events = []
    cfg = SRConfig(epochs=2, batch_size=8, limit_train=16, lr=1e-3, lr_step=1, device="cpu", model_kwargs=TINY_SR)
    res = train_sr(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "sr", progress=events.append)
    for name in ("best.safetensors", "last.safetensors", "metrics.jsonl", "config.json", "sr_report.json"):
        assert (tmp_path / "sr" / name).exists()
    hist = [json.loads(line) for line in (tmp_path / "sr" / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2] and hist[1]["lr"] == pytest.approx(5e-4)  # halved
    assert any(e.task == "sr_epoch_end" for e in events)
    rep = json.loads((tmp_path / "sr" / "sr_report.json").read_text())
    rows = {r["scale"]: r for r in rep["results"]}
    assert set(rows) == {2, 4} and rep["n_faces"] == 32
    assert rows[2]["method"] == "edsr_light x2" and rows[4]["method"] == "edsr_light x2 applied 2 times"
    for r in rows.values():
        assert np.isfinite([r["psnr"], r["ssim"], r["bicubic_psnr"], r["bicubic_ssim"]]).all()
        assert 0 < r["ssim"] <= 1 and r["psnr_gain"] == pytest.approx(r["psnr"] - r["bicubic_psnr"])
    assert rows[4]["bicubic_psnr"] < rows[2]["bicubic_psnr"]  # x4 is harder
    ck = load_checkpoint(res.best_path)
    assert ck.spec["name"] == "edsr_light" and ck.spec["input_size"] == [1, 24, 24]
    m = ck.build_model()
    assert isinstance(m, EDSR) and m.scale == 2 and m.n_feats == 8


def test_train_sr_x4_from_x2_with_holdout(tmp_path):
    faces = make_faceset(48, size=48)
    small = SRConfig(epochs=1, batch_size=8, limit_train=8, device="cpu", model_kwargs=TINY_SR)
    x2 = train_sr(small, faces, None, tmp_path / "x2")  # no validation faces: 10% held out
    cfg = SRConfig(epochs=1, batch_size=8, limit_train=8, scale=4, init_from=str(x2.best_path), device="cpu", model_kwargs=TINY_SR)
    x4 = train_sr(cfg, faces, None, tmp_path / "x4")
    rows = {r["scale"]: r for r in x4.report["results"]}
    assert rows[4]["method"] == "edsr_light x4" and rows[2]["psnr"] is None  # an x4 model cannot do x2
    assert load_checkpoint(x4.best_path).info["copied_tensors"] > 0
    with pytest.raises(LrferError, match="--scale 4"):
        SRConfig(init_from=str(x2.best_path)).validate()


def test_cli_train_sr(tmp_path, capsys):
    from lrfer.cli import main

    faces = make_faceset(48, size=48)
    npz = tmp_path / "faces.npz"
    np.savez(npz, images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), usage=faces.split)
    rc = main(["train-sr", "--data", str(npz), "--epochs", "1", "--limit-train", "16", "--device", "cpu", "--out", str(tmp_path / "sr"), "--no-progress"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "checkpoint:" in out and "x2 applied 2 times" in out
    rep = json.loads((tmp_path / "sr" / "sr_report.json").read_text())
    assert rep["val_split"] == "PublicTest" and rep["n_faces"] == 24
    # --init-from without --scale 4 is a one-line error (exit code 2), before any data is read
    assert main(["train-sr", "--data", str(npz), "--init-from", str(tmp_path / "sr" / "best.safetensors")]) == 2
    assert "--scale 4" in capsys.readouterr().err
    # the finished run is neither trained over by accident nor lost: --resume extends it
    argv = ["train-sr", "--data", str(npz), "--limit-train", "16", "--device", "cpu", "--out", str(tmp_path / "sr"), "--no-progress"]
    assert main([*argv, "--epochs", "2"]) == 2 and "already holds a training run (epoch 1 done)" in capsys.readouterr().err
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    assert "epoch 2/2" in capsys.readouterr().err
    assert [json.loads(line)["epoch"] for line in (tmp_path / "sr" / "metrics.jsonl").read_text().splitlines()] == [1, 2]


# ---------------------------------------------------------------------------- fronted
@pytest.fixture(scope="module")
def sr_ckpt(tmp_path_factory):
    """A small x2 EDSR checkpoint whose residual is not zero (as a trained one)."""
    torch.manual_seed(0)
    m = create_model("edsr_light", in_chans=1, scale=2, **TINY_SR)
    with torch.no_grad():
        m.tail.weight.normal_(0, 0.01)
    return save_checkpoint(tmp_path_factory.mktemp("sr") / "edsr_x2.safetensors", m, model_spec(m, (), 1, 24))


def _fronted(sr, in_chans=1, stn=True, **kw):
    return create_model("fronted", num_classes=7, in_chans=in_chans, classifier="resnet18_fer_slim", classifier_kwargs={"width": 8}, stn=stn, sr=sr, **kw)


def test_fronted_forward_backward_with_frozen_sr(sr_ckpt):
    torch.manual_seed(0)
    m = _fronted(str(sr_ckpt)).train()
    assert m.sr.training is False  # frozen: eval mode even in train mode
    assert not any(p.requires_grad for p in m.sr.parameters())
    x = torch.rand(4, 1, 48, 48)
    assert m.front(x).shape == (4, 1, 96, 96)  # enlarge mode: the classifier sees 96 px
    logits = m(x)
    assert logits.shape == (4, 7)
    emb, logits2 = m.embed_and_classify(x)
    assert emb.shape == (4, m.num_features) and m.classifier is m.net.classifier
    (logits.sum() + logits2.sum()).backward()
    assert m.stn.fc_theta.weight.grad.abs().sum() > 0  # gradients reach the STN through the SR model
    assert all(p.grad is None for p in m.sr.parameters())
    before = {k: v.clone() for k, v in m.sr.state_dict().items()}
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in m.sr.state_dict().items())
    assert all(torch.equal(v, load_checkpoint(sr_ckpt).weights()[k]) for k, v in m.sr.state_dict().items())


def test_fronted_checkpoint_round_trip_without_the_sr_file(sr_ckpt, tmp_path):
    path = shutil.copy(sr_ckpt, tmp_path / "sr.safetensors")
    torch.manual_seed(0)
    m = _fronted(str(path))
    assert m.model_kwargs["sr"] == {"name": "edsr_light", "in_chans": 1, "scale": 2, **TINY_SR, "init": str(path)}
    fit_like = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    m(torch.rand(4, 1, 48, 48)).sum().backward()
    fit_like.step()  # the weights differ from any fresh init
    classes = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    ckpt_path = save_checkpoint(tmp_path / "fronted.safetensors", m, model_spec(m, classes, 1, 48))
    (tmp_path / "sr.safetensors").unlink()  # rebuilding must not need the SR file
    rebuilt = load_checkpoint(ckpt_path).build_model()
    assert not any(p.requires_grad for p in rebuilt.sr.parameters())
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), m.eval()(x))


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # the 0-class classifier built to be rejected
def test_fronted_modes_channels_and_errors(sr_ckpt, tmp_path):
    x = torch.rand(2, 1, 48, 48)
    restore = _fronted(str(sr_ckpt), sr_mode="restore")
    assert restore.front(x).shape == (2, 1, 48, 48) and restore(x).shape == (2, 7)
    odd = torch.rand(2, 1, 45, 45)
    assert restore.front(odd).shape == (2, 1, 45, 45)
    rgb = _fronted(str(sr_ckpt), in_chans=3)  # a grayscale SR model applied channel by channel
    assert rgb.front(torch.rand(2, 3, 44, 44)).shape == (2, 3, 88, 88)
    spec_only = _fronted({"name": "edsr_light", "scale": 2, "init": str(tmp_path / "gone.safetensors")})
    assert spec_only(x).shape == (2, 7)  # a spec whose weights file is gone: random SR, weights come from a checkpoint
    trainable = _fronted({"name": "edsr_light", "scale": 2}, sr_trainable=True, stn=False)
    trainable(x).sum().backward()
    assert trainable.sr.training and all(p.grad is not None for p in trainable.sr.parameters())
    with pytest.raises(LrferError, match="no such SR checkpoint"):
        _fronted(str(tmp_path / "missing.safetensors"))
    with pytest.raises(LrferError, match="not a super-resolution model"):
        _fronted({"name": "resnet18_fer_slim"})
    with pytest.raises(LrferError, match="sr_mode"):
        _fronted(None, sr_mode="zoom")
    plain = _fronted(None)  # STN + classifier only
    assert plain.front(x).shape == x.shape and torch.allclose(plain.front(x), x, atol=1e-5)


# ---------------------------------------------------------------------------- recipes
@pytest.fixture
def _no_curves(monkeypatch):
    """curves.png is the engine's business (tests/train/test_engine.py); skip drawing it here."""
    import lrfer.train.engine as engine

    monkeypatch.setattr(engine, "_plot_curves", lambda history, path: None)


QIN_RECIPES = sorted(r for r in list_recipes() if r.startswith("qin_"))


def test_the_four_ablation_recipes_exist():
    for ds in ("fer2013", "ckplus"):
        assert {f"qin_{v}_{ds}" for v in ("base", "stn", "sr", "stn_sr")} <= set(QIN_RECIPES)


@pytest.mark.parametrize("name", QIN_RECIPES)
def test_qin_recipe_validates_and_trains(name, sr_ckpt, tmp_path, _no_curves):
    cfg = load_config(name, epochs=1, limit_train=32, batch_size=8, eval_batch_size=32, device="cpu").validate()
    assert cfg.paper["title"] == "Qin 2021 (STN + EDSR front end)" and "73.4" in cfg.paper["reported"]
    kwargs = dict(cfg.model_kwargs)
    if cfg.model == "fronted":
        assert ("sr" in kwargs) == ("_sr_" in name) and kwargs.get("stn", True) == ("_stn" in name)
        if "sr" in kwargs:
            assert kwargs["sr"].endswith(".safetensors")
            kwargs["sr"] = str(sr_ckpt)  # the recipe's SR file comes from `lrfer train-sr`
        kwargs["classifier_kwargs"] = {**kwargs.get("classifier_kwargs", {}), "width": 8}  # small, for speed
    else:
        kwargs["width"] = 8
    cfg.model_kwargs = kwargs
    faces = make_faceset(48, splits=(cfg.train_split, cfg.val_split))
    res = fit(cfg, faces.select_split(cfg.train_split), faces.select_split(cfg.val_split), tmp_path / "run")
    assert 0 <= res.best_metric <= 1
    rebuilt = load_checkpoint(res.best_path).build_model()
    assert rebuilt(torch.rand(2, 1, 48, 48)).shape == (2, 3)


class Killed(Exception):
    pass


def killed_after(task: str, epoch: int):
    """A progress hook that stops a run, like a kill, right after epoch ``epoch`` is written."""

    def hook(event):
        if event.task == task and event.done == epoch:
            raise Killed

    return hook


def assert_same_weights(a_path, b_path):
    a, b = load_checkpoint(a_path).weights("model"), load_checkpoint(b_path).weights("model")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k


def test_train_sr_resumes_after_a_kill_as_if_never_stopped(tmp_path):
    faces = make_faceset(64, size=48)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    cfg = SRConfig(epochs=3, batch_size=8, limit_train=16, lr=1e-3, lr_step=2, device="cpu", model_kwargs=TINY_SR)
    full = train_sr(cfg, train, val, tmp_path / "full")
    with pytest.raises(Killed):
        train_sr(cfg, train, val, tmp_path / "cut", progress=killed_after("sr_epoch_end", 1))
    events = []
    resumed = train_sr(cfg, train, val, tmp_path / "cut", resume=True, progress=events.append)
    assert [e.done for e in events if e.task == "sr_epoch_end"] == [2, 3]  # epoch 1 was not trained again
    assert_same_weights(full.last_path, resumed.last_path)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3] and resumed.best_epoch == full.best_epoch
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
