"""Cameras per box: how many 640x480 cameras at 2 fps one machine keeps up with.

Each camera plays the same 60 s scene (five copies of the public-domain astronaut photo, faces of
16 to 48 px, drifting out and back, 15 fps, made here by ``examples/make_scene.py``'s ``scene``) in
real time and loops it, through the whole service: worker (decode, sample, detect, classify,
track, aggregate), recorder, SQLite. For 1, 2, 4, ... cameras it runs ``--seconds`` after a
warm-up and records each camera's analysed frames per second, its lag (a frame's hand-over to the
detector -> its result), the ingest-to-database delay (p50, p95) and the process's memory. A
camera count is kept up with when every camera analyses at least 95% of its 2 fps and the lag does
not grow (its median over the last third of the run is within 0.5 s of the first third's).

Writes ``bench/results/serve_cameras.json`` and the table in docs/serve.md (``--table-only``,
``--check``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import DOCS, RESULTS, ROOT, example_module, load_result, provenance, rss_mb, write_blocks
from lrfer.infer.video import VideoWriter
from lrfer.serve.config import Camera, ServeConfig
from lrfer.serve.service import Service

OUT = RESULTS / "serve_cameras.json"
#: (face width px, left x, bottom y, mirrored, drift px per frame): five faces of 16 to 48 px
FIVE = [(48, 10, 470, False, 0.6), (36, 200, 300, True, -0.4), (28, 330, 450, False, 0.5), (22, 470, 250, True, -0.3), (16, 560, 420, False, 0.2)]


def make_scene(path: Path, seconds: int = 60, fps: int = 15) -> None:
    scene = example_module("make_scene")
    scene.COPIES = FIVE
    photo = Image.open(ROOT / "examples" / "astronaut.png").convert("RGB")
    half = seconds * fps // 2
    with VideoWriter(path, float(fps), scene.W, scene.H) as out:
        for t in list(range(half)) + list(range(half, 0, -1)):  # out and back: a seamless loop
            out.write(scene.scene(photo, t * 0.5))


def run(n: int, video: Path, seconds: float, warmup: float, tmp: Path) -> dict:
    cfg = ServeConfig()
    cfg.server.data_dir = str(tmp / f"n{n}")
    cfg.cameras = [Camera(id=f"cam{i + 1}", url=str(video), loop=True, fps=2.0) for i in range(n)]
    service = Service(cfg)
    service.start()
    try:
        time.sleep(warmup)
        service.recorder.delays.clear()
        frames0 = {c: s.frames for c, s in service.statuses().items()}
        lags: dict[str, list[float]] = {c: [] for c in frames0}
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            for c, s in service.statuses().items():
                lags[c].append(s.lag)
        elapsed = time.monotonic() - t0
        st = service.statuses()
        fps = {c: (st[c].frames - frames0[c]) / elapsed for c in st}
        delays = service.recorder.delay_percentiles()
        memory = rss_mb()
    finally:
        service.stop()
    third = max(1, len(next(iter(lags.values()))) // 3)
    growth = max(statistics.median(v[-third:]) - statistics.median(v[:third]) for v in lags.values())
    all_lags = np.concatenate([np.asarray(v) for v in lags.values()])
    kept_up = min(fps.values()) >= 0.95 * 2.0 and growth < 0.5
    return {
        "cameras": n,
        "fps_min": round(min(fps.values()), 2),
        "fps_mean": round(float(np.mean(list(fps.values()))), 2),
        "lag_p50_s": round(float(np.percentile(all_lags, 50)), 3),
        "lag_p95_s": round(float(np.percentile(all_lags, 95)), 3),
        "lag_growth_s": round(growth, 3),
        "delay_p50_s": delays["delay_p50"],
        "delay_p95_s": delays["delay_p95"],
        "rss_mb": round(memory),
        "kept_up": kept_up,
    }


def table(r: dict) -> list[str]:
    lines = ["| cameras | analysed fps per camera, min (mean) | lag p50 / p95, s | lag growth, s | ingest-to-database p50 / p95, s | memory, MB | keeps up |",
             "|---:|---:|---:|---:|---:|---:|:---:|"]
    for row in r["rows"]:
        lines.append(f"| {row['cameras']} | {row['fps_min']:.2f} ({row['fps_mean']:.2f}) | {row['lag_p50_s']:.2f} / {row['lag_p95_s']:.2f} | {row['lag_growth_s']:+.2f} | "
                     f"{row['delay_p50_s']:.2f} / {row['delay_p95_s']:.2f} | {row['rss_mb']} | {'yes' if row['kept_up'] else 'no'} |")
    p = r["provenance"]
    note = (f"640x480 cameras at 2 fps, five faces of 16-48 px each, {r['seconds']:g} s measured after {r['warmup']:g} s of warm-up, SQLite. "
            f"From `bench/serve_cameras.py`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`; results in `bench/results/serve_cameras.json`.")
    return ["\n".join(lines), note]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", default="1,2,4,8,10,12", help="camera counts to try, in order; stops after two counts that fall behind")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        prov = provenance("bench/serve_cameras.py", machine=f"{platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores")
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / "five_faces.mp4"
            make_scene(video)
            for n in (int(x) for x in args.cameras.split(",")):
                rows.append(run(n, video, args.seconds, args.warmup, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
                if sum(not r["kept_up"] for r in rows) >= 2:
                    break
        OUT.write_text(json.dumps({"provenance": prov, "seconds": args.seconds, "warmup": args.warmup, "rows": rows}, indent=2) + "\n")
        print(f"wrote {OUT}")
    write_blocks(DOCS / "serve.md", {"serve-cameras": table(load_result("serve_cameras.json"))}, check=args.check)


if __name__ == "__main__":
    main()
