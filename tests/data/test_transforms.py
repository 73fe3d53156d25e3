"""predict_proba / predict_logits on tiny hand-built models."""

import pytest
import torch
from torch import nn

from lrfer.data.transforms import CPU_BATCH, GPU_BATCH, predict_logits, predict_proba, resolve_batch_size, tta_views
from lrfer.errors import LrferError


class FlatLinear(nn.Module):
    """A fixed linear layer over the flattened image (expects exactly ``in_chans x size x size``)."""

    def __init__(self, size: int, num_classes: int = 3, in_chans: int = 1, symmetric: bool = False, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(num_classes, in_chans, size, size, generator=g)
        if symmetric:  # mirror-symmetric weights: the logits of an image and of its mirror are equal
            w = w + w.flip(-1)
        self.fc = nn.Linear(in_chans * size * size, num_classes)
        with torch.no_grad():
            self.fc.weight.copy_(w.flatten(1))
            self.fc.bias.copy_(torch.randn(num_classes, generator=g))
        self.num_classes = num_classes
        self.in_chans = in_chans

    def forward(self, x):
        return self.fc(x.flatten(1))


def _images(n=10, size=8, chans=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, chans, size, size), generator=g, dtype=torch.uint8)


def test_probabilities_shape_dtype_and_sum():
    x = _images()
    p = predict_proba(FlatLinear(8), x)
    assert p.shape == (10, 3) and p.dtype == torch.float32 and p.device.type == "cpu"
    assert torch.allclose(p.sum(1), torch.ones(10), atol=1e-5)
    assert (p >= 0).all()


def test_matches_direct_forward_and_batching():
    model = FlatLinear(8)
    x = _images()
    expected = model(x.float() / 255).softmax(-1)
    assert torch.allclose(predict_proba(model, x), expected, atol=1e-5)
    assert torch.allclose(predict_proba(model, x, batch_size=3), expected, atol=1e-5)
    # float input in [0, 1] is accepted as it is
    assert torch.allclose(predict_proba(model, x.float() / 255), expected, atol=1e-5)
    # logits share the code path
    assert torch.allclose(predict_logits(model, x, batch_size=4), model(x.float() / 255), atol=1e-5)


def test_flip_tta_is_invariant_for_a_mirror_symmetric_model():
    model = FlatLinear(8, symmetric=True)
    x = _images()
    assert torch.allclose(predict_proba(model, x, tta="flip"), predict_proba(model, x), atol=1e-6)


def test_flip_tta_averages_the_mirror():
    model = FlatLinear(8)
    x = _images()
    xf = x.float() / 255
    expected = (model(xf).softmax(-1) + model(xf.flip(-1)).softmax(-1)) / 2
    p = predict_proba(model, x, tta="flip")
    assert torch.allclose(p, expected, atol=1e-5)
    assert not torch.allclose(p, predict_proba(model, x), atol=1e-3)  # the mirror did matter


def test_tencrop_shape_sum_and_value():
    model = FlatLinear(6)  # trained on 6 px crops of 8 px faces
    x = _images(n=5)
    p = predict_proba(model, x, tta="tencrop", crop=6)
    assert p.shape == (5, 3)
    assert torch.allclose(p.sum(1), torch.ones(5), atol=1e-5)
    # by hand: the four corners, the centre (offset 1), and their mirrors
    xf = x.float() / 255
    crops = [xf[..., :6, :6], xf[..., :6, 2:], xf[..., 2:, :6], xf[..., 2:, 2:], xf[..., 1:7, 1:7]]
    crops += [c.flip(-1) for c in crops]
    expected = torch.stack([model(c).softmax(-1) for c in crops]).mean(0)
    assert torch.allclose(p, expected, atol=1e-5)
    assert tta_views("tencrop", 6) == 10


