"""Mood through the day (lrfer.serve.profile): hourly rollups folded onto the hours of a local day."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from lrfer.serve.profile import day_profile, parse_days

MON_08 = datetime(2026, 1, 5, 8, tzinfo=timezone.utc).timestamp()  # a Monday, winter: Berlin is UTC+1
DAY = 86400.0


def rows():
    return [
        (MON_08, 10, 8, 2, {"sad": 4.0, "happy": 4.0}),
        (MON_08, 6, 4, 2, {"sad": 0.0, "happy": 4.0}),  # a second zone of the same window: its people add up
        (MON_08 + DAY, 10, 8, 3, {"sad": 0.0, "happy": 8.0}),  # Tuesday
        (MON_08 + 5 * DAY, 10, 8, 1, {"sad": 8.0, "happy": 0.0}),  # Saturday
        (MON_08 + 3600, 12, 0, 1, {}),  # Monday 09:00 UTC: faces, none certain
    ]


def test_each_window_lands_on_its_local_hour_with_its_shares_people_and_days():
    utc = day_profile(rows(), ZoneInfo("UTC"))
    h8, h9 = utc["hours"][8], utc["hours"][9]
    assert len(utc["hours"]) == 24 and utc["classes"] == ["sad", "happy"] and utc["tz"] == "UTC"
    assert h8["certain"] == 28 and h8["shares"]["sad"] == pytest.approx(12 / 28, abs=1e-4) and h8["shares"]["happy"] == pytest.approx(16 / 28, abs=1e-4)
    assert h8["tracks"] == 4 and h8["days"] == 3  # Monday's two zones together are the most people in one window
    assert h9["frames"] == 12 and h9["shares"] == {"sad": None, "happy": None} and h9["days"] == 0
    assert all(h["frames"] == 0 for h in utc["hours"] if h["hour"] not in (8, 9))
    berlin = day_profile(rows(), ZoneInfo("Europe/Berlin"))
    assert berlin["hours"][9]["certain"] == 28 and berlin["hours"][8]["frames"] == 0
    kolkata = day_profile(rows(), ZoneInfo("Asia/Kolkata"))  # 08:00-09:00 UTC is 13:30-14:30 there: its middle, 14:00
    assert kolkata["hours"][14]["certain"] == 28


def test_days_of_the_week_select_the_windows():
    weekdays = day_profile(rows(), ZoneInfo("UTC"), parse_days("weekdays"))
    assert weekdays["hours"][8]["shares"]["sad"] == pytest.approx(4 / 20, abs=1e-4) and weekdays["hours"][8]["days"] == 2
    weekend = day_profile(rows(), ZoneInfo("UTC"), parse_days("weekend"))
    assert weekend["hours"][8]["shares"]["sad"] == 1.0 and weekend["weekdays"] == ["sat", "sun"]
    assert day_profile(rows(), ZoneInfo("UTC"), parse_days("tue"))["hours"][8]["tracks"] == 3


def test_parse_days_names_what_is_wrong():
    assert parse_days("") == parse_days("all") == frozenset(range(7))
    assert parse_days("Mon, sun") == frozenset({0, 6})
    with pytest.raises(ValueError, match="unknown day funday"):
        parse_days("mon,funday")
    with pytest.raises(ValueError, match="unknown day"):
        parse_days(",")
