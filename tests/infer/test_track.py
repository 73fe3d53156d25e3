"""Track ids: stable across motion, gaps and crossings; never reused."""

from __future__ import annotations

import numpy as np

from lrfer.infer.track import IoUTracker
from tests.infer.conftest import clip_boxes


def box_at(cx: float, cy: float, size: float) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]


def test_two_moving_faces_keep_their_ids():
    tracker = IoUTracker()
    rng = np.random.default_rng(0)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for i in range(40):
        boxes = np.array([box_at(100 + 4 * i, 100, 60), box_at(400 - 3 * i, 300, 80)], np.float32)
        order = rng.permutation(2)  # detectors list faces in no particular order
        ids = tracker.update(boxes[order])
        assert ids.dtype == np.int64 and len(set(ids.tolist())) == 2
        for face, tid in zip(order, ids):
            seen[int(face)].add(int(tid))
    assert seen == {0: {1}, 1: {2}}


def test_gap_shorter_than_max_age_keeps_the_id_longer_gives_a_new_one():
    tracker = IoUTracker(max_age=5)
    other = box_at(500, 400, 50)  # a face that stays, so frames are never empty
    ids = [tracker.update(np.array([box_at(100 + 2 * i, 100, 60), other], np.float32)) for i in range(3)]
    first = int(ids[0][0])
    assert all(int(x[0]) == first for x in ids)
    for _ in range(4):  # missing for 4 frames (< 5)
        tracker.update(np.array([other], np.float32))
    back = tracker.update(np.array([box_at(110, 100, 60), other], np.float32))
    assert int(back[0]) == first

    for _ in range(7):  # missing for 7 frames (> 5): the track is dropped
        tracker.update(np.array([other], np.float32))
    assert first not in tracker.active_ids()
    again = tracker.update(np.array([box_at(110, 100, 60), other], np.float32))
    assert int(again[0]) != first and int(again[0]) > max(first, int(back[1]))  # fresh, never a reused id
    assert int(again[1]) == int(back[1])


def test_dropped_reports_each_lost_track_once():
    tracker = IoUTracker(max_age=2)
    tracker.update(np.array([box_at(50, 50, 20)], np.float32))
    dropped = []
    for _ in range(6):
        tracker.update(np.zeros((0, 4), np.float32))
        dropped += tracker.dropped
    assert dropped == [1] and tracker.active_ids() == []


def test_crossing_faces_of_different_sizes_do_not_swap():
    tracker = IoUTracker()
    n = 60
    ids_per_face: list[set[int]] = [set(), set()]
    overlapped = False
    for i in range(n):
        boxes = clip_boxes(i, n, 640, 480)  # a 120x150 and a 40x50 face passing through each other
        x1, y1 = np.maximum(boxes[0, :2], boxes[1, :2])
        x2, y2 = np.minimum(boxes[0, 2:], boxes[1, 2:])
        overlapped |= bool(x2 > x1 and y2 > y1)
        ids = tracker.update(boxes[::-1] if i % 2 else boxes)
        ids = ids[::-1] if i % 2 else ids
        ids_per_face[0].add(int(ids[0]))
        ids_per_face[1].add(int(ids[1]))
    assert overlapped  # the paths really cross
    assert ids_per_face == [{1}, {2}]


def test_small_fast_face_without_overlap_keeps_its_id():
    # A 16 px face moving 24 px per frame: consecutive boxes never overlap (IoU 0).
    boxes = [np.array([box_at(20 + 24 * i, 100 + 3 * i, 16)], np.float32) for i in range(12)]
    tracker = IoUTracker()
    assert {int(tracker.update(b)[0]) for b in boxes} == {1}
    # Without the centre-distance fallback every frame would start a new track.
    no_fallback = IoUTracker(max_distance=0.0)
    assert len({int(no_fallback.update(b)[0]) for b in boxes}) == len(boxes)


def test_fallback_does_not_join_faces_of_very_different_size():
    tracker = IoUTracker()
    a = tracker.update(np.array([box_at(100, 100, 20)], np.float32))
    # Close by but five times larger: a different face, not the small one moved.
    b = tracker.update(np.array([box_at(130, 100, 100)], np.float32))
    assert int(a[0]) != int(b[0])


def test_empty_frames_and_reset():
    tracker = IoUTracker()
    assert tracker.update(np.zeros((0, 4), np.float32)).shape == (0,)
    assert tracker.update(np.array([box_at(10, 10, 8), box_at(80, 80, 8)], np.float32)).tolist() == [1, 2]
    tracker.reset()
    assert tracker.active_ids() == []
    assert tracker.update(np.array([box_at(300, 300, 8)], np.float32)).tolist() == [1]
