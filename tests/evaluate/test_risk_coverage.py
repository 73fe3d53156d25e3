"""Risk-coverage and the choice of an abstention threshold, on hand-made rankers."""

from __future__ import annotations

import numpy as np
import pytest

from lrfer.errors import LrferError
from lrfer.evaluate import risk_coverage as rc
from lrfer.evaluate.abstain import choose_rule
from lrfer.evaluate.report import risk_coverage_record
from lrfer.runtime.decision import rule_from


def test_a_perfect_ranker_is_right_until_its_right_answers_run_out():
    correct = np.array([1] * 60 + [0] * 40, bool)
    conf = np.where(correct, 0.9, 0.4) + np.linspace(0, 0.01, 100)  # every right answer more confident
    pts = rc.curve(conf, correct)
    cov, acc = pts["coverage"], pts["accuracy"]
    assert np.all(acc[cov <= 0.6] == 1.0)
    assert acc[-1] == pytest.approx(0.6) and cov[-1] == 1.0
    # AURC: mean over k of the error of the top k; 0 for k <= 60, then (k - 60) / k
    k = np.arange(1, 101)
    assert rc.aurc(conf, correct) == pytest.approx(np.mean(np.maximum(k - 60, 0) / k))
    assert rc.threshold_for_risk(conf, correct, 0.0) == pytest.approx(conf[:60].min())  # the 60 right ones, no more


def test_a_random_ranker_stays_at_its_plain_accuracy():
    rng = np.random.default_rng(0)
    correct = rng.random(20000) < 0.6
    conf = rng.random(20000)
    s = rc.summary(conf, correct)
    for row in s["at"]:
        assert row["coverage"] == pytest.approx(row["target"], abs=1e-3)
        assert row["accuracy"] == pytest.approx(0.6, abs=0.02)
    assert s["aurc"] == pytest.approx(0.4, abs=0.02)
    # a 10% error is only met by luck, among the very few most confident faces
    assert rc.answered(conf, correct, rc.threshold_for_risk(conf, correct, 0.1))["coverage"] < 0.01
    conf[~correct] += 1.0  # now every wrong answer is the most confident: no threshold reaches 10%
    with pytest.raises(LrferError, match="no confidence threshold"):
        rc.threshold_for_risk(conf, correct, 0.1)


def test_ties_are_answered_together_and_coverage_is_at_least_the_target():
    conf = np.array([0.9, 0.7, 0.7, 0.7, 0.2])
    correct = np.array([1, 1, 0, 1, 0], bool)
    pts = rc.curve(conf, correct)
    assert pts["coverage"].tolist() == [0.2, 0.8, 1.0]  # no point inside the run of 0.7s
    assert pts["accuracy"].tolist() == pytest.approx([1.0, 0.75, 0.6])
    t = rc.threshold_for_coverage(conf, 0.5)
    assert t == 0.7 and rc.answered(conf, correct, t)["coverage"] == 0.8
    assert rc.threshold_for_coverage(conf, 1.0) == 0.2
    with pytest.raises(LrferError):
        rc.threshold_for_coverage(conf, 0.0)


def test_choose_rule_gives_a_stored_rule_that_answers_what_it_says():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(5) * 0.5, 1000)
    labels = np.where(rng.random(1000) < probs.max(1), probs.argmax(1), (probs.argmax(1) + 1) % 5)
    rec = choose_rule(probs, labels, coverage=0.8, min_face=16, split="val")
    rule = rule_from(rec)
    answered = ~rule.uncertain(probs, np.full(1000, 48))
    assert answered.mean() >= 0.8 and answered.mean() == pytest.approx(rec["chosen"]["coverage"])
    assert rec["chosen"]["accuracy"] == pytest.approx((probs.argmax(1) == labels)[answered].mean())
    assert rec["chosen"]["accuracy"] > (probs.argmax(1) == labels).mean()  # confidence ranks here
    assert rule.min_face == 16 and rule.uncertain(probs[:1], [15])[0]
    by_risk = choose_rule(probs, labels, risk=0.2, split="val")
    assert 1 - by_risk["chosen"]["accuracy"] <= 0.2 + 1e-9
    with pytest.raises(LrferError, match="coverage or by risk"):
        choose_rule(probs, labels, coverage=0.8, risk=0.2)


def test_report_record_has_a_curve_for_the_plot():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    rec = risk_coverage_record(probs, np.array([0, 1, 1, 0]))
    assert rec["curve"][-1]["coverage"] == 1.0 and rec["curve"][-1]["accuracy"] == 0.5
    assert rec["at"][0]["target"] == 1.0 and rec["n"] == 4
