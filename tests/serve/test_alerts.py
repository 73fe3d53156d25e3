"""AlertEngine on synthetic bucket sequences: what fires, what stays silent, and why."""

from __future__ import annotations

import pytest

from lrfer.serve.alerts import AlertEngine
from lrfer.serve.config import Rule
from lrfer.serve.records import Observation

T0 = 1_700_000_000.0
B = 5  # bucket seconds


class Clock:
    """Scene time: the tests move it with the data, as the bench does."""

    def __init__(self):
        self.t = T0

    def __call__(self) -> float:
        return self.t


def ob(t: float, share: float, *, camera: str = "lounge", track: str = "r1-1", zone: str = "", certain: int = 3, face_px: float = 30.0) -> Observation:
    probs = {"sad": share * 0.6, "angry": share * 0.4, "neutral": (1 - share) * 0.7, "happy": (1 - share) * 0.3} if certain else None
    return Observation(camera, track, zone, t, B, frames=max(certain, 3), certain=certain, probs=probs, face_px=face_px, score=0.9)


def run(engine: AlertEngine, clock: Clock, series: dict[str, list[tuple[float, float]]], **kw) -> list:
    """Feed several tracks bucket by bucket (each tracks' list of (t, share)), as a camera worker would."""
    times = sorted({t for s in series.values() for t, _ in s})
    by_track = {k: dict(v) for k, v in series.items()}
    events = []
    for t in times:
        clock.t = t + 2 * B
        batch = [ob(t, s[t], track=k, **kw) for k, s in by_track.items() if t in s]
        events += engine.observe(batch)
    return events


def steady(start_min: float, minutes: float, share: float) -> list[tuple[float, float]]:
    n = int(minutes * 60 / B)
    return [(T0 + start_min * 60 + i * B, share) for i in range(n)]


@pytest.fixture
def clock():
    return Clock()


def test_a_resting_face_read_as_sad_raises_nothing(clock):
    # 0.5 all along, then 0.62 (above the threshold, but within the margin of the person's own 0.5)
    eng = AlertEngine([Rule()], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 30, 0.5) + steady(30, 10, 0.62)}) == []
    # without the baseline the same face is an alert: the baseline is what keeps it quiet
    eng = AlertEngine([Rule(baseline="none")], clock=clock)
    assert len(run(eng, clock, {"r1-1": steady(0, 30, 0.5) + steady(30, 10, 0.62)})) == 1


def test_a_rise_from_the_own_baseline_alerts_once(clock):
    eng = AlertEngine([Rule()], clock=clock, camera_names={"lounge": "Lounge camera"})
    events = run(eng, clock, {"r1-1": steady(0, 10, 0.2) + steady(10, 3, 0.8)})
    assert len(events) == 1  # the cooldown holds back the buckets after the first alert
    e = events[0]
    assert (e.camera_id, e.track_key, e.rule, e.zone) == ("lounge", "r1-1", "distress", "")
    ev = e.evidence
    assert ev["baseline_kind"] == "own" and ev["baseline"] == pytest.approx(0.2)
    assert ev["share"] >= 0.55 and ev["share"] > ev["baseline"] + 0.15 and ev["observations"] >= 12 and ev["face_px"] == 30.0
    # fired within the window once enough sad buckets outweigh the calm ones, not at the first sad bucket
    assert T0 + 10 * 60 + 60 <= ev["observed_until"] <= T0 + 12 * 60
    assert e.message.startswith("Lounge camera: a person has looked distressed for 2 min (")
    assert "negative vs 20% usual)" in e.message
    assert e.opened_at == clock.t or e.opened_at <= clock.t


def test_after_the_cooldown_a_new_episode_alerts_again(clock):
    eng = AlertEngine([Rule(cooldown_minutes=15)], clock=clock)
    calm, sad = 0.2, 0.85
    seq = steady(0, 10, calm) + steady(10, 3, sad) + steady(13, 30, calm) + steady(43, 3, sad)
    events = run(eng, clock, {"r1-1": seq})
    assert len(events) == 2
    assert events[1].evidence["observed_until"] - events[0].evidence["observed_until"] > 30 * 60


