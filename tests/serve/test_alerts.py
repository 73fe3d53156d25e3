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


def rule(**kw) -> Rule:
    """The rule these sequences were written for (the shipped defaults are tuned by bench/serve_alerts.py and may move)."""
    return Rule(**{"method": "window", "threshold": 0.55, "minutes": 2.0, "min_observations": 12, "margin": 0.15, "cooldown_minutes": 15.0, **kw})


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
    eng = AlertEngine([rule()], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 30, 0.5) + steady(30, 10, 0.62)}) == []
    # without the baseline the same face is an alert: the baseline is what keeps it quiet
    eng = AlertEngine([rule(baseline="none")], clock=clock)
    assert len(run(eng, clock, {"r1-1": steady(0, 30, 0.5) + steady(30, 10, 0.62)})) == 1


def test_the_shipped_rule_on_a_resting_face_and_on_distress(clock):
    eng = AlertEngine([Rule()], clock=clock)
    # a resting face read as rather sad (0.62), then a little more (0.74: over the threshold, not over its own 0.62 + 0.15)
    assert run(eng, clock, {"r1-1": steady(0, 20, 0.62) + steady(20, 10, 0.74)}) == []
    events = run(eng, clock, {"r1-2": steady(0, 10, 0.3) + steady(10, 5, 0.85)})
    assert len(events) == 1 and T0 + 10 * 60 < events[0].evidence["observed_until"] <= T0 + 13 * 60


def test_a_rise_from_the_own_baseline_alerts_once(clock):
    eng = AlertEngine([rule()], clock=clock, camera_names={"lounge": "Lounge camera"})
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
    eng = AlertEngine([rule(cooldown_minutes=15)], clock=clock)
    calm, sad = 0.2, 0.85
    seq = steady(0, 10, calm) + steady(10, 3, sad) + steady(13, 30, calm) + steady(43, 3, sad)
    events = run(eng, clock, {"r1-1": seq})
    assert len(events) == 2
    assert events[1].evidence["observed_until"] - events[0].evidence["observed_until"] > 30 * 60


def test_a_track_lost_and_found_again_keeps_its_history(clock):
    # the tracker loses the face for 10 s and gives it a new id: the new track goes on from the old one's baseline
    calm = steady(0, 10, 0.2)
    later = [(t + 10 * 60 + 10, s) for t, s in steady(0, 1, 0.2) + steady(1, 3, 0.8)]
    eng = AlertEngine([rule()], clock=clock)
    events = run(eng, clock, {"r1-1": calm, "r1-2": later})
    assert [e.track_key for e in events] == ["r1-2"]
    assert events[0].evidence["baseline_kind"] == "own" and events[0].evidence["baseline"] == pytest.approx(0.2)
    assert eng.tracks == 1  # joined, not two
    # and an alert already raised is not raised again for the same person under a new id
    eng = AlertEngine([rule()], clock=clock)
    upset = [(t + 13 * 60 + 10, s) for t, s in steady(0, 5, 0.8)]
    events = run(eng, clock, {"r1-1": calm + steady(10, 3, 0.8), "r1-2": upset})
    assert [e.track_key for e in events] == ["r1-1"]


def test_a_different_face_is_not_joined(clock):
    # a face half the size appearing after another left is another person: no history, no joined cooldown
    eng = AlertEngine([rule()], clock=clock)
    first = run(eng, clock, {"r1-1": steady(0, 10, 0.2) + steady(10, 3, 0.8)}, face_px=40)
    second = run(eng, clock, {"r1-2": [(t + 13 * 60 + 10, s) for t, s in steady(0, 3, 0.8)]}, face_px=20)
    assert len(first) == 1 and [e.track_key for e in second] == ["r1-2"]
    assert second[0].evidence["baseline_kind"] == "none"


