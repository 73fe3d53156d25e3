"""Masks and zones: polygons in fractions of the frame, rasterised exactly and cached per size."""

from __future__ import annotations

import numpy as np
import pytest

from lrfer.serve.config import Zone
from lrfer.serve.geometry import Masks, Zones, point_in_polygon, polygon_raster

LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
RIGHT_HALF = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
TRIANGLE = [(0.1, 0.1), (0.9, 0.1), (0.1, 0.9)]


def test_left_half_covers_exactly_the_left_columns():
    r = polygon_raster([LEFT_HALF], 640, 480)
    assert r.shape == (480, 640) and r.dtype == bool
    assert r[:, :320].all() and not r[:, 320:].any()


def test_the_whole_frame_and_nothing():
    assert polygon_raster([[(0, 0), (1, 0), (1, 1), (0, 1)]], 33, 17).all()
    assert not polygon_raster([], 33, 17).any()


def test_polygons_sharing_an_edge_never_share_a_pixel():
    a, b = polygon_raster([LEFT_HALF], 101, 37), polygon_raster([RIGHT_HALF], 101, 37)
    assert not (a & b).any() and (a | b).all()


def test_triangle_area_and_point_rule_agree_with_the_raster():
    w, h = 200, 100
    r = polygon_raster([TRIANGLE], w, h)
    assert abs(r.mean() - 0.32) < 0.01  # half of a 0.8 x 0.8 square
    ys, xs = np.mgrid[0:h, 0:w]
    for y, x in zip(ys.ravel()[::97], xs.ravel()[::97]):
        assert r[y, x] == point_in_polygon((x + 0.5) / w, (y + 0.5) / h, TRIANGLE)


def test_union_of_overlapping_polygons_is_not_cancelled():
    # Even-odd applies within one polygon; two overlapping masks both stay masked.
    r = polygon_raster([LEFT_HALF, [(0.25, 0), (0.75, 0), (0.75, 1), (0.25, 1)]], 100, 10)
    assert r[:, :75].all() and not r[:, 75:].any()


def test_concave_polygon():
    u = [(0.0, 0.0), (0.3, 0.0), (0.3, 0.7), (0.7, 0.7), (0.7, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]  # a U
    r = polygon_raster([u], 100, 100)
    assert not r[10, 50] and r[90, 50] and r[10, 10] and r[10, 90]


def test_masks_black_out_in_place_and_cache_per_size():
    masks = Masks([LEFT_HALF])
    img = np.full((48, 64, 3), 200, np.uint8)
    assert masks.apply(img) is img
    assert (img[:, :32] == 0).all() and (img[:, 32:] == 200).all()
    first = masks.raster(64, 48)
    assert masks.raster(64, 48) is first  # cached
    for w in range(10, 16):
        masks.raster(w, 10)
    assert len(masks._rasters) <= 4  # a few sizes kept, not every size ever seen
    gray = np.full((10, 10), 9, np.uint8)
    assert (Masks([LEFT_HALF]).apply(gray)[:, :5] == 0).all()


def test_no_masks_leave_the_frame_alone():
    masks = Masks([])
    img = np.full((4, 4, 3), 7, np.uint8)
    assert not masks and masks.raster(4, 4) is None and (masks.apply(img) == 7).all()


@pytest.mark.parametrize(("box", "zone"), [((10, 10, 50, 50), "door"), ((400, 300, 440, 340), "sofa"), ((300, 10, 340, 50), "")])
def test_zone_of_a_box_centre(box, zone):
    zones = Zones([Zone(name="door", polygon=[(0, 0), (0.25, 0), (0.25, 0.5), (0, 0.5)]), Zone(name="sofa", polygon=[(0.5, 0.5), (1, 0.5), (1, 1), (0.5, 1)])])
    assert zones.of_box(box, 640, 480) == zone


def test_first_listed_zone_wins_and_no_zones_give_empty():
    zones = Zones([Zone(name="a", polygon=LEFT_HALF), Zone(name="b", polygon=[(0, 0), (1, 0), (1, 1), (0, 1)])])
    assert zones.of_box((0, 0, 10, 10), 100, 100) == "a" and zones.of_box((90, 0, 100, 10), 100, 100) == "b"
    assert Zones([]).of_box((0, 0, 10, 10), 100, 100) == ""
