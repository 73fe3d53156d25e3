"""The serve benches' helpers: bench/serve_store.py reaches the tests' PostgreSQL server (a refactor of
it once broke the bench's PostgreSQL half, which no table check notices); serve_alerts' face-size line."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_bench_finds_the_postgres_helper(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import serve_store

    server = serve_store._postgres()  # made, not started: no initdb here
    assert callable(server.database) and callable(server.start)


def test_alerts_in_time_are_counted_per_face_size(monkeypatch):
    """bench/serve_alerts.py's face-size line: seen people only, alerted within 3 min, per band."""
    monkeypatch.syspath_prepend(str(BENCH))
    import serve_alerts

    def ep(px, t, seen=True):
        return {"face_px": px, "time_to_alert": t, "seen": seen}

    scenes = [{"kind": "distressed", "episodes": [ep(18, 60.0), ep(20, None), ep(30, 200.0), ep(30, 179.0), ep(40, 10.0), ep(50, None, seen=False)]},
              {"kind": "calm", "episodes": [ep(40, 1.0)]}]  # fmt: skip
    assert serve_alerts.within_by_face_size({"scenes": scenes}) == [("under 24 px", 1, 2), ("24-35 px", 1, 2), ("36 px and over", 1, 1)]
