"""Mood through the day: each expression's share per hour of the day over many days, in the site's
time zone (a shop's question: are our customers calmer in the morning than at the evening rush?).

Built from the hourly rollups (``store.rollups`` at 3600 s), so four weeks of a camera are 672
rows, not millions of observations. Rollup windows are whole UTC hours; each is counted in the
local hour its middle falls in, which for a zone offset by half an hour (India, parts of
Australia) is the later of the two local hours it spans.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_SETS = {"": frozenset(range(7)), "all": frozenset(range(7)), "weekdays": frozenset(range(5)), "weekend": frozenset({5, 6})}
HOUR = 3600


def parse_days(text: str) -> frozenset[int]:
    """``"mon,tue"``, ``"weekdays"``, ``"weekend"`` or ``""``/``"all"`` as weekday numbers (Monday 0);
    ValueError naming what is wrong otherwise."""
    text = (text or "").strip().lower()
    if text in DAY_SETS:
        return DAY_SETS[text]
    names = [d.strip() for d in text.split(",") if d.strip()]
    unknown = [d for d in names if d not in WEEKDAYS]
    if unknown or not names:
        what = ", ".join(unknown) if unknown else repr(text)
        raise ValueError(f"unknown day {what}: give mon ... sun (comma-separated), weekdays, weekend or all")
    return frozenset(WEEKDAYS.index(d) for d in names)


def day_profile(rows: Iterable[tuple], tz: ZoneInfo, days: frozenset[int] = DAY_SETS["all"]) -> dict[str, Any]:
    """Per local hour 0-23: the shares of each expression over the certain frames of every window of
    that hour on the wanted ``days`` (None where no face was certain), the frames, the certain frames,
    ``tracks`` (the most people in one window of that hour, zones added up: a lower bound of the
    people behind the hour's shares, what a k-anonymity threshold needs) and ``days`` (the dates
    with certain faces in that hour).

    ``rows``: ``(window start, frames, certain, tracks, {class: sum of probabilities})`` per camera,
    zone and hour window, as :meth:`lrfer.serve.store.Store.rollup_rows` yields them."""
    acc = [{"frames": 0, "certain": 0, "sums": {}, "windows": {}, "dates": set()} for _ in range(24)]
    classes: list[str] = []
    for start, frames, certain, tracks, sums in rows:
        local = datetime.fromtimestamp(start + HOUR / 2, tz)
        if local.weekday() not in days:
            continue
        a = acc[local.hour]
        a["frames"] += frames
        a["certain"] += certain
        a["windows"][start] = a["windows"].get(start, 0) + tracks
        if certain:
            a["dates"].add(local.date())
        for c, v in sums.items():
            a["sums"][c] = a["sums"].get(c, 0.0) + v
            if c not in classes:
                classes.append(c)
    hours = []
    for h, a in enumerate(acc):
        shares = {c: (round(a["sums"].get(c, 0.0) / a["certain"], 4) if a["certain"] else None) for c in classes}
        hours.append({"hour": h, "frames": a["frames"], "certain": a["certain"], "tracks": max(a["windows"].values(), default=0),
                      "days": len(a["dates"]), "shares": shares})  # fmt: skip
    return {"classes": classes, "tz": tz.key, "weekdays": [WEEKDAYS[d] for d in sorted(days)], "hours": hours}
