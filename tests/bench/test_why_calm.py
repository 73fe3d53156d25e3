"""bench/why_calm.py: the zoom that tests the framing, and the count of label disagreements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lrfer.data.faceset import FaceSet

BENCH = Path(__file__).resolve().parents[2] / "bench"
FER7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture
def why(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # bench scripts import each other as `python bench/x.py` does
    import why_calm

    return why_calm


def test_zoom_out_shrinks_the_face_and_zoom_in_enlarges_it(why):
    face = torch.zeros(1, 1, 48, 48, dtype=torch.uint8)
    face[..., 12:36, 12:36] = 255  # a face filling the middle half of the crop
    area = lambda x: float((x.float() / 255).sum())
    assert torch.equal(why.zoomed(face, 1.0), face)
    assert area(why.zoomed(face, 2.0)) == pytest.approx(area(face) / 4, rel=0.05)  # half the side: a quarter of the area
    assert area(why.zoomed(face, 0.8)) == pytest.approx(area(face) / 0.64, rel=0.05)
    assert why.zoomed(face, 1.3).shape == why.zoomed(face, 0.9).shape == face.shape


def test_disagreements_count_the_faces_fer2013_calls_negative_and_the_crowd_neutral(why):
    labels = torch.tensor([4, 4, 0, 3, 6])  # sad, sad, angry, happy, neutral
    crowd = torch.tensor([6, 4, 6, 3, 3])  # neutral, sad, neutral, happy, happy
    faces = FaceSet(images=torch.zeros(5, 1, 4, 4, dtype=torch.uint8), labels=labels, classes=FER7, split=np.array(["PublicTest"] * 5),
                    soft_labels=torch.nn.functional.one_hot(crowd, 7).float())  # fmt: skip
    rep = why.crowd_disagreement(faces, "PublicTest")
    assert rep["n"] == 5 and rep["differ"] == pytest.approx(3 / 5)
    assert rep["n_negative_crowd_neutral"] == 2 and rep["negative_crowd_neutral"] == pytest.approx(2 / 5)
    assert {(p["fer2013"], p["crowd"]): p["n"] for p in rep["pairs"]} == {("sad", "neutral"): 1, ("angry", "neutral"): 1, ("neutral", "happy"): 1}
