"""The abstention rule, the deployment prior and its EM estimate, on hand-made cases (numpy only:
no torch here, as in every runtime test)."""

from __future__ import annotations

import numpy as np
import pytest

from lrfer.errors import LrferError
from lrfer.runtime.decision import Abstain, rule_from
from lrfer.runtime.em_prior import estimate_prior
from lrfer.runtime.prior import adjust, parse_prior, prior_record, train_prior_from

CLASSES = ("angry", "happy", "sad", "neutral")


# ------------------------------------------------------------------------------ abstention
def test_rule_marks_small_unsure_and_close_faces():
    probs = np.array([
        [0.90, 0.05, 0.03, 0.02],  # sure, big: answered
        [0.40, 0.20, 0.20, 0.20],  # top 0.40 < 0.5: unsure (a wide margin)
        [0.52, 0.46, 0.01, 0.01],  # sure enough, but the top two are 0.06 apart
        [0.90, 0.05, 0.03, 0.02],  # sure, but 12 px
    ])  # fmt: skip
    rule = Abstain(min_face=16, min_confidence=0.5, min_margin=0.1)
    assert rule.uncertain(probs, [48, 48, 48, 12]).tolist() == [False, True, True, True]
    # each condition alone
    assert Abstain(min_confidence=0.5).uncertain(probs, [48, 48, 48, 12]).tolist() == [False, True, False, False]
    assert Abstain(min_margin=0.1).uncertain(probs).tolist() == [False, False, True, False]
    assert Abstain(min_face=16).uncertain(probs, [48, 48, 48, 12]).tolist() == [False, False, False, True]
    assert not Abstain().uncertain(probs, [1, 1, 1, 1]).any()  # the default abstains on nothing


def test_rule_edges_and_records():
    p = np.array([[0.5, 0.5, 0.0, 0.0]])
    assert not Abstain(min_confidence=0.5).uncertain(p)[0]  # at the threshold: answered
    assert Abstain(min_margin=0.01).uncertain(p)[0]  # a tie has no margin
    assert not Abstain(min_face=16).uncertain(p, [16])[0]
    stored = {"min_face": 16, "min_confidence": 0.42, "chosen": {"split": "PublicTest"}}
    assert rule_from(stored) == Abstain(16, 0.42, 0.0)  # what the record adds besides the rule is kept aside
    assert rule_from(None) is None
    assert Abstain(16, 0.42).updated(min_confidence=0.6, min_margin=None) == Abstain(16, 0.6, 0.0)
    for bad in ({"min_confidence": 1.5}, {"min_face": -1}, "0.5"):
        with pytest.raises(LrferError):
            rule_from(bad)


# ------------------------------------------------------------------------------ the prior
def test_parse_prior_fills_the_rest_and_refuses_nonsense():
    p = parse_prior("neutral=0.5,happy=0.3", CLASSES)
    assert np.allclose(p, [0.1, 0.3, 0.1, 0.5])  # angry and sad share the 0.2 left
    assert np.allclose(parse_prior("uniform", CLASSES), 0.25)
    assert np.allclose(parse_prior({"happy": 0.5, "neutral": 0.5, "angry": 0, "sad": 0}, CLASSES), [0, 0.5, 0, 0.5])
    assert parse_prior(None, CLASSES) is None and parse_prior("", CLASSES) is None
    for bad, what in (("neutrl=0.5", "no class"), ("neutral=0.7,happy=0.6", "add up"), ("neutral", "no '='"), ("neutral=x", "not a number"), ("happy=-0.1", "between 0 and 1")):
        with pytest.raises(LrferError, match=what):
            parse_prior(bad, CLASSES)


def test_adjust_is_bayes_rule_and_a_no_op_at_the_training_prior():
    train = np.array([0.2, 0.4, 0.2, 0.2])
    probs = np.array([[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]], np.float32)
    assert np.allclose(adjust(probs, train, train), probs, atol=1e-6)  # deployment = training: nothing moves
    moved = adjust(probs, np.array([0.1, 0.1, 0.1, 0.7]), train)
    expect = probs * np.array([0.5, 0.25, 0.5, 3.5])
    assert np.allclose(moved, expect / expect.sum(1, keepdims=True), atol=1e-6)
    assert np.allclose(moved.sum(1), 1) and moved[0].argmax() == 3  # an unsure face now reads as the common class
    assert adjust(probs, None, None) is not None and np.allclose(adjust(probs, None, None), probs)
    with pytest.raises(LrferError, match="training class shares"):
        adjust(probs, train, None)


def test_train_prior_record_round_trip():
    rec = prior_record(CLASSES, [0.1, 0.2, 0.3, 0.4], "made by hand")
    assert np.allclose(train_prior_from(rec, CLASSES), [0.1, 0.2, 0.3, 0.4])
    assert train_prior_from(None, CLASSES) is None
    with pytest.raises(LrferError, match="do not name its classes"):
        train_prior_from(rec, CLASSES[:3])


def _calibrated_faces(prior, train, n, seed=0):
    """Faces of a 1-D world where each class is a unit Gaussian: classes drawn with ``prior``, and
    the probabilities an exactly calibrated model trained on shares ``train`` gives them."""
    rng = np.random.default_rng(seed)
    means = np.array([-3.0, -1.0, 1.0, 3.0])
    y = rng.choice(len(prior), n, p=prior)
    x = rng.normal(means[y], 1.0)
    lik = np.exp(-0.5 * (x[:, None] - means[None]) ** 2)
    post = lik * train
    return post / post.sum(1, keepdims=True), y


def test_em_recovers_a_known_site_prior():
    train = np.array([0.25, 0.25, 0.25, 0.25])
    site = np.array([0.05, 0.25, 0.10, 0.60])
    probs, y = _calibrated_faces(site, train, 20000)
    est, iters = estimate_prior(probs, train)
    assert np.abs(est - site).max() < 0.02, est
    assert np.abs(probs.mean(0) - site).max() > 0.03  # the plain mean of the probabilities does not get there
    assert 1 < iters < 200
    # with the estimate, the adjusted model is right more often than the model as it was
    before = (probs.argmax(1) == y).mean()
    after = (adjust(probs, est, train).argmax(1) == y).mean()
    assert after > before + 0.01


def test_em_keeps_the_training_prior_when_the_site_matches_it():
    train = np.array([0.1, 0.4, 0.2, 0.3])
    probs, _ = _calibrated_faces(train, train, 20000, seed=1)
    est, _ = estimate_prior(probs, train)
    assert np.abs(est - train).max() < 0.02
    with pytest.raises(LrferError, match="no faces"):
        estimate_prior(np.empty((0, 4)), train)
