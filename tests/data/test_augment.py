import torch

from lrfer.data.augment import AugmentConfig, augment_batch, degrade, luma, random_crop, random_degrade, random_erase


def high_freq_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels, per sample."""
    return (x[..., 1:] - x[..., :-1]).pow(2).mean(dim=(1, 2, 3))


def test_degrade_removes_high_frequencies_and_keeps_shape():
    x = torch.rand(4, 1, 48, 48)
    for size in (8, 16, 24):
        y = degrade(x, size)
        assert y.shape == x.shape
        assert (high_freq_energy(y) < 0.2 * high_freq_energy(x)).all()
    # smaller sizes remove more
    assert (high_freq_energy(degrade(x, 8)) < high_freq_energy(degrade(x, 24))).all()
    # at or above native size nothing changes
    assert torch.equal(degrade(x, 48), x)


def test_degrade_keeps_low_frequencies():
    ramp = torch.linspace(0, 1, 48).view(1, 1, 1, 48).expand(2, 1, 48, 48).contiguous()
    assert (degrade(ramp, 12) - ramp).abs().max() < 0.05


def test_degrade_per_sample_sizes_match_whole_batch_calls():
    x = torch.rand(6, 1, 48, 48)
    sizes = torch.tensor([8, 48, 16, 8, 24, 16])
    y = degrade(x, sizes)
    for i, s in enumerate(sizes.tolist()):
        assert torch.allclose(y[i], degrade(x[i : i + 1], s)[0])


def test_random_degrade_draws_per_sample():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 48, 48)
    y = random_degrade(x, p=0.5, r_min=8, r_max=16, mode="bilinear")
    untouched = (y == x).flatten(1).all(1)
    # about half untouched, the rest degraded (each with its own size)
    assert 15 < int(untouched.sum()) < 49
    energies = high_freq_energy(y[~untouched])
    assert energies.unique().numel() > 10


def test_random_crop_per_sample_offsets():
    torch.manual_seed(0)
    x = torch.arange(48 * 48, dtype=torch.float32).view(1, 1, 48, 48).repeat(32, 1, 1, 1)
    y = random_crop(x, 44)
    assert y.shape == (32, 1, 44, 44)
    corners = y[:, 0, 0, 0]
    assert corners.unique().numel() > 4  # different offsets per sample
    # each crop is a contiguous window of the original
    for i in range(4):
        top, left = int(corners[i]) // 48, int(corners[i]) % 48
        assert torch.equal(y[i], x[i, :, top : top + 44, left : left + 44])


def test_random_erase_only_touches_a_rectangle():
    torch.manual_seed(0)
    x = torch.zeros(16, 1, 48, 48)
    y = random_erase(x, p=1.0, area=(0.1, 0.2))
    changed = (y != x)[:, 0]
    for i in range(16):
        rows = changed[i].any(1).nonzero().flatten()
        cols = changed[i].any(0).nonzero().flatten()
        assert len(rows) > 0
        box = changed[i][rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert box.float().mean() > 0.95  # a filled rectangle, not scattered pixels


def test_augment_batch_is_random_per_sample_and_keeps_range():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 48, 48).repeat(16, 1, 1, 1)
    cfg = AugmentConfig(rotate=15, scale=0.1, translate=0.1, crop=44, erase_p=0.5, degrade_p=0.5)
    y = augment_batch(x, cfg)
    assert y.shape == (16, 1, 44, 44)
    assert y.min() >= 0 and y.max() <= 1
    flat = y.flatten(1)
    assert torch.cdist(flat, flat).fill_diagonal_(1).min() > 0  # no two samples identical


def test_flip_only_is_exact():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 8, 8)
    y = augment_batch(x, AugmentConfig(rotate=0, scale=0, translate=0))
    same = (y == x).flatten(1).all(1)
    flipped = (y == x.flip(-1)).flatten(1).all(1)
    assert (same | flipped).all() and same.any() and flipped.any()


def test_training_faces_are_resized_as_inference_resizes_them():
    # One rule: FaceSet.resized (the engine's training and validation faces) and predict's
    # preprocess (inference, the sweep) give the same faces, up to FaceSet's uint8 rounding,
    # when shrinking (where area and antialiased bilinear differ) and when enlarging.
    import numpy as np

    from lrfer.data.faceset import FaceSet
    from lrfer.data.transforms import preprocess

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 1, 48, 48), generator=g, dtype=torch.uint8)
    faces = FaceSet(images=images, labels=torch.zeros(6, dtype=torch.long), classes=("a",), split=np.array(["all"] * 6))
    for size in (32, 20, 64):
        trained_on = faces.resized(size).images.float() / 255
        inferred_on = preprocess(images, in_chans=1, input_size=size)
        assert trained_on.shape == inferred_on.shape == (6, 1, size, size)
        assert (trained_on - inferred_on).abs().max() <= 0.5 / 255 + 1e-6
    area = torch.nn.functional.interpolate(images.float() / 255, size=(32, 32), mode="area")
    assert (faces.resized(32).images.float() / 255 - area).abs().max() > 2 / 255  # not area averaging


def test_luma_is_one_rule_for_uint8_and_float_faces():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    grey = luma(x)
    assert grey.shape == (4, 1, 8, 8) and grey.dtype == torch.uint8
    xf = (x.float() / 255).requires_grad_()
    gf = luma(xf)
    # the float path is the uint8 path before rounding, and a loss can run through it
    assert torch.allclose(gf.detach() * 255, grey.float(), atol=0.51)
    gf.sum().backward()
    assert torch.allclose(xf.grad[0, :, 0, 0], torch.tensor([0.299, 0.587, 0.114]))
