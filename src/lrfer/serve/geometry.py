"""Privacy masks and zones: polygons in fractions of the frame, turned into pixels.

A pixel belongs to a polygon when its centre does (even-odd rule, half-open edges), so two
polygons that share an edge never both claim a pixel, and a polygon over the left half of a
640-px frame covers exactly columns 0..319. Rasters are computed once per frame size and kept
(a camera's resolution rarely changes; a handful of sizes are remembered).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Optional

import numpy as np

from .config import Polygon, Zone

#: Frame sizes whose rasters are kept per Masks object.
_CACHED_SIZES = 4


def polygon_raster(polygons: Sequence[Polygon], width: int, height: int) -> np.ndarray:
    """``(height, width)`` bool: True where a pixel's centre lies inside any of ``polygons``."""
    out = np.zeros((height, width), bool)
    if width <= 0 or height <= 0:
        return out
    centres = (np.arange(height) + 0.5) / height  # row centres, as fractions
    for poly in polygons:
        pts = np.asarray(poly, np.float64).reshape(-1, 2)
        x1, y1 = pts[:, 0], pts[:, 1]
        x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
        yc = centres[:, None]
        crosses = (y1[None, :] <= yc) != (y2[None, :] <= yc)  # half-open: a vertex counts once
        with np.errstate(divide="ignore", invalid="ignore"):
            xs = x1[None, :] + (yc - y1[None, :]) * (x2 - x1)[None, :] / (y2 - y1)[None, :]
        rows, edges = np.nonzero(crosses)
        # The first pixel column whose centre lies at or right of the crossing.
        cols = np.clip(np.ceil(xs[rows, edges] * width - 0.5), 0, width).astype(np.int64)
        toggles = np.zeros((height, width + 1), np.int32)
        np.add.at(toggles, (rows, cols), 1)
        out |= (np.cumsum(toggles, axis=1)[:, :width] % 2) == 1
    return out


def point_in_polygon(x: float, y: float, poly: Polygon) -> bool:
    """Whether the point ``(x, y)`` (fractions of the frame) is inside ``poly`` (same rule as the raster)."""
    inside = False
    n = len(poly)
    for i in range(n):
        (xa, ya), (xb, yb) = poly[i], poly[(i + 1) % n]
        if (ya <= y) != (yb <= y) and x >= xa + (y - ya) * (xb - xa) / (yb - ya):
            inside = not inside
    return inside


class Masks:
    """A camera's privacy masks: ``apply`` blacks them out of a frame (in place)."""

    def __init__(self, polygons: Sequence[Polygon]):
        self.polygons = [list(p) for p in polygons]
        self._rasters: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def raster(self, width: int, height: int) -> Optional[np.ndarray]:
        """The masked pixels of a ``width`` x ``height`` frame; None without masks."""
        if not self.polygons:
            return None
        key = (int(width), int(height))
        r = self._rasters.get(key)
        if r is None:
            r = self._rasters[key] = polygon_raster(self.polygons, *key)
            while len(self._rasters) > _CACHED_SIZES:
                self._rasters.popitem(last=False)
        else:
            self._rasters.move_to_end(key)
        return r

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Set the masked pixels of ``image`` (HxW or HxWxC) to 0, in place; returns it."""
        r = self.raster(image.shape[1], image.shape[0])
        if r is not None:
            image[r] = 0
        return image


class Zones:
    """A camera's named zones: ``of_box`` names the zone holding a face box's centre."""

    def __init__(self, zones: Sequence[Zone]):
        self.zones = list(zones)

    def __bool__(self) -> bool:
        return bool(self.zones)

    def at(self, x: float, y: float) -> str:
        """The first zone containing the point (fractions of the frame), "" when none does."""
        for z in self.zones:
            if point_in_polygon(x, y, z.polygon):
                return z.name
        return ""

    def of_box(self, box: Sequence[float], width: int, height: int) -> str:
        """The zone of a box ``(x1, y1, x2, y2)`` in the pixels of a ``width`` x ``height`` frame."""
        if not self.zones or width <= 0 or height <= 0:
            return ""
        x1, y1, x2, y2 = box[:4]
        return self.at((x1 + x2) / 2 / width, (y1 + y2) / 2 / height)
