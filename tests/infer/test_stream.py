"""The video helpers on their own: batching, the bounded reader thread, per-track state."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lrfer.infer.pipeline import Face
from lrfer.infer.stream import FaceTracks, batches, in_background


def test_batches_keep_order_and_the_short_tail():
    assert list(batches(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches([], 3)) == []


def test_in_background_works_in_another_thread_and_stays_bounded():
    read = []

    def items():
        for i in range(100):
            read.append(i)
            yield i

    results = in_background(items(), lambda i: (i * i, threading.current_thread().name), depth=2)
    first = next(results)
    time.sleep(0.3)  # the reader fills the queue, then waits
    assert first == (0, (0, "lrfer-detect"))
    assert len(read) <= 4  # the one handed out, two queued, one waiting to be queued
    rest = list(results)
    assert [i for i, _ in rest] == list(range(1, 100)) and all(sq == i * i for i, (sq, _) in rest)


def test_in_background_raises_the_readers_error_here():
    def items():
        yield 1
        raise OSError("camera unplugged")

    with pytest.raises(OSError, match="camera unplugged"):
        list(in_background(items(), lambda i: i))


def face(probs) -> Face:
    f = Face((0, 0, 10, 10), 1.0, 10, {}, "", 0.0)
    f.read(("a", "b"), np.asarray(probs, np.float32))
    return f


def test_face_tracks_give_ids_and_smooth_a_track():
    tracks = FaceTracks(("a", "b"), smoothing="ema", alpha=0.5)
    box = np.array([[0, 0, 10, 10]], np.float32)
    first, second = [face([1.0, 0.0])], [face([0.0, 1.0])]
    tracks.update(box, first)
    tracks.update(box, second)
    assert first[0].track_id == second[0].track_id
    assert second[0].probabilities == {"a": 0.5, "b": 0.5}  # half of the new frame, half of the track so far
    tracks.update(np.zeros((0, 4), np.float32), [])
    tracks.forget_lost()  # the track is still young: kept
    assert len(list(tracks.smoother.track_ids())) == 1
