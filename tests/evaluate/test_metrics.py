"""Metrics against values worked out by hand."""

import math

import numpy as np
import pytest
import torch

from lrfer.evaluate.metrics import challenge_score, classification_report, confusion_matrix, expected_calibration_error, gaussian_window, nll, psnr, ssim

# 3 classes, 10 samples.
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]
# Confusion (rows = true):   pred 0  1  2
#   true 0 (4 samples):           2  1  1
#   true 1 (3 samples):           1  2  0
#   true 2 (3 samples):           0  1  2
# column sums (predicted):        3  4  3
# accuracy  = (2 + 2 + 2) / 10 = 0.6
# precision = 2/3, 2/4 = 1/2, 2/3
# recall    = 2/4 = 1/2, 2/3, 2/3
# F1 class 0 = 2 * (2/3 * 1/2) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7
# F1 class 1 = 2 * (1/2 * 2/3) / (1/2 + 2/3) = 4/7
# F1 class 2 = 2/3
# macro F1    = (4/7 + 4/7 + 2/3) / 3 = (24/21 + 14/21) / 3 = 38/63
# weighted F1 = (4 * 4/7 + 3 * 4/7 + 3 * 2/3) / 10 = (4 + 2) / 10 = 0.6
# balanced accuracy = (1/2 + 2/3 + 2/3) / 3 = 11/18
# challenge = 0.33 * 0.6 + 0.67 * 38/63
CM = [[2, 1, 1], [1, 2, 0], [0, 1, 2]]


def test_confusion_matrix_counts():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == CM


def test_confusion_matrix_accepts_tensors_and_checks_range():
    cm = confusion_matrix(torch.tensor(Y_TRUE), np.array(Y_PRED), 3)
    assert cm.tolist() == CM
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError):
        confusion_matrix([0, 1], [0], 3)


