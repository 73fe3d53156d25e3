"""Per-track probability smoothing, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrfer.errors import LrferError
from lrfer.infer.smooth import ProbabilitySmoother


def test_ema_by_hand():
    s = ProbabilitySmoother("ema", alpha=0.6)
    ids = np.array([7])
    assert np.allclose(s.update(ids, np.array([[1.0, 0.0]])), [[1.0, 0.0]])  # first frame as is
    assert np.allclose(s.update(ids, np.array([[0.0, 1.0]])), [[0.4, 0.6]])  # 0.6*new + 0.4*old
    assert np.allclose(s.update(ids, np.array([[0.0, 1.0]])), [[0.16, 0.84]])


def test_tracks_are_independent_and_order_follows_the_input():
    s = ProbabilitySmoother("ema", alpha=0.5)
    s.update(np.array([1, 2]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    out = s.update(np.array([2, 1]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert np.allclose(out, [[0.5, 0.5], [1.0, 0.0]])


def test_window_mean_by_hand():
    s = ProbabilitySmoother("window", window=3)
    ids = np.array([1])
    seq = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    outs = [s.update(ids, np.array([p]))[0] for p in seq]
    assert np.allclose(outs[1], [0.5, 0.5, 0.0])
    assert np.allclose(outs[2], [1 / 3, 1 / 3, 1 / 3])
    assert np.allclose(outs[3], [0.0, 1 / 3, 2 / 3])  # the first frame has left the window


def test_forget_and_untracked():
    s = ProbabilitySmoother("ema", alpha=0.5)
    s.update(np.array([3, 4]), np.array([[1.0, 0.0], [0.5, 0.5]]))
    assert s.track_ids() == [3, 4]
    s.forget([3, 99])
    assert s.track_ids() == [4]
    assert np.allclose(s.update(np.array([3]), np.array([[0.0, 1.0]])), [[0.0, 1.0]])  # starts afresh
    # Negative ids are untracked faces: returned as given, no state kept.
    before = len(s)
    assert np.allclose(s.update(np.array([-1]), np.array([[0.3, 0.7]])), [[0.3, 0.7]])
    assert len(s) == before


def test_none_and_input_types():
    s = ProbabilitySmoother("none")
    p = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)
    out = s.update(np.array([1, 2]), p)
    assert out.dtype == np.float32 and np.array_equal(out, p)
    e = ProbabilitySmoother("ema", alpha=0.5)
    e.update(np.array([1]), torch.tensor([[1.0, 0.0]]))
    assert np.allclose(e.update(np.array([1]), torch.tensor([[0.0, 1.0]])), [[0.5, 0.5]])


def test_bad_settings_are_user_errors():
    with pytest.raises(LrferError, match="did you mean 'ema'"):
        ProbabilitySmoother("emma")
    with pytest.raises(LrferError):
        ProbabilitySmoother("ema", alpha=0.0)
    with pytest.raises(LrferError):
        ProbabilitySmoother("window", window=0)