def test_the_window_asks_more_of_a_face_it_has_no_history_of(clock):
    # a new person reading 0.58 from the start (a resting face that looks sad): above the threshold 0.55,
    # not above it plus the unfamiliar margin; once the face is its own baseline it never alerts
    calm = rule(unfamiliar_margin=0.05)
    assert run(AlertEngine([calm], clock=clock), clock, {"new": steady(0, 20, 0.58)}) == []
    events = run(AlertEngine([rule(unfamiliar_margin=0.0)], clock=clock), clock, {"new2": steady(0, 20, 0.58)})
    assert len(events) == 1 and events[0].evidence["baseline_kind"] == "none"
    # a rule without baselines has no one to be unfamiliar with: the margin does not apply
    assert len(run(AlertEngine([rule(baseline="none", unfamiliar_margin=0.05)], clock=clock), clock, {"new3": steady(0, 10, 0.58)})) == 1
    # and a person who has their own history is judged against it alone
    events = run(AlertEngine([calm], clock=clock), clock, {"known": steady(0, 10, 0.3) + steady(10, 5, 0.58)})
    assert len(events) == 1 and events[0].evidence["baseline_kind"] == "own"


def test_a_muted_camera_raises_nothing_until_the_mute_ends(clock):
    eng = AlertEngine([Rule()], clock=clock)
    eng.mute("lounge", T0 + 20 * 60)  # a party from minute 0 to 20
    events = run(eng, clock, {"r1-1": steady(0, 10, 0.3) + steady(10, 20, 0.9)})
    # distressed from minute 10: nothing while muted, then at once (the evidence kept adding up), not a cooldown later
    assert len(events) == 1 and T0 + 20 * 60 <= events[0].evidence["observed_until"] <= T0 + 20 * 60 + 2 * B
    eng = AlertEngine([Rule()], clock=clock)
    eng.mute("hall", T0 + 20 * 60)  # another camera's mute changes nothing here
    eng.mute("hall", None)
    assert first_alert_after(run(eng, clock, {"r1-2": steady(0, 10, 0.3) + steady(10, 20, 0.9)}), 10) <= 60


def test_a_false_alarm_teaches_the_engine_that_face_at_that_share_is_fine(clock):
    eng = AlertEngine([Rule(baseline="none", cooldown_minutes=5)], clock=clock)
    series = steady(0, 40, 0.8) + steady(40, 10, 0.99)  # a resting face read as 0.8, then real distress
    events, judged = [], False
    for t, share in series:
        clock.t = t + 2 * B
        new = eng.observe([ob(t, share, track="r1-1" if t < T0 + 10 * 60 else "r1-2")])  # the tracker lost the face once
        events += new
        if new and not judged:
            assert eng.false_alarm("lounge", new[0].track_key, new[0].evidence["share"])  # the nurse: "she is fine"
            judged = True
    times = [e.evidence["observed_until"] - T0 for e in events]
    # one alert at the start; none while the face stays at 0.8, followed across the tracker's new id;
    # then the real distress (0.99 > 0.8 + the margin) alerts (once per cooldown)
    assert times[0] <= 90 and len(times) >= 2 and all(t >= 40 * 60 for t in times[1:])
    assert not eng.false_alarm("lounge", "gone", 0.8)
    # without the verdict the same face alerts once per cooldown while it stays at 0.8
    control = run(AlertEngine([Rule(baseline="none", cooldown_minutes=5)], clock=clock), clock, {"r2-1": steady(0, 40, 0.8)})
    assert len(control) >= 6


def test_too_few_observations_raise_nothing(clock):
    eng = AlertEngine([rule(min_observations=12)], clock=clock)
    # a face seen for 50 s: 10 buckets of evidence, all very sad
    assert run(eng, clock, {"r1-1": steady(0, 50 / 60, 0.95)}) == []
    # a face seen on and off: one bucket in three over 10 minutes (8 per 2-minute window)
    sparse = [(t, s) for i, (t, s) in enumerate(steady(0, 10, 0.95)) if i % 3 == 0]
    assert run(eng, clock, {"r1-2": sparse}) == []


