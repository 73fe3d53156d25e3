"""SRGAN training (model B's SR stage): the optimisation steps, the run's files and checkpoint, the
pluggable feature network and its errors, and the model B recipe."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.models.srgan import SRResNet, srgan_discriminator
from lrfer.train.config import load_config
from lrfer.train.engine import fit
from lrfer.train.sr import evaluate_sr
from lrfer.train.srgan import VGG_FEATURE_SCALE, ContentFeatures, SRGANConfig, SRGANTrainer, load_feature_net, measure_feature_scale, train_srgan
from tests.conftest import make_faceset

TINY_SR = {"n_feats": 8, "n_blocks": 1}


@pytest.fixture(scope="module")
def feature_ckpt(tmp_path_factory):
    """A small lrfer FER classifier checkpoint to take content features from (the shipped one is slower)."""
    torch.manual_seed(0)
    m = create_model("resnet18_fer_slim", num_classes=3, in_chans=1, width=4, blocks=(1, 1))
    return save_checkpoint(tmp_path_factory.mktemp("feat") / "fer.safetensors", m, model_spec(m, ("angry", "happy", "neutral"), 1, 48))


def _hr(n=8, seed=0):
    return make_faceset(n, size=48, seed=seed).images.float() / 255


# ---------------------------------------------------------------------------- steps
def test_gan_steps_reduce_the_content_loss_and_leave_the_feature_net_alone(feature_ckpt):
    torch.manual_seed(0)
    cfg = SRGANConfig(model_kwargs=TINY_SR)  # SRGAN's lr 1e-4 (Adam's first steps at 1e-3 overshoot the zero-initialised 9x9 tail)
    features = load_feature_net(str(feature_ckpt))
    g = create_model("srresnet_light", in_chans=1, scale=2, **TINY_SR)
    d = srgan_discriminator(1, "light")
    hr = _hr()
    scale = measure_feature_scale(features, hr)
    frozen = {k: v.clone() for k, v in features.state_dict().items()}
    d_before = {k: v.clone() for k, v in d.state_dict().items()}
    trainer = SRGANTrainer(g, d, features, cfg, scale)

    def content():
        # batch statistics (train mode): 3 steps barely move BN's running averages, so eval mode would
        # measure their lag rather than what the steps did
        g.train()
        with torch.no_grad():
            return float(trainer.content_loss(g(torch.nn.functional.interpolate(hr, scale_factor=0.5, mode="area")), hr))

    before = content()
    logs = [trainer.gan_step(hr) for _ in range(3)]
    after = content()
    assert after < before, (before, after)
    assert all(math.isfinite(float(v)) for log in logs for v in log.values())
    assert all(0 < float(log["d_real"]) < 1 for log in logs)
    assert all(torch.equal(frozen[k], v) for k, v in features.state_dict().items())  # frozen, eval mode
    assert all(p.grad is None for p in features.parameters()) and not features.net.training
    assert any(not torch.equal(d_before[k], v) for k, v in d.state_dict().items())  # the discriminator learnt
    # the pixel-MSE warm start (SRResNet) lowers the MSE
    first = float(trainer.pretrain_step(hr)["mse"])
    for _ in range(2):
        last = float(trainer.pretrain_step(hr)["mse"])
    assert last < first


def test_feature_scale_makes_the_content_loss_relative(feature_ckpt):
    features = load_feature_net(str(feature_ckpt))
    hr = _hr()
    s = measure_feature_scale(features, hr)
    trainer = SRGANTrainer(create_model("srresnet_light", **TINY_SR), srgan_discriminator(1, "light"), features, SRGANConfig(), s)
    # a black image against the faces: the loss is the relative squared feature error, (phi(hr) - phi(0))^2 / mean(phi(hr)^2)
    with torch.no_grad():
        phi_hr, phi_0 = features(hr), features(torch.zeros_like(hr))
        expected = float(((phi_hr - phi_0) ** 2).mean() / (phi_hr**2).mean())
        assert trainer.content_loss(torch.zeros_like(hr), hr).item() == pytest.approx(expected, rel=1e-4)
        assert trainer.content_loss(hr, hr).item() == 0.0


# ---------------------------------------------------------------------------- a run
def test_train_srgan_writes_a_checkpoint_that_round_trips(feature_ckpt, tmp_path):
    faces = make_faceset(48, size=48)
    events = []
    cfg = SRGANConfig(epochs=1, pretrain_epochs=1, batch_size=8, limit_train=16, lr=1e-3, device="cpu", model_kwargs=TINY_SR, discriminator="light", feature_net=str(feature_ckpt))
    res = train_srgan(cfg, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "gan", progress=events.append)
    for name in ("best.safetensors", "last.safetensors", "pretrain.safetensors", "metrics.jsonl", "config.json", "sr_report.json"):
        assert (tmp_path / "gan" / name).exists()
    rows = [json.loads(line) for line in (tmp_path / "gan" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["epoch"]) for r in rows] == [("pretrain", 1), ("gan", 1)]
    assert {"train_content", "train_adv", "train_d_loss", "val_content", "val_psnr"} <= rows[1].keys()
    assert any(e.task == "srgan_epoch_end" for e in events) and any("feature scale" in e.info.get("message", "") for e in events)
    rep = json.loads((tmp_path / "gan" / "sr_report.json").read_text())
    by_scale = {r["scale"]: r for r in rep["results"]}
    assert set(by_scale) == {2, 4} and by_scale[2]["method"] == "srgan srresnet_light x2"
    assert all(math.isfinite(r["bicubic_psnr"]) and math.isfinite(r["psnr"]) for r in by_scale.values())
    assert rep["srresnet_mse"]["results"][0]["method"] == "srresnet-mse srresnet_light x2"
    assert rep["feature_kind"] == "classifier" and rep["feature_scale"] == pytest.approx(res.feature_scale)
    assert rep["selection"].startswith("lowest validation content loss") and rep["best_epoch"] == res.best_epoch == 1
    # the checkpoint rebuilds the generator with its weights: same PSNR as recorded for the best epoch
    ck = load_checkpoint(res.best_path)
    assert ck.spec["name"] == "srresnet_light" and ck.spec["input_size"] == [1, 24, 24] and ck.info["training"] == "srgan"
    g = ck.build_model()
    assert isinstance(g, SRResNet) and g.n_feats == 8
    val = faces.select_split("PublicTest").images
    assert evaluate_sr(g, val, 2)["psnr"] == pytest.approx(res.best_psnr, abs=1e-6)
    # ... and serves as model B's SR
    b = create_model("resnet50sr", num_classes=3, sr=str(res.best_path), classifier_kwargs={"layers": [1, 1, 1, 1]}).eval()
    with torch.no_grad():
        assert torch.equal(b.front(val[:2].float() / 255), g(val[:2].float() / 255).clamp(0, 1))


def test_feature_net_errors(feature_ckpt, tmp_path):
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(LrferError, match="no such feature network file"):
        SRGANConfig(feature_net=str(missing)).validate()
    with pytest.raises(LrferError, match="no such feature network file"):
        load_feature_net(str(missing))
    # a readable state dict of another network
    torch.save({"features.0.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(LrferError, match="not a torchvision VGG-19"):
        load_feature_net(str(tmp_path / "other.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a weights file")
    with pytest.raises(LrferError, match="not a readable weights file"):
        load_feature_net(str(tmp_path / "junk.pth"))
    sr = create_model("srresnet_light", **TINY_SR)
    sr_path = save_checkpoint(tmp_path / "sr.safetensors", sr, model_spec(sr, (), 1, 24))
    with pytest.raises(LrferError, match="not a classifier"):
        load_feature_net(str(sr_path))
    with pytest.raises(LrferError, match="adversarial epoch"):
        SRGANConfig(epochs=0).validate()
    with pytest.raises(LrferError, match="no such generator checkpoint"):
        SRGANConfig(init_from=str(tmp_path / "gone.safetensors")).validate()
    with pytest.raises(LrferError, match="discriminator"):
        SRGANConfig(discriminator="huge").validate()


def test_vgg19_feature_net(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    vgg = {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}  # torchvision vgg19 keys
    save_file(vgg, str(tmp_path / "vgg19.safetensors"))  # a plain safetensors state dict, not an lrfer checkpoint
    f = load_feature_net(str(tmp_path / "vgg19.safetensors"))
    assert isinstance(f, ContentFeatures) and f.kind == "vgg19" and f.default_scale == VGG_FEATURE_SCALE
    assert len(f.net) == 36 and isinstance(f.net[-1], torch.nn.ReLU)  # features[:36]: up to relu5_4
    assert torch.equal(f.net[34].weight, vgg["features.34.weight"])  # conv5_4
    with torch.no_grad():
        out = f(torch.rand(2, 1, 48, 48))  # grey faces go in as RGB
    assert out.shape == (2, 512, 3, 3) and (out >= 0).all()


def test_default_feature_net_is_the_shipped_classifier():
    from lrfer.predict.classifier import DEFAULT_CHECKPOINT

    f = load_feature_net("")
    assert f.kind == "classifier" and f.source == str(DEFAULT_CHECKPOINT) and f.default_scale == 0
    f.train()
    assert not f.net.training and not any(p.requires_grad for p in f.parameters())
    x = torch.rand(2, 1, 48, 48, requires_grad=True)
    phi = f(x)
    assert phi.shape == (2, 256, 6, 6)
    phi.sum().backward()
    assert x.grad.abs().sum() > 0  # gradients reach the SR output through the frozen network


def test_feature_net_channels_colour_faces_to_luma_grey_faces_to_rgb(feature_ckpt, tmp_path):
    """A grey feature net scores colour faces on their luma (as FaceSet.to_grayscale), with gradients;
    an RGB one sees grey faces replicated (lrfer.data.transforms.match_channels); other counts are refused."""
    grey = load_feature_net(str(feature_ckpt))
    rgb = torch.rand(2, 3, 48, 48, requires_grad=True)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    phi = grey(rgb)
    torch.testing.assert_close(phi, grey(luma.detach()))
    phi.sum().backward()
    assert rgb.grad.abs().sum() > 0  # the content loss trains a colour generator through the grey net

    torch.manual_seed(0)
    m = create_model("resnet18_fer_slim", num_classes=3, in_chans=3, width=4, blocks=(1, 1))
    colour = load_feature_net(str(save_checkpoint(tmp_path / "rgb.safetensors", m, model_spec(m, ("angry", "happy", "neutral"), 3, 48))))
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(colour(x), colour(x.expand(-1, 3, -1, -1)))
    with pytest.raises(LrferError, match="3-channel"):
        colour(torch.rand(2, 2, 48, 48))


# ---------------------------------------------------------------------------- the model B recipe
def test_liu_model_b_recipe_validates_and_trains(tmp_path, monkeypatch):
    import lrfer.train.engine as engine

    monkeypatch.setattr(engine, "_plot_curves", lambda history, path: None)
    cfg = load_config("liu_model_b_fer2013").validate()
    assert cfg.model == "resnet50sr" and cfg.paper["title"] and "71.608" in cfg.paper["reported"]
    assert cfg.model_kwargs["sr"].endswith(".safetensors") and cfg.model_kwargs["sr_trainable"] is False
    assert (cfg.train_split, cfg.val_split, cfg.image_size, cfg.grayscale) == ("Training", "PublicTest", 48, True)
    sr = create_model("srresnet_light", **TINY_SR)
    sr_path = save_checkpoint(tmp_path / "srgan.safetensors", sr, model_spec(sr, (), 1, 24))
    small = load_config(
        "liu_model_b_fer2013", epochs=1, limit_train=16, batch_size=8, eval_batch_size=32, device="cpu", tta="none",
        model_kwargs={**cfg.model_kwargs, "sr": str(sr_path), "classifier_kwargs": {"layers": [1, 1, 1, 1]}},
    )  # fmt: skip
    faces = make_faceset(32, splits=("Training", "PublicTest"))
    res = fit(small, faces.select_split("Training"), faces.select_split("PublicTest"), tmp_path / "run")
    assert 0 <= res.best_metric <= 1
    ck = load_checkpoint(res.best_path)
    assert ck.spec["name"] == "resnet50sr" and ck.spec["input_size"] == [1, cfg.augment.crop, cfg.augment.crop]
    assert ck.build_model()(torch.rand(2, 1, 44, 44)).shape == (2, 3)


# ---------------------------------------------------------------------------- CLI
def test_cli_train_sr_gan(feature_ckpt, tmp_path, capsys):
    import numpy as np

    from lrfer.cli import main

    faces = make_faceset(48, size=48)
    npz = tmp_path / "faces.npz"
    np.savez(npz, images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), usage=faces.split)
    args = ["train-sr", "--gan", "--feature-net", str(feature_ckpt), "--pretrain-epochs", "1", "--data", str(npz), "--epochs", "1",
            "--batch-size", "8", "--limit-train", "16", "--device", "cpu", "--out", str(tmp_path / "gan"), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "srgan srresnet_light x2" in out and "srresnet-mse srresnet_light x2" in out and "checkpoint:" in out
    assert json.loads((tmp_path / "gan" / "sr_report.json").read_text())["val_split"] == "PublicTest"
    # a missing feature network and GAN flags without --gan are one-line errors (exit code 2), before any data is read
    assert main(["train-sr", "--gan", "--feature-net", str(tmp_path / "vgg19.pth"), "--data", str(npz)]) == 2
    assert "no such feature network file" in capsys.readouterr().err
    assert main(["train-sr", "--pretrain-epochs", "2", "--data", str(npz)]) == 2
    assert "--gan" in capsys.readouterr().err


@pytest.mark.parametrize("killed_at", [1, 3])  # in the MSE warm start; in the adversarial phase
def test_train_srgan_resumes_after_a_kill_as_if_never_stopped(feature_ckpt, tmp_path, killed_at):
    from tests.train.test_sr import Killed, assert_same_weights, killed_after

    faces = make_faceset(48, size=48)
    train, val = faces.select_split("Training"), faces.select_split("PublicTest")
    cfg = SRGANConfig(epochs=2, pretrain_epochs=2, batch_size=8, limit_train=16, lr=1e-3, device="cpu", model_kwargs=TINY_SR, discriminator="light", feature_net=str(feature_ckpt))
    full = train_srgan(cfg, train, val, tmp_path / "full")
    with pytest.raises(Killed):
        train_srgan(cfg, train, val, tmp_path / "cut", progress=killed_after("srgan_epoch_end", killed_at))
    events = []
    resumed = train_srgan(cfg, train, val, tmp_path / "cut", resume=True, progress=events.append)
    assert [e.done for e in events if e.task == "srgan_epoch_end"] == list(range(killed_at + 1, 5))  # nothing trained twice
    assert_same_weights(full.last_path, resumed.last_path)
    assert_same_weights(full.best_path, resumed.best_path)
    d_full, d_cut = (load_checkpoint(r.last_path).state["trainer"]["discriminator"] for r in (full, resumed))
    assert all(torch.equal(d_full[k], d_cut[k]) for k in d_full)
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["epoch"]) for r in rows] == [("pretrain", 1), ("pretrain", 2), ("gan", 1), ("gan", 2)]
    assert resumed.best_epoch == full.best_epoch and resumed.best_content == pytest.approx(full.best_content)
