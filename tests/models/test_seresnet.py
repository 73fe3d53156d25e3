"""SE-ResNet-50 (Massoli et al. 2021) and loading user-supplied initial weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.init_weights import load_init_weights
from lrfer.models.seresnet import SEBottleneck, SEModule, SEResNet


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def tiny(**kw) -> SEResNet:
    """A 2-stage, width-8 SE-ResNet: the same layout and names as seresnet50, 1% of the size."""
    args = {"num_classes": 5, "in_chans": 3, "layers": (1, 1), "width": 8, "reduction": 4, "zero_init_last": False}
    torch.manual_seed(kw.pop("seed", 0))
    m = SEResNet(**{**args, **kw})
    m.model_name = "seresnet50"
    return m.eval()


def test_forward_backward_48px_small_input():
    m = create_model("seresnet50", num_classes=7, in_chans=1, small_input=True)
    x = torch.rand(2, 1, 48, 48)
    features = m.forward_features(m.normalize(x))
    assert features.shape == (2, 2048, 6, 6)  # 48 -> 48, 24, 12, 6
    logits = m.forward_head(features)
    assert logits.shape == (2, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_forward_backward_112px_standard_stem():
    m = create_model("seresnet50", num_classes=7, in_chans=3)
    x = torch.rand(2, 3, 112, 112)
    features = m.forward_features(m.normalize(x))
    assert features.shape == (2, 2048, 4, 4)  # /32, rounded up
    emb = m.forward_head(features, pre_logits=True)
    logits = m.classifier(m.head_drop(emb))
    assert emb.shape == (2, 2048) and logits.shape == (2, 7)
    logits.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_parameter_count_is_resnet50_plus_se():
    # ResNet-50 has 25.56M parameters; SE (reduction 16) adds 2.53M: 28.09M, as timm's seresnet50
    assert 28.0e6 < n_params(create_model("seresnet50", num_classes=1000, in_chans=3)) < 28.2e6
    # with 7 classes (the 1000-way FC is 2.05M of it): 26.05M; the grey 3x3 stem saves 9k more
    assert n_params(create_model("seresnet50", num_classes=7, in_chans=3)) == 26_053_367
    assert n_params(create_model("seresnet50", num_classes=7, in_chans=1, small_input=True)) == 26_044_535


def test_layout_and_torchvision_names():
    m = create_model("seresnet50", num_classes=7, in_chans=3)
    assert [len(getattr(m, f"layer{i}")) for i in (1, 2, 3, 4)] == [3, 4, 6, 3]
    keys = set(m.state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv3.weight", "layer1.0.downsample.0.weight",
              "layer2.0.downsample.1.weight", "layer4.2.se.fc1.bias", "layer4.2.se.fc2.weight", "classifier.weight"):  # fmt: skip
        assert k in keys, k
    assert m.layer1[0].se.fc1.out_channels == 256 // 16
    assert m.conv1.kernel_size == (7, 7) and isinstance(m.maxpool, torch.nn.MaxPool2d)
    small = create_model("seresnet50", small_input=True)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and isinstance(small.maxpool, torch.nn.Identity)
    # stride placement: torchvision (3x3) by default, Caffe / VGGFace2 (first 1x1) on request
    assert m.layer2[0].conv2.stride == (2, 2) and m.layer2[0].conv1.stride == (1, 1)
    caffe = tiny(stride_in_1x1=True)
    assert caffe.layer2[0].conv1.stride == (2, 2) and caffe.layer2[0].conv2.stride == (1, 1)


def test_se_output_is_input_times_sigmoid_gate():
    torch.manual_seed(0)
    se = SEModule(32, reduction=16)
    x = torch.randn(3, 32, 5, 5)
    gate = se.gate(x)
    assert gate.shape == (3, 32, 1, 1)
    assert (gate > 0).all() and (gate < 1).all()
    assert torch.allclose(se(x), x * gate)
    # the gate is the sigmoid of the excitation of the squeezed (averaged) input
    s = x.mean((2, 3), keepdim=True)
    assert torch.allclose(gate, torch.sigmoid(se.fc2(torch.relu(se.fc1(s)))))
    # per sample: another sample's content does not change this one's gate
    x2 = x.clone()
    x2[1:] = torch.randn(2, 32, 5, 5)
    assert torch.allclose(se.gate(x2)[0], gate[0])


def test_se_sits_on_the_residual_branch():
    torch.manual_seed(0)
    block = SEBottleneck(16, 4).eval()
    x = torch.randn(2, 16, 6, 6)
    with torch.no_grad():
        y = block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(x))))))
        y = block.bn3(block.conv3(y))
        assert torch.allclose(block(x), torch.relu(y * block.se.gate(y) + x), atol=1e-6)


# ---------------------------------------------------------------------------- load_init_weights
def test_load_init_weights_rgb_to_gray_and_classifier_skipped(tmp_path):
    src = tiny(num_classes=1000, seed=1)
    sd = {("fc." + k[len("classifier.") :] if k.startswith("classifier.") else k): v for k, v in src.state_dict().items()}
    torch.save(sd, tmp_path / "tv.pth")  # torchvision-style names (fc.*)
    dst = tiny(num_classes=7, in_chans=1, seed=2)
    rep = load_init_weights(dst, tmp_path / "tv.pth")
    n = len(sd)
    assert len(rep["matched"]) == n - 2  # everything but fc.weight, fc.bias
    assert set(rep["skipped"]) == {"fc.weight", "fc.bias"}
    assert all(r.startswith("classifier") for r in rep["skipped"].values())
    assert rep["adapted"] == ["conv1.weight (RGB->gray)"]
    assert set(rep["missing"]) == {"classifier.weight", "classifier.bias"}
    # RGB -> gray: the first convolution summed over colour, so a grey face gives the RGB net's response
    assert torch.allclose(dst.conv1.weight, src.conv1.weight.sum(1, keepdim=True))
    gray = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(dst.forward_head(dst.forward_features(dst.normalize(gray)), pre_logits=True),
                              src.forward_head(src.forward_features(src.normalize(gray.expand(-1, 3, -1, -1))), pre_logits=True), atol=1e-4)  # fmt: skip
    for k in ("layer2.0.se.fc1.weight", "layer1.0.bn3.running_mean"):
        assert torch.equal(dst.state_dict()[k], src.state_dict()[k])


def test_load_init_weights_full_match_safetensors_and_nested(tmp_path):
    src = tiny(seed=1)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, tmp_path / "nested.pth")
    x = torch.rand(2, 3, 32, 32)
    for name in ("w.safetensors", "nested.pth"):
        dst = tiny(seed=2)
        rep = load_init_weights(dst, tmp_path / name)
        assert len(rep["matched"]) == len(src.state_dict()) and not rep["skipped"] and not rep["missing"] and not rep["adapted"]
        with torch.no_grad():
            assert torch.allclose(dst(x), src(x))


def test_load_init_weights_maps_vggface2_caffe_names(tmp_path):
    """The Oxford VGGFace2 SE-ResNet-50 layout (conv2_1_1x1_reduce, ...), BGR input, conv classifier."""
    src = tiny(stride_in_1x1=True, seed=1)
    parts = {"conv1": "1x1_reduce", "bn1": "1x1_reduce_bn", "conv2": "3x3", "bn2": "3x3_bn", "conv3": "1x1_increase",
             "bn3": "1x1_increase_bn", "se.fc1": "1x1_down", "se.fc2": "1x1_up", "downsample.0": "1x1_proj", "downsample.1": "1x1_proj_bn"}  # fmt: skip
    caffe = {}
    for k, v in src.state_dict().items():
        if k.startswith("layer"):
            stage, block, rest = k.split(".", 2)
            part, leaf = rest.rsplit(".", 1)
            caffe[f"conv{int(stage[5:]) + 1}_{int(block) + 1}_{parts[part]}.{leaf}"] = v
        elif k.startswith(("conv1.", "bn1.")):
            caffe[k.replace("conv1.", "conv1_7x7_s2.").replace("bn1.", "conv1_7x7_s2_bn.")] = v
    caffe["conv1_7x7_s2.weight"] = src.conv1.weight.flip(1)  # Caffe networks take BGR
    caffe["classifier.weight"] = torch.randn(8631, 32, 1, 1)  # VGGFace2 identities, a 1x1 conv
    torch.save(caffe, tmp_path / "senet50_ft.pth")
    dst = tiny(stride_in_1x1=True, seed=2)
    rep = load_init_weights(dst, tmp_path / "senet50_ft.pth")
    assert rep["adapted"] == ["conv1.weight (BGR->RGB)"]
    assert list(rep["skipped"]) == ["classifier.weight"]
    assert set(rep["missing"]) == {"classifier.weight", "classifier.bias"}
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(dst.forward_features(x), src.forward_features(x), atol=1e-5)


def test_load_init_weights_errors(tmp_path):
    with pytest.raises(LrferError, match="no such weights file"):
        load_init_weights(tiny(), tmp_path / "nope.pth")
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(LrferError, match="no tensor of .* fits"):
        load_init_weights(tiny(), tmp_path / "other.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(LrferError, match="not a readable weights file"):
        load_init_weights(tiny(), tmp_path / "junk.pth")


def test_engine_loads_init_weights_before_training(tmp_path):
    from lrfer.models.checkpoint import load_checkpoint
    from lrfer.train.config import load_config
    from lrfer.train.engine import fit
    from tests.conftest import make_faceset

    kwargs = {"width": 8, "blocks": [1, 1]}
    torch.manual_seed(5)
    init = create_model("resnet18_fer_slim", num_classes=3, in_chans=1, **kwargs)
    torch.save(init.state_dict(), tmp_path / "init.pth")
    events = []
    cfg = load_config(None, model="resnet18_fer_slim", model_kwargs=kwargs, image_size=24, epochs=1, batch_size=8, limit_train=16,
                      lr=0.0, weight_decay=0.0, device="cpu", init_weights=str(tmp_path / "init.pth"), augment={"degrade_p": 0.0})  # fmt: skip
    faces = make_faceset(32, size=24)
    fit(cfg, faces.select_split("Training"), None, tmp_path / "run", progress=events.append)
    loaded = [e for e in events if e.task == "init_weights"]
    assert len(loaded) == 1 and len(loaded[0].info["matched"]) == len(init.state_dict()) and "message" in loaded[0].info
    weights = load_checkpoint(tmp_path / "run" / "last.safetensors").weights()
    assert torch.equal(weights["stem.0.weight"], init.state_dict()["stem.0.weight"])  # lr 0: still the initial weights
    assert torch.equal(weights["classifier.weight"], init.state_dict()["classifier.weight"])
    with pytest.raises(LrferError, match="init_weights: no such file"):
        load_config(None, init_weights=str(tmp_path / "missing.pth")).validate()