def test_classification_report_hand_values():
    r = classification_report(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert r["n"] == 10
    assert r["accuracy"] == pytest.approx(0.6)
    pc = r["per_class"]
    assert [pc[c]["precision"] for c in "abc"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert [pc[c]["recall"] for c in "abc"] == pytest.approx([1 / 2, 2 / 3, 2 / 3])
    assert [pc[c]["f1"] for c in "abc"] == pytest.approx([4 / 7, 4 / 7, 2 / 3])
    assert [pc[c]["support"] for c in "abc"] == [4, 3, 3]
    assert r["macro_f1"] == pytest.approx(38 / 63)
    assert r["weighted_f1"] == pytest.approx(0.6)
    assert r["balanced_accuracy"] == pytest.approx(11 / 18)
    assert r["challenge_score"] == pytest.approx(0.33 * 0.6 + 0.67 * 38 / 63)
    assert r["confusion"] == CM
    assert np.allclose(r["confusion_normalized"], [[1 / 2, 1 / 4, 1 / 4], [1 / 3, 2 / 3, 0], [0, 1 / 3, 2 / 3]])


def test_absent_class_is_zero_and_left_out_of_macro():
    # A 4th class that is neither true nor predicted: all its values are 0 (documented
    # convention), its normalised row is 0, and the macro F1 is still that of the 3 seen classes.
    r = classification_report(Y_TRUE, Y_PRED, ["a", "b", "c", "d"])
    assert r["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["confusion_normalized"][3] == [0.0, 0.0, 0.0, 0.0]
    assert r["macro_f1"] == pytest.approx(38 / 63)
    assert r["balanced_accuracy"] == pytest.approx(11 / 18)


def test_predicted_but_never_true_class_counts_as_zero():
    # y_true = [a, a], y_pred = [a, b]
    # a: precision 1/1, recall 1/2, F1 = 2 * 0.5 / 1.5 = 2/3
    # b: precision 0/1 = 0, recall 0/0 -> 0 (undefined), F1 0; it was predicted, so it is in the macro
    # macro F1 = (2/3 + 0) / 2 = 1/3; balanced accuracy = recall of a only = 1/2
    r = classification_report([0, 0], [0, 1], ["a", "b"])
    assert r["per_class"]["a"]["f1"] == pytest.approx(2 / 3)
    assert r["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["macro_f1"] == pytest.approx(1 / 3)
    assert r["balanced_accuracy"] == pytest.approx(1 / 2)
    assert r["accuracy"] == pytest.approx(1 / 2)


def test_report_is_json_ready():
    import json

    json.dumps(classification_report(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), ("a", "b", "c")))


def test_challenge_score():
    assert challenge_score(1.0, 1.0) == pytest.approx(1.0)
    assert challenge_score(0.5, 0.2) == pytest.approx(0.33 * 0.5 + 0.67 * 0.2)


def _probs(rows, n):
    return np.tile(np.asarray(rows, dtype=np.float64), (n, 1))


def test_ece_perfectly_calibrated_is_zero():
    # 10 faces at confidence 0.8 of which 8 are right, 4 faces at confidence 0.5 of which 2 are
    # right: each bin's accuracy equals its confidence.
    p = np.concatenate([_probs([0.8, 0.1, 0.1], 10), _probs([0.5, 0.3, 0.2], 4)])
    y = [0] * 8 + [1] * 2 + [0] * 2 + [2] * 2
    assert expected_calibration_error(p, y) == pytest.approx(0.0, abs=1e-12)


def test_ece_over_confident():
    # 10 faces at confidence 0.99, half right: ECE = |0.5 - 0.99| = 0.49
    p = _probs([0.99, 0.01], 10)
    y = [0] * 5 + [1] * 5
    assert expected_calibration_error(p, y) == pytest.approx(0.49)
    # Mixed with 10 calibrated faces at 0.8 (8 right): 10/20 * 0 + 10/20 * 0.49 = 0.245
    p2 = np.concatenate([_probs([0.8, 0.2], 10), p])
    y2 = [0] * 8 + [1] * 2 + y
    assert expected_calibration_error(torch.tensor(p2), torch.tensor(y2)) == pytest.approx(0.245)


def test_ece_confidence_one_goes_to_last_bin():
    # Confidence exactly 1.0 and always right: calibrated, no index error.
    assert expected_calibration_error(_probs([1.0, 0.0], 3), [0, 0, 0]) == pytest.approx(0.0)


def test_nll():
    # -log 0.5 = ln 2 for every sample; -log(0.25) for the second case
    assert nll(_probs([0.5, 0.5], 4), [0, 1, 0, 1]) == pytest.approx(math.log(2))
    assert nll([[0.25, 0.75], [0.75, 0.25]], [0, 0]) == pytest.approx((math.log(4) + math.log(4 / 3)) / 2)
    # a probability of 0 for the true class is clipped, not infinite
    assert math.isfinite(nll([[1.0, 0.0]], [1]))


# ---------------------------------------------------------------------------- PSNR / SSIM (super-resolution)
def test_psnr_hand_values():
    x = torch.zeros(2, 1, 16, 16)
    y = torch.full_like(x, 0.1)  # MSE 0.01 -> 20 dB
    assert torch.allclose(psnr(x, y), torch.full((2,), 20.0, dtype=torch.float64))
    assert torch.allclose(psnr(x, torch.full_like(x, 0.01)), torch.full((2,), 40.0, dtype=torch.float64))
    assert torch.allclose(psnr(x * 255, y * 255, data_range=255.0), torch.full((2,), 20.0, dtype=torch.float64))
    assert psnr(x, x).tolist() == [100.0, 100.0]  # identical: capped
    # an error only in the 2 px border disappears when 2 px are shaved
    z = x.clone()
    z[..., :2, :] = 1
    assert psnr(x, z, shave=2).tolist() == [100.0, 100.0]
    assert psnr(x, z)[0] < 10


def test_ssim_identical_and_constant_images():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 20, 20)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    a, b = 0.5, 0.25  # constant images: only the luminance term remains
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b))
    assert abs(float(got) - expected) < 1e-9
    with pytest.raises(ValueError):
        ssim(torch.rand(1, 1, 10, 10), torch.rand(1, 1, 10, 10))


def test_ssim_matches_the_formula_on_one_window():
    # an 11x11 image has exactly one valid window: compute Wang et al.'s formula by hand
    torch.manual_seed(1)
    x, y = torch.rand(1, 1, 11, 11), torch.rand(1, 1, 11, 11)
    w = gaussian_window().numpy()
    assert abs(w.sum() - 1) < 1e-12 and w.shape == (11, 11)
    xn, yn = x[0, 0].double().numpy(), y[0, 0].double().numpy()
    mx, my = (w * xn).sum(), (w * yn).sum()
    vx, vy = (w * (xn - mx) ** 2).sum(), (w * (yn - my) ** 2).sum()
    cxy = (w * (xn - mx) * (yn - my)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert abs(float(ssim(x, y)) - expected) < 1e-9
