"""The service's evidence uses the one abstention rule (lrfer.runtime.decision): a face the
Recognizer marked uncertain never counts, and the margin counts like the size and confidence."""

from __future__ import annotations

import pytest

from lrfer.errors import LrferError
from lrfer.infer.pipeline import Face
from lrfer.serve.aggregate import BucketAggregator, is_certain
from lrfer.serve.camera import make_recognizer
from lrfer.serve.config import Evidence, Model, validate

CLASSES = ("happy", "sad", "neutral")


def face(probs, size=30, uncertain=False):
    p = dict(zip(CLASSES, probs))
    top = max(p, key=p.get)
    return Face(box=(0.0, 0.0, float(size), float(size)), score=0.9, size=size, probabilities=p, label=top, confidence=p[top], track_id=1, uncertain=uncertain)


def test_is_certain_applies_size_confidence_margin_and_the_recognizers_mark():
    ev = Evidence(min_face_px=20, min_confidence=0.5, min_margin=0.2)
    assert is_certain(face((0.7, 0.2, 0.1)), ev)
    assert not is_certain(face((0.7, 0.2, 0.1), size=19), ev)
    assert not is_certain(face((0.45, 0.3, 0.25)), ev)  # unsure
    assert not is_certain(face((0.55, 0.4, 0.05)), ev)  # sure enough, but the top two are close
    assert not is_certain(face((0.9, 0.05, 0.05), uncertain=True), ev)  # the Recognizer's rule said so
    assert is_certain(face((0.55, 0.4, 0.05)), Evidence(min_face_px=20, min_confidence=0.5))  # no margin asked


def test_uncertain_faces_are_counted_but_are_not_evidence():
    a = BucketAggregator("cam", CLASSES, bucket_seconds=5, evidence=Evidence(min_face_px=0))
    a.add(0.0, [face((0.1, 0.8, 0.1), uncertain=True)])
    a.add(1.0, [face((0.8, 0.1, 0.1))])
    (obs,) = a.flush()
    assert obs.frames == 2 and obs.certain == 1 and obs.probs["happy"] == pytest.approx(0.8)


def test_config_takes_a_prior_and_refuses_a_malformed_one():
    cfg = validate({"model": {"prior": "neutral=0.5,happy=0.25", "abstain": True}, "evidence": {"min_margin": 0.1}})
    assert cfg.model.prior == "neutral=0.5,happy=0.25" and cfg.model.abstain and cfg.evidence.min_margin == 0.1
    assert validate({"model": {"prior": "uniform"}}).model.prior == "uniform"
    with pytest.raises(LrferError, match=r"model.prior"):
        validate({"model": {"prior": "neutral:0.5"}})
    with pytest.raises(LrferError, match=r"evidence.min_margin"):
        validate({"evidence": {"min_margin": 2}})


def test_the_model_section_s_prior_and_abstain_reach_the_camera_workers_recognizer():
    plain = make_recognizer(Model())
    assert plain.prior is None and plain.abstain is None
    rec = make_recognizer(Model(prior="neutral=0.5,happy=0.25", abstain=True))
    assert rec.abstain is not None and rec.abstain == rec.classifier.abstain  # the rule stored with the shipped model
    shares = dict(zip(rec.classes, rec.prior))
    assert shares["neutral"] == pytest.approx(0.5) and shares["happy"] == pytest.approx(0.25)


def test_the_model_section_s_reading_reaches_the_recognizer_with_its_own_rule():
    rec = make_recognizer(Model(reading="half", abstain=True))
    assert rec.classifier.reading == "half"
    assert rec.abstain == rec.classifier.abstain and rec.abstain != make_recognizer(Model(abstain=True)).abstain  # the reading's threshold, not the model's
    with pytest.raises(LrferError, match="no reading 'nope'"):
        make_recognizer(Model(reading="nope"))
