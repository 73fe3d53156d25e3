"""How fast the service's database answers on a month of eight cameras (SQLite and PostgreSQL).

Fills a fresh database through the service's own schema with a synthetic month: 8 cameras, faces
present 12 hours a day, about 3 tracks at a time per camera, each living 2 to 10 minutes, one
observation per track per 5 s bucket (about 6 M rows), and the minute and hour rollups the
recorder would have written. Rows are bulk-inserted (the recorder's per-bucket path would take
hours to fill a month); what is measured is the API's reads, through ``lrfer.serve.store.Store``:
timelines over a month, a day and an hour, the month's mood through the day (per local hour), the
tracks of a day, the alerts list.

Writes ``bench/results/serve_store.json`` and the table in docs/serve.md; ``--table-only``
rewrites the table, ``--check`` fails when the page differs from the results file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from _common import DOCS, RESULTS, ROOT, load_result, provenance, write_blocks
from lrfer.serve.config import Camera
from lrfer.serve.profile import day_profile, parse_days
from lrfer.serve.records import AlertEvent
from lrfer.serve.schema import observations, rollups, tracks
from lrfer.serve.store import ROLLUP_WINDOWS, Store

OUT = RESULTS / "serve_store.json"
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
DAY0 = 1_798_761_600.0  # 2027-01-01 00:00 UTC
BUCKET = 5
BERLIN = ZoneInfo("Europe/Berlin")  # a zone an hour off UTC: the profile folds every window onto a local hour


def _postgres():
    """The tests' throwaway PostgreSQL server, imported as the tests import it (it imports its
    package's helpers), with the repository root on the path only for that."""
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    mod = importlib.import_module("tests.serve._postgres")
    return mod.PostgresServer(Path(tempfile.mkdtemp(prefix="lrfer-bench-pg-")))


def _camera_day(rng, cam: str, day: int, next_track: list[int]):
    """One camera's day: tracks between 08:00 and 20:00, ~3 at a time; observation rows and track rows."""
    obs, trk = [], []
    t_open, t_close = DAY0 + day * 86400 + 8 * 3600, DAY0 + day * 86400 + 20 * 3600
    for _lane in range(3):
        t = t_open + rng.uniform(0, 300)
        while t < t_close:
            life = int(rng.uniform(120, 600)) // BUCKET * BUCKET
            tid = next_track[0]
            next_track[0] += 1
            start = math.floor(t / BUCKET) * BUCKET
            n = life // BUCKET
            p = rng.dirichlet(np.ones(len(CLASSES)) * 2, size=n)
            for i in range(n):
                probs = {c: round(float(v), 4) for c, v in zip(CLASSES, p[i])}
                obs.append({"track_id": tid, "camera_id": cam, "zone": "", "start": start + BUCKET * i, "seconds": BUCKET, "frames": 10, "certain": 9,
                            "probs": json.dumps(probs), "label": max(probs, key=probs.get), "face_px": 24.0, "score": 0.9})
            trk.append({"id": tid, "camera_id": cam, "track_key": f"run-{tid}", "first_seen": start, "last_seen": start + life, "frames": 10 * n, "certain": 9 * n, "face_px": 24.0})
            t += life + rng.uniform(5, 120)
    return obs, trk


def _rollups(obs: list[dict]) -> list[dict]:
    out: dict[tuple, dict] = {}
    for o in obs:
        probs = json.loads(o["probs"])
        for res in ROLLUP_WINDOWS:
            key = (o["camera_id"], o["zone"], res, float(math.floor(o["start"] / res) * res))
            r = out.setdefault(key, {"frames": 0, "certain": 0, "seen": set(), "sums": dict.fromkeys(CLASSES, 0.0)})
            r["frames"] += o["frames"]
            r["certain"] += o["certain"]
            r["seen"].add(o["track_id"])
            for c in CLASSES:
                r["sums"][c] += probs[c] * o["certain"]
    return [{"camera_id": k[0], "zone": k[1], "res": k[2], "start": k[3], "frames": r["frames"], "certain": r["certain"], "tracks": len(r["seen"]),
             "sums": json.dumps({c: round(v, 4) for c, v in r["sums"].items()})} for k, r in out.items()]


