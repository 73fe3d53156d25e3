"""SRGAN generator (SRResNet) and discriminator, and Liu et al. 2019's model B (resnet50sr, resnet50_fer)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrfer.errors import LrferError
from lrfer.models import create_model, list_models
from lrfer.models.checkpoint import load_checkpoint, model_spec, save_checkpoint
from lrfer.models.resnet50sr import ResNet50FER, ResNet50SR
from lrfer.models.srgan import SRGANDiscriminator, SRResNet, srgan_discriminator

TINY_SR = {"n_feats": 8, "n_blocks": 1}
SHALLOW = {"layers": [1, 1, 1, 1]}  # resnet50_fer with one bottleneck a stage: the same code, quicker


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------- generator
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_output_shapes(scale):
    m = create_model("srresnet_light", in_chans=1, scale=scale)
    assert m(torch.rand(2, 1, 12, 10)).shape == (2, 1, 12 * scale, 10 * scale)
    rgb = create_model("srresnet_light", in_chans=3, scale=scale)
    assert rgb(torch.rand(2, 3, 8, 8)).shape == (2, 3, 8 * scale, 8 * scale)


def test_x2_upsampling_starts_as_bicubic_and_learns_a_residual():
    torch.manual_seed(0)
    m = create_model("srresnet_light", scale=2).eval()
    x = torch.rand(3, 1, 24, 24)
    bicubic = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    assert torch.equal(m(x), bicubic)  # zero-initialised tail + bicubic skip
    assert [s.shuffle.upscale_factor for s in create_model("srresnet_light", scale=4).upsample] == [2, 2]
    # Ledig et al.'s exact network (no bicubic skip) does not start as bicubic, and has the same parameters
    plain = create_model("srresnet_light", scale=2, skip="none")
    assert not torch.allclose(plain(x), bicubic, atol=1e-3) and n_params(plain) == n_params(m)
    # one MSE step moves the output away from bicubic (the tail's gradient is not zero)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    m.train()
    F.mse_loss(m(F.interpolate(x, scale_factor=0.5, mode="area")), x).backward()
    assert m.tail.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(m.eval()(x), bicubic)


def test_paper_configuration_and_parameter_counts():
    paper = create_model("srresnet", in_chans=3, scale=4)
    assert (paper.n_blocks, paper.n_feats) == (16, 64)
    assert paper.head[0].kernel_size == (9, 9) and paper.tail.kernel_size == (9, 9)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in paper.modules()) == 2 * 16 + 1
    assert sum(isinstance(m, torch.nn.PReLU) for m in paper.modules()) == 1 + 16 + 2
    # SRGAN's published generator (RGB, x4) has about 1.5M parameters
    count = n_params(paper)
    assert count == 1_550_659 and abs(count - 1.5e6) / 1.5e6 < 0.04
    assert n_params(create_model("srresnet", in_chans=1, scale=2)) == 1_382_145  # model B's x2 on grayscale faces
    light = create_model("srresnet_light", in_chans=1, scale=2)
    assert (light.n_blocks, light.n_feats) == (4, 32) and n_params(light) < 0.1 * count
    assert set(list_models("sr")) >= {"srresnet", "srresnet_light"}
    assert "srresnet" not in list_models("classifier")
    with pytest.raises(LrferError, match="scale 5"):
        create_model("srresnet_light", scale=5)
    with pytest.raises(LrferError, match="skip"):
        create_model("srresnet_light", skip="bilinear")


# ---------------------------------------------------------------------------- discriminator
def test_discriminator_on_96_px_and_smaller_faces():
    torch.manual_seed(0)
    d = srgan_discriminator(in_chans=1, config="paper")
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert d.head[2].out_features == 1024  # the paper's Dense(1024)
    x = torch.rand(4, 1, 96, 96, requires_grad=True)
    logits = d(x)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0
    assert d(torch.rand(2, 1, 48, 48)).shape == (2,) and d(torch.rand(2, 1, 24, 24)).shape == (2,)
    assert n_params(d) == 5_212_417  # global pooling instead of flattening 6x6x512: not 23.6M
    light = srgan_discriminator(in_chans=3, config="light")
    assert isinstance(light, SRGANDiscriminator) and light(torch.rand(2, 3, 96, 96)).shape == (2,)
    with pytest.raises(LrferError, match="discriminator config"):
        srgan_discriminator(config="huge")


# ---------------------------------------------------------------------------- fronted + SRResNet
@pytest.fixture(scope="module")
def srresnet_ckpt(tmp_path_factory):
    """A small x2 SRResNet checkpoint whose residual is not zero (as a trained one)."""
    torch.manual_seed(0)
    m = create_model("srresnet_light", in_chans=1, scale=2, **TINY_SR)
    with torch.no_grad():
        m.tail.weight.normal_(0, 0.01)
    return save_checkpoint(tmp_path_factory.mktemp("srgan") / "srresnet_x2.safetensors", m, model_spec(m, (), 1, 24))


def test_fronted_accepts_an_srresnet_checkpoint(srresnet_ckpt):
    m = create_model("fronted", num_classes=7, in_chans=1, classifier="resnet18_fer_slim", classifier_kwargs={"width": 8}, stn=False, sr=str(srresnet_ckpt))
    assert isinstance(m.sr, SRResNet) and m.sr_scale == 2 and not m.sr.training
    assert m.model_kwargs["sr"] == {"name": "srresnet_light", "in_chans": 1, "scale": 2, **TINY_SR, "init": str(srresnet_ckpt)}
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        expected = load_checkpoint(srresnet_ckpt).build_model()(x).clamp(0, 1)
        assert torch.equal(m.front(x), expected)  # the checkpoint's weights, clamped
    assert m(x).shape == (2, 7)


# ---------------------------------------------------------------------------- model B
def test_resnet50sr_gives_96_px_faces_to_resnet50(srresnet_ckpt):
    torch.manual_seed(0)
    m = create_model("resnet50sr", num_classes=7, in_chans=1, sr=str(srresnet_ckpt))
    assert isinstance(m, ResNet50SR) and isinstance(m.net, ResNet50FER) and m.stn is None and m.sr_mode == "enlarge"
    assert not any(p.requires_grad for p in m.sr.parameters())  # frozen by default
    assert n_params(m.net) == 23_516_103  # torchvision ResNet-50 with a 7-class head, 1-channel stem
    seen = []
    m.net.conv1.register_forward_hook(lambda mod, inp, out: seen.append(tuple(inp[0].shape)))
    m.eval()
    with torch.no_grad():
        logits = m(torch.rand(2, 1, 48, 48))
    assert logits.shape == (2, 7) and seen == [(2, 1, 96, 96)]


def test_resnet50sr_without_sr_is_resnet50_on_bicubic_faces():
    m = create_model("resnet50sr", num_classes=3, in_chans=1, classifier_kwargs=SHALLOW)
    assert m.model_kwargs["sr"] == {"name": "srresnet_light", "scale": 2, "in_chans": 1}
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(m.front(x), F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1))
    m.train()  # frozen SR stays in eval mode and stays bicubic
    assert not m.sr.training


def test_resnet50_fer_is_torchvision_layout_and_loads_imagenet_weights(tmp_path):
    import torchvision
    from torchvision.models.resnet import Bottleneck, ResNet

    own = create_model("resnet50_fer", num_classes=1000, in_chans=3).state_dict()
    tv = torchvision.models.resnet50(weights=None).state_dict()
    assert {k.replace("fc.", "classifier.", 1): v.shape for k, v in tv.items()} == {k: v.shape for k, v in own.items()}
    # a torchvision-layout ImageNet file (shallow here, for speed), loaded into a grayscale 7-class model
    torch.manual_seed(1)
    imagenet = ResNet(Bottleneck, SHALLOW["layers"]).state_dict()
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(imagenet, path)
    m = create_model("resnet50_fer", num_classes=7, in_chans=1, pretrained_path=str(path), **SHALLOW)
    rep = m.init_report
    assert "conv1.weight (RGB->gray)" in rep["adapted"] and set(rep["skipped"]) == {"fc.weight", "fc.bias"}
    assert torch.equal(m.conv1.weight, imagenet["conv1.weight"].sum(1, keepdim=True))
    assert torch.equal(m.layer4[0].conv2.weight, imagenet["layer4.0.conv2.weight"])
    assert "pretrained_path" not in m.model_kwargs  # a checkpoint rebuilds without the ImageNet file
    # the same through model B: into its ResNet-50, and not recorded either
    b = create_model("resnet50sr", num_classes=7, in_chans=1, pretrained_path=str(path), classifier_kwargs=SHALLOW)
    assert torch.equal(b.net.layer4[0].conv2.weight, imagenet["layer4.0.conv2.weight"]) and b.init_report["matched"]
    assert "pretrained_path" not in b.model_kwargs and "pretrained_path" not in b.model_kwargs["classifier_kwargs"]
    with pytest.raises(LrferError, match="no such weights file"):
        create_model("resnet50_fer", pretrained_path=str(tmp_path / "missing.pth"), **SHALLOW)


def test_resnet50sr_checkpoint_round_trip_without_the_sr_file(srresnet_ckpt, tmp_path):
    import shutil

    sr = shutil.copy(srresnet_ckpt, tmp_path / "sr.safetensors")
    torch.manual_seed(0)
    m = create_model("resnet50sr", num_classes=3, in_chans=1, sr=str(sr), classifier_kwargs=SHALLOW).eval()
    path = save_checkpoint(tmp_path / "b.safetensors", m, model_spec(m, ("angry", "happy", "neutral"), 1, 48))
    (tmp_path / "sr.safetensors").unlink()
    rebuilt = load_checkpoint(path).build_model()
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), m(x))


def test_init_weights_reach_the_classifier_behind_the_front_end(tmp_path):
    """``--init-weights`` with a torchvision ResNet-50 file loads into resnet50sr's inner ResNet-50."""
    import torchvision

    from lrfer.models import create_model
    from lrfer.models.init_weights import load_init_weights

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    model = create_model("resnet50sr", num_classes=7, in_chans=1)
    report = load_init_weights(model, tmp_path / "r50.pth")
    assert "conv1.weight (RGB->gray)" in report["adapted"] and len(report["matched"]) > 300
