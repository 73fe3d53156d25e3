"""bench/serve_store.py reaches the tests' throwaway PostgreSQL server (a refactor of that helper
once broke the bench's PostgreSQL half, which no table check would notice)."""

from __future__ import annotations

from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_the_bench_finds_the_postgres_helper(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import serve_store

    server = serve_store._postgres()  # made, not started: no initdb here
    assert callable(server.database) and callable(server.start)