def fill(store: Store, cameras: int, days: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    counts = {"observations": 0, "tracks": 0, "rollups": 0}
    next_track = [1]
    t0 = time.perf_counter()
    for c in range(cameras):
        cam = f"cam{c + 1}"
        store.put_camera(Camera(id=cam, url=f"rtsp://10.0.0.{c + 1}/stream"))
        for day in range(days):
            obs, trk = _camera_day(rng, cam, day, next_track)
            roll = _rollups(obs)
            with store.engine.begin() as conn:
                conn.execute(sa.insert(tracks), trk)
                conn.execute(sa.insert(observations), obs)
                conn.execute(sa.insert(rollups), roll)
            counts["observations"] += len(obs)
            counts["tracks"] += len(trk)
            counts["rollups"] += len(roll)
    for i in range(200):
        store.add_alert(AlertEvent(f"cam{i % cameras + 1}", "", f"run-{i}", "distress", DAY0 + i * 3600, "a person looked distressed", {"share": 0.7}))
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    counts["fill_s"] = round(time.perf_counter() - t0, 1)
    return counts


def queries(days: int) -> dict:
    month = (DAY0, DAY0 + days * 86400)
    day = (DAY0 + (days - 1) * 86400, DAY0 + days * 86400)
    hour = (DAY0 + (days - 1) * 86400 + 12 * 3600, DAY0 + (days - 1) * 86400 + 13 * 3600)
    return {
        "month, one camera, hourly": lambda s: s.timeline("cam1", *month, 3600),
        "month, all cameras, daily": lambda s: s.timeline(None, *month, 86400),
        "day, one camera, per minute": lambda s: s.timeline("cam1", *day, 60),
        "hour, one camera, per 5 s": lambda s: s.timeline("cam1", *hour, 5),
        "month through the day, one camera (Berlin)": lambda s: day_profile(s.rollup_rows("cam1", None, *month, 3600), BERLIN),
        "month through the day, all cameras, weekdays": lambda s: day_profile(s.rollup_rows(None, None, *month, 3600), BERLIN, parse_days("weekdays")),
        "tracks of a day, one camera (200)": lambda s: s.tracks("cam1", *day, limit=200),
        "open alerts (100)": lambda s: s.list_alerts(limit=100),
    }


def measure(url: str, cameras: int, days: int, seed: int, repeats: int) -> dict:
    store = Store(url)
    counts = fill(store, cameras, days, seed)
    rows = []
    for name, q in queries(days).items():
        q(store)  # warm the caches once: the dashboard asks the same again and again
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            q(store)
            times.append(time.perf_counter() - t)
        rows.append({"query": name, "median_ms": round(1000 * statistics.median(times), 1), "max_ms": round(1000 * max(times), 1)})
    store.close()
    return {"database": store.engine.dialect.name, **counts, "queries": rows}


def table(r: dict) -> list[str]:
    dbs = r["runs"]
    lines = ["| query | " + " | ".join(f"{d['database']} median (max), ms" for d in dbs) + " |", "|---|" + "---:|" * len(dbs)]
    for i, q in enumerate(dbs[0]["queries"]):
        lines.append(f"| {q['query']} | " + " | ".join(f"{d['queries'][i]['median_ms']:.1f} ({d['queries'][i]['max_ms']:.1f})" for d in dbs) + " |")
    p, d0 = r["provenance"], dbs[0]
    note = (f"{r['cameras']} cameras x {r['days']} days: {d0['observations']:,} observations, {d0['tracks']:,} tracks, {d0['rollups']:,} rollup rows. "
            f"From `bench/serve_store.py`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`; results in `bench/results/serve_store.json`.")
    return ["\n".join(lines), note]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        prov = provenance("bench/serve_store.py", seed=args.seed, machine=f"{platform.node()} {platform.machine()} ({platform.processor() or 'cpu'})")
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(measure(f"sqlite:///{tmp}/bench.sqlite3", args.cameras, args.days, args.seed, args.repeats))
            print(json.dumps(runs[-1], indent=1))
        if not args.no_postgres:
            pg = _postgres()
            try:
                runs.append(measure(pg.url, args.cameras, args.days, args.seed, args.repeats))
                print(json.dumps(runs[-1], indent=1))
            finally:
                pg.close()
        OUT.write_text(json.dumps({"provenance": prov, "cameras": args.cameras, "days": args.days, "runs": runs}, indent=2) + "\n")
        print(f"wrote {OUT}")
    write_blocks(DOCS / "serve.md", {"serve-store": table(load_result("serve_store.json"))}, check=args.check)


if __name__ == "__main__":
    main()
