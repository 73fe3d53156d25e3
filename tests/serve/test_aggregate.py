"""BucketAggregator on hand-made Face records: buckets, evidence, means, medians, zones, closing."""

from __future__ import annotations

from collections import Counter

import pytest

from lrfer.infer.pipeline import Face
from lrfer.serve.aggregate import BucketAggregator, _median
from lrfer.serve.config import Evidence, Zone

CLASSES = ("happy", "sad", "neutral")


def face(tid, size=30, probs=(0.7, 0.2, 0.1), score=0.9, box=None):
    p = dict(zip(CLASSES, probs))
    top = max(p, key=p.get)
    box = box or (100.0, 100.0, 100.0 + size, 100.0 + size)
    return Face(box=box, score=score, size=size, probabilities=p, label=top, confidence=p[top], track_id=tid)


def agg(**kw):
    kw.setdefault("bucket_seconds", 5)
    kw.setdefault("evidence", Evidence(min_face_px=20, min_confidence=0.5))
    a = BucketAggregator("cam1", CLASSES, **kw)
    a.run_id = "r1"
    return a


def test_one_track_one_bucket_means_and_counts():
    a = agg()
    assert a.add(100.0, [face(1, 30, (0.8, 0.1, 0.1), score=0.8)]) == []
    assert a.add(101.0, [face(1, 40, (0.6, 0.3, 0.1), score=0.6)]) == []
    assert a.add(102.0, [face(1, 10, (0.0, 1.0, 0.0), score=0.7)]) == []  # too small: uncertain
    assert a.add(103.0, [face(1, 30, (0.4, 0.35, 0.25), score=0.9)]) == []  # too unsure: uncertain
    (o,) = a.flush()
    assert (o.camera_id, o.track_key, o.zone, o.start, o.seconds) == ("cam1", "r1-1", "", 100.0, 5.0)
    assert (o.frames, o.certain) == (4, 2)
    assert o.probs == pytest.approx({"happy": 0.7, "sad": 0.2, "neutral": 0.1})
    assert o.face_px == 30.0  # median of 10, 30, 30, 40
    assert o.score == pytest.approx(0.75)
    assert o.negative_share(("sad",)) == pytest.approx(0.2)
    assert a.flush() == []


def test_no_certain_frame_means_no_probs():
    a = agg()
    a.add(0.0, [face(7, size=8)])
    (o,) = a.flush()
    assert o.certain == 0 and o.probs is None and o.negative_share() is None and o.frames == 1


def test_tracks_and_buckets_are_separate_and_close_after_one_bucket_of_grace():
    a = agg()
    a.add(1.0, [face(1), face(2)])
    a.add(6.0, [face(1)])  # next bucket [5, 10)
    assert a.add(9.9, [face(1)]) == []  # [0, 5) is past but still in its grace bucket
    closed = a.add(10.0, [])  # a frame without faces moves time on too
    assert sorted((o.start, o.track_key, o.frames) for o in closed) == [(0.0, "r1-1", 1), (0.0, "r1-2", 1)]
    assert a.add(14.9, [face(1)]) == []
    (o,) = a.add(15.0, [face(1)])
    assert (o.start, o.frames) == (5.0, 2)
    assert [(o.start, o.frames) for o in a.flush()] == [(10.0, 1), (15.0, 1)]


def test_bucket_start_is_a_multiple_of_the_bucket_length():
    a = agg(bucket_seconds=60)
    a.add(1_700_000_123.4, [face(1)])
    (o,) = a.flush()
    assert o.start == 1_700_000_100.0 and o.start % 60 == 0 and o.seconds == 60


def test_faces_without_a_track_are_skipped():
    a = agg()
    a.add(0.0, [face(None), face(3)])
    assert [o.track_key for o in a.flush()] == ["r1-3"]


def test_late_frames_of_an_emitted_bucket_are_dropped_not_emitted_twice():
    a = agg()
    a.add(0.0, [face(1)])
    assert len(a.add(10.0, [face(1)])) == 1
    assert a.add(3.0, [face(1)]) == [] and a.late == 1  # the clock stepped back into an emitted bucket
    assert [o.start for o in a.flush()] == [10.0]


def test_new_run_flushes_and_renames_tracks():
    a = agg()
    a.add(0.0, [face(1)])
    out = a.new_run("r2")
    assert [o.track_key for o in out] == ["r1-1"]
    a.add(1.0, [face(1)])  # the same bucket, a new run: its own key, not a late frame
    assert [o.track_key for o in a.flush()] == ["r2-1"] and a.late == 0
    assert a.new_run() == [] and a.run_id not in ("r1", "r2") and len(a.run_id) == 8


def test_zone_is_where_the_box_centre_was_most_often():
    zones = [Zone(name="left", polygon=[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]), Zone(name="right", polygon=[(0.5, 0), (1, 0), (1, 1), (0.5, 1)])]
    a = agg(zones=zones)
    left, right = (10.0, 10.0, 40.0, 40.0), (400.0, 10.0, 430.0, 40.0)
    a.add(0.0, [face(1, box=left), face(2, box=right)], frame_size=(640, 480))
    a.add(1.0, [face(1, box=right)], frame_size=(640, 480))
    a.add(2.0, [face(1, box=left)], frame_size=(640, 480))
    assert {o.track_key: o.zone for o in a.flush()} == {"r1-1": "left", "r1-2": "right"}
    a.add(0.0 + 100, [face(1, box=left)])  # no frame size: no zone
    assert a.flush()[0].zone == ""


def test_probabilities_use_the_model_classes_in_order():
    a = BucketAggregator("c", ("sad", "happy", "neutral", "fear"), bucket_seconds=1)
    a.add(0.0, [face(1, probs=(0.6, 0.3, 0.1))])
    (o,) = a.flush()
    assert list(o.probs) == ["sad", "happy", "neutral", "fear"] and o.probs["fear"] == 0.0 and o.probs["happy"] == 0.6


def test_memory_holds_open_buckets_only():
    a = agg(bucket_seconds=1)
    for i in range(2000):
        a.add(i * 0.5, [face(1), face(2, size=20 + i % 5)])
    assert len(a._open) <= 3
    acc = next(iter(next(iter(a._open.values())).values()))
    assert len(acc.sizes) <= 5 and acc.frames <= 2


def test_median_of_a_histogram():
    assert _median(Counter({5: 1})) == 5.0
    assert _median(Counter({10: 1, 20: 1})) == 15.0
    assert _median(Counter({10: 2, 20: 1, 40: 1})) == 15.0
    assert _median(Counter({3: 5, 100: 2})) == 3.0


def test_bad_bucket_length():
    with pytest.raises(ValueError):
        BucketAggregator("c", CLASSES, bucket_seconds=0)
