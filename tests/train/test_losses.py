import numpy as np
import pytest
import torch

from lrfer.errors import LrferError
from lrfer.train.losses import CenterLoss, class_weights, cross_entropy, distillation_loss


def test_balanced_class_weights_formula():
    counts = np.array([10, 30, 60])
    w = class_weights(counts, "balanced")
    assert torch.allclose(w, torch.tensor([0.9, 0.7, 0.4]))
    inv = class_weights(counts, "inverse")
    assert torch.allclose((inv * torch.tensor(counts, dtype=torch.float32)).sum(), torch.tensor(100.0))
    assert class_weights(counts, "none") is None
    with pytest.raises(LrferError):
        class_weights(counts, "sqrt")


def test_soft_cross_entropy_equals_hard_for_one_hot():
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 3, 1, 1, 2])
    onehot = torch.nn.functional.one_hot(y, 4).float()
    assert torch.allclose(cross_entropy(logits, y), cross_entropy(logits, onehot), atol=1e-6)
    assert torch.allclose(cross_entropy(logits, y, label_smoothing=0.1), cross_entropy(logits, onehot, label_smoothing=0.1), atol=1e-6)


def test_distillation_is_zero_for_identical_logits():
    z = torch.randn(3, 7)
    assert distillation_loss(z, z).abs() < 1e-6
    assert distillation_loss(z, -z) > 0


def test_center_loss_gradient_and_update_rule():
    torch.manual_seed(0)
    loss_fn = CenterLoss(num_classes=3, dim=4, weight=1.0, alpha=0.5)
    loss_fn.centers.copy_(torch.randn(3, 4))
    c0 = loss_fn.centers.clone()
    x = torch.randn(5, 4, requires_grad=True)
    y = torch.tensor([0, 0, 2, 2, 2])
    loss = loss_fn(x, None, y)
    assert torch.allclose(loss, 0.5 * ((x - c0[y]) ** 2).sum())
    loss.backward()
    # dL/dx_i = x_i - c_{y_i}
    assert torch.allclose(x.grad, (x - c0[y]).detach())
    loss_fn.after_step()
    xd = x.detach()
    for j in range(3):
        mask = y == j
        delta = (c0[j] - xd[mask]).sum(0) / (1 + mask.sum())
        assert torch.allclose(loss_fn.centers[j], c0[j] - 0.5 * delta, atol=1e-6)
    # class 1 had no samples: delta is 0, its centre stays
    assert torch.equal(loss_fn.centers[1], c0[1])