def test_uncertain_observations_are_not_evidence(clock):
    eng = AlertEngine([rule()], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 10, 0.95)}, certain=0) == []
    # uncertain buckets in between do not dilute the evidence either: the same faces, made sure, alert
    events = run(eng, clock, {"r1-2": steady(0, 10, 0.95)}, certain=2)
    assert len(events) == 1 and events[0].evidence["certain_frames"] == 2 * events[0].evidence["observations"]


def test_a_new_track_is_judged_against_the_others_in_its_zone(clock):
    eng = AlertEngine([rule()], clock=clock)
    others = {"r1-1": steady(0, 20, 0.45), "r1-2": steady(0, 20, 0.5)}
    # everyone here reads about 0.48: a newcomer at 0.6 is above the threshold but typical here, not an alert
    assert run(eng, clock, {**others, "r1-3": steady(15, 5, 0.6)}, zone="sofa") == []
    eng = AlertEngine([rule()], clock=clock)
    events = run(eng, clock, {**others, "r1-3": steady(15, 5, 0.92)}, zone="sofa")
    assert [e.track_key for e in events] == ["r1-3"]
    assert events[0].evidence["baseline_kind"] == "peers" and events[0].evidence["baseline"] == pytest.approx(0.475)
    assert "typical here" in events[0].message and events[0].zone == "sofa"


def test_zone_rule_weighs_everyone_in_the_zone(clock):
    sofa = rule(name="sofa-mood", scope="zone", zone="sofa", min_observations=12)
    eng = AlertEngine([sofa], clock=clock, camera_names={"lounge": "Lounge"})
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
    eng = AlertEngine([sofa], clock=clock)
    assert run(eng, clock, {**calm, **upset}, zone="door") == []


def test_whole_camera_zone_rule(clock):
    eng = AlertEngine([rule(scope="zone", baseline="none")], clock=clock)
    events = run(eng, clock, {"r1-1": steady(0, 3, 0.9), "r1-2": steady(0, 3, 0.7)}, zone="door")
    assert len(events) == 1 and events[0].zone == "" and events[0].track_key is None
    assert events[0].evidence["share"] == pytest.approx(0.8)


def test_rules_apply_only_to_their_cameras(clock):
    eng = AlertEngine([rule(cameras=["hall"], baseline="none")], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 5, 0.9)}, camera="lounge") == []
    assert len(run(eng, clock, {"r1-1": steady(0, 5, 0.9)}, camera="hall")) == 1


def test_set_rules(clock):
    eng = AlertEngine([], clock=clock)
    assert run(eng, clock, {"r1-1": steady(0, 3, 0.9)}) == []
    eng.set_rules([rule(baseline="none", enabled=False)])
    assert run(eng, clock, {"r1-1": steady(3, 3, 0.9)}) == []
    eng.set_rules([rule(baseline="none")])
    assert len(run(eng, clock, {"r1-1": steady(6, 3, 0.9)})) == 1
    # an edited rule keeps its cooldown (same name): no second alert for the same person at once
    eng.set_rules([rule(baseline="none", threshold=0.5)])
    assert run(eng, clock, {"r1-1": steady(9, 3, 0.9)}) == []
    eng.set_rules([rule(name="other", baseline="none")])
    assert [e.rule for e in run(eng, clock, {"r1-1": steady(12, 3, 0.9)})] == ["other"]


def test_late_data_raises_no_alert(clock):
    eng = AlertEngine([rule(baseline="none")], clock=clock, max_delay_seconds=300)
    batch = [ob(t, s) for t, s in steady(0, 3, 0.9)]
    clock.t = T0 + 3600  # a remote worker's buffer replayed an hour late
    assert eng.observe(batch) == []


