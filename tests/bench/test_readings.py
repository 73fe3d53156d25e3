"""bench/readings.py: distress caught by class name, and the table from a results file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
FER7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture
def readings(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # bench scripts import each other as `python bench/x.py` does
    import readings

    return readings


def test_a_negative_face_read_as_another_negative_class_is_caught(readings):
    truth = np.array([0, 4, 2, 6, 3])  # angry, sad, fear, neutral, happy
    pred = np.array([4, 6, 1, 0, 3])  # sad (caught), neutral (missed), disgust (caught), angry, happy
    assert readings.negative_caught(pred, truth, FER7) == pytest.approx(2 / 3)


def test_the_table_has_a_row_per_reading_with_its_vote_weight(readings):
    pt = [{"size": s, "accuracy": 0.7, "macro_f1": 0.6, "crowd_accuracy": 0.75, "negative_read_negative": 0.8, "crowd_negative_read_negative": 0.9} for s in readings.SIZES]
    calm = [{"size": s, "neutral_recall": 0.5, "neutral_read_negative": 0.4, "happy_recall": 0.85} for s in (64, 16)]
    scores = {"publictest": pt, "calm": calm, "ckplus_heldout": [{"size": s, "n": 4, "accuracy": 0.9} for s in (48, 16)]}
    doc = {"provenance": {"model": "m", "machine": "vm", "date": "2026-12-05T00:00", "commit": "abcdef0"},
           "readings": {"default": {"vote_weight": 0.3, "scores": scores}, "crowd": {"vote_weight": 1.0, "scores": scores}}}  # fmt: skip
    rows = readings.table(doc)[0].splitlines()
    assert len(rows) == 4 and rows[2].startswith("| `default` | 0.3 |") and rows[3].startswith("| `crowd` | 1 |")
    assert "| 80.0 / 90.0 |" in rows[3] and "| 50.0 / 50.0 |" in rows[3]
