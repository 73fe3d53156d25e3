"""The alerting errors (lrfer.evaluate.alerting) on cases worked out by hand."""

import numpy as np
import pytest

from lrfer.evaluate.alerting import NEGATIVE, calm_summary, negative_read_shares, read_as_share

# 4 neutral, 2 happy, 3 negative (sad, angry, fear), 1 surprise.
TRUE = ["neutral", "neutral", "neutral", "neutral", "happy", "happy", "sad", "angry", "fear", "surprise"]
PRED = ["neutral", "sad", "angry", None, "happy", "disgust", "angry", "neutral", "fear", "sad"]
# neutral: read as neutral, sad, angry, no answer -> 2 of 4 read negative (the no answer is not one)
# happy: happy, disgust -> 1 of 2 negative
# negative: sad->angry (negative, though not its own class), angry->neutral, fear->fear -> 2 of 3
# the surprise face read as sad counts in none of the three shares


def test_negative_read_shares_by_hand():
    got = negative_read_shares(TRUE, PRED)
    assert got == {
        "neutral_read_negative": 0.5, "n_neutral": 4,
        "happy_read_negative": 0.5, "n_happy": 2,
        "negative_read_negative": pytest.approx(2 / 3), "n_negative": 3,
    }  # fmt: skip


def test_a_class_without_faces_is_none_not_zero():
    """On a set of calm faces there is no negative face: "not measured" is None, never 0."""
    got = negative_read_shares(["neutral", "happy"], ["sad", "happy"])
    assert got["negative_read_negative"] is None and got["n_negative"] == 0
    assert got["neutral_read_negative"] == 1.0 and got["happy_read_negative"] == 0.0
    assert read_as_share(["happy"], ["sad"], ["neutral"], NEGATIVE) is None


def test_the_negative_classes_can_be_chosen():
    # a service that does not count disgust as distress: the happy face read as disgust is then fine
    got = negative_read_shares(TRUE, PRED, negative=("angry", "fear", "sad"))
    assert got["happy_read_negative"] == 0.0
    assert got["neutral_read_negative"] == 0.5


def test_calm_summary_by_hand():
    got = calm_summary(TRUE, PRED)
    assert got["n_neutral"] == 4 and got["n_happy"] == 2
    assert got["neutral_recall"] == 0.25 and got["happy_recall"] == 0.5
    assert got["neutral_read_negative"] == 0.5 and got["happy_read_negative"] == 0.5
    # each answer's share, largest first (ties in name order), with "none" for no answer
    assert got["neutral_read_as"] == {"angry": 0.25, "neutral": 0.25, "none": 0.25, "sad": 0.25}
    assert got["happy_read_as"] == {"disgust": 0.5, "happy": 0.5}
    assert sum(got["neutral_read_as"].values()) == pytest.approx(1.0)


def test_calm_summary_orders_answers_by_share():
    true = ["neutral"] * 5
    pred = ["sad", "angry", "sad", "neutral", "sad"]
    got = calm_summary(true, pred)
    assert list(got["neutral_read_as"]) == ["sad", "angry", "neutral"]
    assert got["neutral_read_as"]["sad"] == pytest.approx(0.6)
    assert got["happy_recall"] is None and got["happy_read_negative"] is None and got["happy_read_as"] == {}


def test_numpy_arrays_and_bad_input():
    got = negative_read_shares(np.array(["neutral", "happy"]), np.array(["fear", "fear"]))
    assert got["neutral_read_negative"] == 1.0 and got["happy_read_negative"] == 1.0
    with pytest.raises(ValueError, match="2 labels"):
        negative_read_shares(["neutral", "happy"], ["sad"])
    with pytest.raises(ValueError, match="None"):
        negative_read_shares([None], ["sad"])