def test_crop_without_tta_is_a_centre_crop():
    model = FlatLinear(6)
    x = _images(n=4)
    expected = model(x[..., 1:7, 1:7].float() / 255).softmax(-1)
    assert torch.allclose(predict_proba(model, x, crop=6), expected, atol=1e-5)
    # odd margin (8 - 5 = 3): offset floored to 1, as at validation during training
    small = FlatLinear(5)
    expected = small(x[..., 1:6, 1:6].float() / 255).softmax(-1)
    assert torch.allclose(predict_proba(small, x, crop=5), expected, atol=1e-5)


def test_tta_errors():
    x = _images(n=2)
    with pytest.raises(LrferError, match="crop"):
        predict_proba(FlatLinear(6), x, tta="tencrop")
    with pytest.raises(LrferError, match="did you mean"):
        predict_proba(FlatLinear(8), x, tta="flips")
    with pytest.raises(LrferError, match="larger"):
        predict_proba(FlatLinear(8), x, tta="tencrop", crop=12)


def test_input_size_resizes_faces():
    model = FlatLinear(8)
    x = _images(n=4, size=16)
    p = predict_proba(model, x, input_size=8)
    assert p.shape == (4, 3)
    # a constant face stays constant whatever the resize
    const = torch.full((1, 1, 16, 16), 200, dtype=torch.uint8)
    expected = model(torch.full((1, 1, 8, 8), 200 / 255)).softmax(-1)
    assert torch.allclose(predict_proba(model, const, input_size=(8, 8)), expected, atol=1e-5)


def test_degrade_to_changes_input_only_below_native():
    model = FlatLinear(8)
    x = _images()
    base = predict_proba(model, x)
    assert torch.allclose(predict_proba(model, x, degrade_to=8), base)  # native: untouched
    assert not torch.allclose(predict_proba(model, x, degrade_to=2), base, atol=1e-3)


def test_grey_faces_are_replicated_for_rgb_models_and_rgb_for_grey_is_an_error():
    rgb_model = FlatLinear(8, in_chans=3)
    x = _images(n=3)
    expected = rgb_model((x.float() / 255).expand(-1, 3, -1, -1)).softmax(-1)
    assert torch.allclose(predict_proba(rgb_model, x), expected, atol=1e-5)
    with pytest.raises(LrferError, match="to_grayscale"):
        predict_proba(FlatLinear(8), _images(n=2, chans=3))


def test_training_mode_restored_and_progress_reported():
    model = FlatLinear(8).train()
    events = []
    predict_proba(model, _images(n=10), batch_size=4, progress=events.append, task="test")
    assert model.training
    assert [(e.task, e.done, e.total) for e in events] == [("test", 4, 10), ("test", 8, 10), ("test", 10, 10)]
    assert not torch.is_inference(model.fc.weight)


def test_empty_input():
    p = predict_proba(FlatLinear(8), torch.zeros(0, 1, 8, 8, dtype=torch.uint8))
    assert p.shape == (0, 3)


def test_channels_last_on_a_cpu_gives_the_same_probabilities_and_restores_the_layout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model.num_classes, model.in_chans = 3, 1
    x = _images(n=6, size=12)
    seen = []
    # the second conv's 4-channel input: a 1-channel tensor is contiguous in both layouts
    model[2].register_forward_pre_hook(lambda _m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    nchw = predict_proba(model, x, tta="flip")
    nhwc = predict_proba(model, x, tta="flip", channels_last=True)
    assert seen == [False, True]  # the default on a CPU stays NCHW; True feeds NHWC batches
    assert torch.allclose(nhwc, nchw, atol=1e-5)
    assert all(p.is_contiguous() for p in model.parameters())  # a later safetensors save needs this


def test_default_batch_size_depends_on_the_device():
    assert resolve_batch_size(None, "cpu") == CPU_BATCH < GPU_BATCH == resolve_batch_size(None, "cuda:0")
    assert resolve_batch_size(7, "cuda") == 7
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        resolve_batch_size(0, "cpu")
    events = []
    predict_proba(FlatLinear(8), _images(n=CPU_BATCH + 5), progress=events.append)
    assert [e.done for e in events] == [CPU_BATCH, CPU_BATCH + 5]