def test_a_track_lost_and_found_again_keeps_its_history(clock):
    # the tracker loses the face for 10 s and gives it a new id: the new track goes on from the old one's baseline
    calm = steady(0, 10, 0.2)
    later = [(t + 10 * 60 + 10, s) for t, s in steady(0, 1, 0.2) + steady(1, 3, 0.8)]
    eng = AlertEngine([Rule()], clock=clock)
    events = run(eng, clock, {"r1-1": calm, "r1-2": later})
    assert [e.track_key for e in events] == ["r1-2"]
    assert events[0].evidence["baseline_kind"] == "own" and events[0].evidence["baseline"] == pytest.approx(0.2)
    assert eng.tracks == 1  # joined, not two
    # and an alert already raised is not raised again for the same person under a new id
    eng = AlertEngine([Rule()], clock=clock)
    upset = [(t + 13 * 60 + 10, s) for t, s in steady(0, 5, 0.8)]
    events = run(eng, clock, {"r1-1": calm + steady(10, 3, 0.8), "r1-2": upset})
    assert [e.track_key for e in events] == ["r1-1"]


def test_a_different_face_is_not_joined(clock):
    # a face half the size appearing after another left is another person: no history, no joined cooldown
    eng = AlertEngine([Rule()], clock=clock)
    first = run(eng, clock, {"r1-1": steady(0, 10, 0.2) + steady(10, 3, 0.8)}, face_px=40)
    second = run(eng, clock, {"r1-2": [(t + 13 * 60 + 10, s) for t, s in steady(0, 3, 0.8)]}, face_px=20)
    assert len(first) == 1 and [e.track_key for e in second] == ["r1-2"]
    assert second[0].evidence["baseline_kind"] == "none"


def test_too_few_observations_raise_nothing(clock):
    eng = AlertEngine([Rule(min_observations=12)], clock=clock)
    # a face seen for 50 s: 10 buckets of evidence, all very sad
    assert run(eng, clock, {"r1-1": steady(0, 50 / 60, 0.95)}) == []
    # a face seen on and off: one bucket in three over 10 minutes (8 per 2-minute window)
    sparse = [(t, s) for i, (t, s) in enumerate(steady(0, 10, 0.95)) if i % 3 == 0]
    assert run(eng, clock, {"r1-2": sparse}) == []


def test_uncertain_observations_are_not_evidence(clock):
    eng = AlertEngine([Rule()], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 10, 0.95)}, certain=0) == []
    # uncertain buckets in between do not dilute the evidence either: the same faces, made sure, alert
    events = run(eng, clock, {"r1-2": steady(0, 10, 0.95)}, certain=2)
    assert len(events) == 1 and events[0].evidence["certain_frames"] == 2 * events[0].evidence["observations"]


def test_a_new_track_is_judged_against_the_others_in_its_zone(clock):
    eng = AlertEngine([Rule()], clock=clock)
    others = {"r1-1": steady(0, 20, 0.45), "r1-2": steady(0, 20, 0.5)}
    # everyone here reads about 0.48: a newcomer at 0.6 is above the threshold but typical here, not an alert
    assert run(eng, clock, {**others, "r1-3": steady(15, 5, 0.6)}, zone="sofa") == []
    eng = AlertEngine([Rule()], clock=clock)
    events = run(eng, clock, {**others, "r1-3": steady(15, 5, 0.92)}, zone="sofa")
    assert [e.track_key for e in events] == ["r1-3"]
    assert events[0].evidence["baseline_kind"] == "peers" and events[0].evidence["baseline"] == pytest.approx(0.475)
    assert "typical here" in events[0].message and events[0].zone == "sofa"