def test_replayed_buckets_are_not_counted_twice(clock):
    eng = AlertEngine([rule(baseline="none", min_observations=12)], clock=clock)
    first = [ob(t, s) for t, s in steady(0, 40 / 60, 0.9)]  # 8 buckets
    clock.t = T0 + 60
    assert eng.observe(first) == [] and eng.observe(first) == []  # 16 deliveries, 8 buckets
    more = [ob(t, s) for t, s in steady(40 / 60, 20 / 60, 0.9)]  # 4 more: 12 in all
    assert len(eng.observe(more)) == 1


def test_memory_stays_bounded(clock):
    eng = AlertEngine([rule()], clock=clock, baseline_minutes=10, forget_minutes=10, link_seconds=0)
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


# ---------------------------------------------------------------------- the CUSUM track rule (method = "cusum")
def cusum(**kw) -> Rule:
    return Rule(**{"method": "cusum", "threshold": 0.65, "margin": 0.15, "evidence": 2.0, "min_observations": 6,
                   "unfamiliar_margin": 0.05, "minutes": 3.0, "cooldown_minutes": 15.0, **kw})  # fmt: skip


def first_alert_after(events: list, start_min: float) -> float:
    assert events, "no alert"
    return events[0].evidence["observed_until"] - (T0 + start_min * 60)


def test_cusum_catches_a_strong_change_sooner_than_the_window_and_a_slight_one_later(clock):
    calm, strong, slight = steady(0, 10, 0.3), steady(10, 10, 0.9), steady(10, 10, 0.72)
    fast = run(AlertEngine([cusum()], clock=clock), clock, {"a": calm + strong})
    window = run(AlertEngine([cusum(method="window", min_observations=12)], clock=clock), clock, {"b": calm + strong})
    # 0.9 against the reference 0.65 adds 0.25 a bucket: 2.0 in 8 buckets (40 s); the window needs most of its 3 minutes
    assert first_alert_after(fast, 10) <= 45 and first_alert_after(window, 10) > 60
    ev = fast[0].evidence
    assert ev["baseline_kind"] == "own" and ev["share"] == pytest.approx(0.9, abs=0.01) and ev["minutes"] < 1
    slow = run(AlertEngine([cusum()], clock=clock), clock, {"c": calm + slight})
    assert 120 <= first_alert_after(slow, 10) <= 180  # 0.07 a bucket: about 29 buckets


def test_cusum_never_adds_up_a_face_that_stays_below_its_reference(clock):
    # 0.6 for 40 minutes, with its bucket-to-bucket noise: under the threshold 0.65, so the sum keeps falling back to 0
    noisy = [(t, 0.6 + (0.08 if i % 2 else -0.08)) for i, (t, _) in enumerate(steady(0, 40, 0))]
    assert run(AlertEngine([cusum(baseline="none")], clock=clock), clock, {"a": noisy}) == []


def test_cusum_asks_more_of_a_face_it_has_no_history_of(clock):
    # a new person reading 0.7 from the start: above the threshold, but not above it plus the unfamiliar
    # margin; after 5 minutes (and 6 buckets) of history the face is its own baseline and never alerts
    assert run(AlertEngine([cusum(minutes=5.0)], clock=clock), clock, {"new": steady(0, 20, 0.7)}) == []
    events = run(AlertEngine([cusum(minutes=5.0, unfamiliar_margin=0.0)], clock=clock), clock, {"new2": steady(0, 20, 0.7)})
    assert len(events) == 1 and events[0].evidence["baseline_kind"] == "none"


def test_cusum_alerts_again_after_the_cooldown_only_while_the_distress_lasts(clock):
    series = {"a": steady(0, 10, 0.3) + steady(10, 25, 0.9) + steady(35, 30, 0.3)}
    events = run(AlertEngine([cusum(cooldown_minutes=10)], clock=clock), clock, series)
    times = [e.evidence["observed_until"] - T0 for e in events]
    # at about 10:40, then each cooldown later while it lasts (20:40, 30:40); none once the face is calm again
    assert len(times) == 3 and all(t < 35 * 60 for t in times)
    assert times[1] - times[0] >= 10 * 60 and times[2] - times[1] >= 10 * 60
