"""A soak: one hour of camera time through the whole service, replayed as fast as it decodes.

One camera plays the demo's looping video (three faces) at full speed (no pacing) until it has
analysed an hour of video time at 2 fps (7,200 frames), through the service (worker, recorder,
alert rules, SQLite). Every few seconds it records the process's memory (RSS), the camera's lag
and the recorder's queue. Memory is flat when its slope over the second half is below 5 MB per
camera-hour; lag does not grow when its median over the last quarter is within 0.25 s of the
second quarter's (the first quarter is the warm-up).

Writes ``bench/results/serve_soak.json``, a plot beside it, and the table in docs/serve.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import DOCS, RESULTS, load_result, provenance, rss_mb, write_blocks
from lrfer.serve.config import Camera, ServeConfig
from lrfer.serve.runner import DEMO_VIDEO
from lrfer.serve.service import Service

OUT = RESULTS / "serve_soak.json"


def soak(video_hours: float, every: float, tmp: Path) -> dict:
    cfg = ServeConfig()
    cfg.server.data_dir = str(tmp)
    cfg.cameras = [Camera(id="soak", url=str(DEMO_VIDEO), loop=True, fps=2.0)]
    target = int(video_hours * 3600 * 2)  # frames at 2 fps
    service = Service(cfg, speed=0)
    samples = []
    t0 = time.monotonic()
    service.start()
    try:
        while True:
            time.sleep(every)
            st = service.statuses()["soak"]
            samples.append({"t": round(time.monotonic() - t0, 1), "frames": st.frames, "rss_mb": round(rss_mb(), 1), "lag_s": st.lag, "queued": service.recorder.pending})
            if st.frames >= target or st.state in ("error", "stopped"):
                break
    finally:
        service.stop()
    frames = np.array([s["frames"] for s in samples], float)
    rss = np.array([s["rss_mb"] for s in samples])
    lag = np.array([s["lag_s"] for s in samples])
    half = len(samples) // 2
    hours = frames / 7200.0
    slope = float(np.polyfit(hours[half:], rss[half:], 1)[0]) if len(samples) - half >= 3 else float("nan")
    q = max(1, len(samples) // 4)
    growth = float(np.median(lag[-q:]) - np.median(lag[q : 2 * q]))
    return {
        "video_hours": video_hours, "frames": int(frames[-1]), "wall_s": samples[-1]["t"],
        "rss_start_mb": float(rss[q]), "rss_end_mb": float(rss[-1]), "rss_slope_mb_per_hour": round(slope, 2),
        "lag_p50_s": round(float(np.median(lag)), 3), "lag_growth_s": round(growth, 3), "queued_max": int(max(s["queued"] for s in samples)),
        "flat_memory": bool(slope < 5.0), "steady_lag": bool(growth < 0.25), "samples": samples,
    }


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = r["samples"]
    hours = [x["frames"] / 7200 for x in s]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot(hours, [x["rss_mb"] for x in s])
    ax[0].set(xlabel="camera time analysed (h)", ylabel="memory, RSS (MB)", title="memory")
    ax[1].plot(hours, [x["lag_s"] for x in s])
    ax[1].set(xlabel="camera time analysed (h)", ylabel="lag (s)", title="frame hand-over -> result")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(r: dict) -> list[str]:
    lines = ["| camera time | frames | wall time | memory after warm-up -> end | memory slope, 2nd half | lag p50, growth | recorder queue, max |",
             "|---:|---:|---:|---:|---:|---:|---:|",
             f"| {r['video_hours']:g} h | {r['frames']:,} | {r['wall_s'] / 60:.1f} min | {r['rss_start_mb']:.0f} -> {r['rss_end_mb']:.0f} MB | {r['rss_slope_mb_per_hour']:+.1f} MB/h | "
             f"{r['lag_p50_s']:.2f} s, {r['lag_growth_s']:+.2f} s | {r['queued_max']} |"]
    p = r["provenance"]
    verdict = f"Memory {'flat' if r['flat_memory'] else 'growing'}, lag {'steady' if r['steady_lag'] else 'growing'}."
    note = f"{verdict} Plot: `bench/results/serve_soak.png`. From `bench/serve_soak.py`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`; results in `bench/results/serve_soak.json`."
    return ["\n".join(lines), note]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=1.0, help="camera time to analyse")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        prov = provenance("bench/serve_soak.py", machine=f"{platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores")
        with tempfile.TemporaryDirectory() as tmp:
            result = {"provenance": prov, **soak(args.hours, args.every, Path(tmp))}
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        plot(result, OUT.with_suffix(".png"))
        print({k: v for k, v in result.items() if k != "samples"})
    write_blocks(DOCS / "serve.md", {"serve-soak": table(load_result("serve_soak.json"))}, check=args.check)


if __name__ == "__main__":
    main()