def test_zone_rule_weighs_everyone_in_the_zone(clock):
    rule = Rule(name="sofa-mood", scope="zone", zone="sofa", min_observations=12)
    eng = AlertEngine([rule], clock=clock, camera_names={"lounge": "Lounge"})
    calm = {f"r1-{i}": steady(0, 60, 0.2) for i in range(3)}
    assert run(eng, clock, calm, zone="sofa") == []
    upset = {f"r1-{i}": steady(60, 3, 0.8) for i in range(3)}
    events = run(eng, clock, upset, zone="sofa")
    assert len(events) == 1
    e = events[0]
    assert e.track_key is None and e.zone == "sofa" and e.rule == "sofa-mood"
    assert e.evidence["baseline_kind"] == "zone" and e.evidence["baseline"] == pytest.approx(0.2) and e.evidence["tracks"] == 3
    assert e.message.startswith("Lounge, sofa: people here have looked distressed")
    # the same faces elsewhere in the camera do not count for the sofa
    eng = AlertEngine([rule], clock=clock)
    assert run(eng, clock, {**calm, **upset}, zone="door") == []


def test_whole_camera_zone_rule(clock):
    eng = AlertEngine([Rule(scope="zone", baseline="none")], clock=clock)
    events = run(eng, clock, {"r1-1": steady(0, 3, 0.9), "r1-2": steady(0, 3, 0.7)}, zone="door")
    assert len(events) == 1 and events[0].zone == "" and events[0].track_key is None
    assert events[0].evidence["share"] == pytest.approx(0.8)


def test_rules_apply_only_to_their_cameras(clock):
    eng = AlertEngine([Rule(cameras=["hall"], baseline="none")], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 5, 0.9)}, camera="lounge") == []
    assert len(run(eng, clock, {"r1-1": steady(0, 5, 0.9)}, camera="hall")) == 1


def test_set_rules(clock):
    eng = AlertEngine([], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 3, 0.9)}) == []
    eng.set_rules([Rule(baseline="none", enabled=False)])
    assert run(eng, clock, {"r1-1": steady(3, 3, 0.9)}) == []
    eng.set_rules([Rule(baseline="none")])
    assert len(run(eng, clock, {"r1-1": steady(6, 3, 0.9)})) == 1
    # an edited rule keeps its cooldown (same name): no second alert for the same person at once
    eng.set_rules([Rule(baseline="none", threshold=0.5)])
    assert run(eng, clock, {"r1-1": steady(9, 3, 0.9)}) == []
    eng.set_rules([Rule(name="other", baseline="none")])
    assert [e.rule for e in run(eng, clock, {"r1-1": steady(12, 3, 0.9)})] == ["other"]


def test_late_data_raises_no_alert(clock):
    eng = AlertEngine([Rule(baseline="none")], clock=clock, max_delay_seconds=300)
    batch = [ob(t, s) for t, s in steady(0, 3, 0.9)]
    clock.t = T0 + 3600  # a remote worker's buffer replayed an hour late
    assert eng.observe(batch) == []


def test_replayed_buckets_are_not_counted_twice(clock):
    eng = AlertEngine([Rule(baseline="none", min_observations=12)], clock=clock)
    first = [ob(t, s) for t, s in steady(0, 40 / 60, 0.9)]  # 8 buckets
    clock.t = T0 + 60
    assert eng.observe(first) == [] and eng.observe(first) == []  # 16 deliveries, 8 buckets
    more = [ob(t, s) for t, s in steady(40 / 60, 20 / 60, 0.9)]  # 4 more: 12 in all
    assert len(eng.observe(more)) == 1


def test_memory_stays_bounded(clock):
    eng = AlertEngine([Rule()], clock=clock, baseline_minutes=10, forget_minutes=10, link_seconds=0)
    for hour in range(6):  # six hours of short tracks, a new one every minute
        for m in range(60):
            key = f"r1-{hour * 60 + m}"
            run(eng, clock, {key: steady(hour * 60 + m, 1, 0.3)})
    assert eng.tracks <= 12
    run(eng, clock, {"long": steady(400, 120, 0.3)})  # one track for two hours keeps ~12 minutes
    track = eng._tracks[("lounge", "long")]
    assert len(track.buckets) <= (10 + 2) * 60 / B + 2
    assert all(len(z.buckets) <= 2 * (10 + 2) * 60 / B + 20 for z in eng._zones.values())
    eng.close_track("lounge", "long")
    assert ("lounge", "long") not in eng._tracks
