"""``lrfer batch`` at scale: photos/s and faces/s in this process and on Ray with 1 and 2 workers,
Ray's cost per file, and what a real archive would take.

Each engine runs ``--photos`` photos (views of the bundled far scene, 640x480, searched at
``upscale=auto``), then ``--videos`` videos of ``--video-seconds`` s (the camera benchmark's
five-face 15 fps scene) sampled at 2 fps, each into a fresh output folder. The rates are the
steady ones, between the first result and the last (the progress events of ``run_batch``), so
start-up (loading the model, starting Ray and its actors) is not in them; it is reported on its
own as the time to the first result. Ray's cost per photo is the steady time per photo of one
worker on 2 CPUs (as this process runs) less the in-process one.

The projection in docs/scale.md takes the best steady video rate measured here, per core, to an
archive of ``STORES`` stores x ``HOURS`` h x ``DAYS`` days at 2 fps, and says how many nodes of
``NODE_CORES`` cores finish it in a ``NIGHT_HOURS``-hour night, assuming throughput grows with
cores as independent files allow (an assumption: this machine has only 2 cores).

Writes ``bench/results/batch_scale.json`` and the tables in docs/scale.md (``--table-only``, ``--check``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import DOCS, RESULTS, ROOT, load_result, provenance, write_blocks
from lrfer.batch.analyze import BatchOptions
from lrfer.batch.on_ray import OnRay
from lrfer.batch.run import InProcess, run_batch
from serve_cameras import make_scene

OUT = RESULTS / "batch_scale.json"
STORES, HOURS, DAYS, FPS, NIGHT_HOURS, NODE_CORES = 50, 12, 30, 2.0, 10, 16
ENGINES = [
    ("in-process", InProcess(4)),
    ("Ray, 1 worker x 1 CPU", OnRay("local", 1, 4)),
    ("Ray, 2 workers x 1 CPU", OnRay("local", 2, 4)),
    ("Ray, 1 worker x 2 CPUs", OnRay("local", 1, 4, cpus_per_worker=2)),
]


def make_photos(folder: Path, n: int) -> list[Path]:
    """``n`` distinct 640x480 views of the far scene: mirrored and shifted, so no two files are alike."""
    scene = np.array(Image.open(ROOT / "examples" / "far_scene.png").convert("RGB"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        view = np.roll(scene[:, ::-1] if i % 2 else scene, shift=(i // 2) * 7, axis=1)
        out.append(folder / f"p{i:04d}.jpg")
        Image.fromarray(np.ascontiguousarray(view)).save(out[-1], quality=92)
    return out


def timed(paths, out: Path, engine) -> dict:
    """One run; its steady rates between the first result and the last, and the time to the first."""
    events = []
    t0 = time.perf_counter()
    s = run_batch(paths, out, BatchOptions(sample_fps=FPS), engine=engine, progress=lambda e: events.append((time.perf_counter(), e.done, e.info["faces"])))
    assert s.read == s.analysed, f"{s.analysed - s.read} files could not be read"
    (t1, done1, faces1), (t2, done2, faces2) = events[0], events[-1]
    return {"files": s.analysed, "faces": s.faces, "seconds": round(time.perf_counter() - t0, 3), "first_result_s": round(t1 - t0, 2),
            "steady_files": done2 - done1, "steady_s": round(t2 - t1, 3), "files_per_s": round((done2 - done1) / (t2 - t1), 3),
            "faces_per_s": round((faces2 - faces1) / (t2 - t1), 2)}  # fmt: skip


def engine_rows(tmp: Path, photos: list[Path], videos: list[Path], per_video: int) -> list[dict]:
    rows = []
    for name, engine in ENGINES:
        pics = timed(photos, tmp / f"{name}-photos", engine)
        vid = timed(videos, tmp / f"{name}-videos", dataclasses.replace(engine, files_per_task=1))  # a result per video
        rows.append({
            "engine": name, "workers": engine.workers, "photos": pics, "videos": vid,
            "photos_per_s": pics["files_per_s"], "faces_per_s": pics["faces_per_s"], "ms_per_photo": round(1000 / pics["files_per_s"], 1),
            "first_result_s": pics["first_result_s"], "sampled_per_video": per_video, "video_frames_per_s": round(vid["files_per_s"] * per_video, 2),
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def projection(r: dict) -> dict:
    frames = STORES * HOURS * 3600 * DAYS * FPS
    best = max(r["rows"], key=lambda row: row["video_frames_per_s"])
    per_core = best["video_frames_per_s"] / r["cores"]
    core_hours = frames / per_core / 3600
    nodes = math.ceil(core_hours / (NODE_CORES * NIGHT_HOURS))
    return {"frames": frames, "per_core_fps": round(per_core, 2), "core_hours": round(core_hours), "nodes": nodes, "engine": best["engine"]}


def tables(r: dict) -> dict[str, list[str]]:
    rows = {row["engine"]: row for row in r["rows"]}
    lines = ["| engine | photos/s | faces/s | ms per photo | first result after, s | sampled video frames/s |", "|---|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        lines.append(f"| {row['engine']} | {row['photos_per_s']:.1f} | {row['faces_per_s']:.0f} | {row['ms_per_photo']:.0f} | {row['first_result_s']:.1f} | {row['video_frames_per_s']:.1f} |")
    overhead = rows["Ray, 1 worker x 2 CPUs"]["ms_per_photo"] - rows["in-process"]["ms_per_photo"]
    p = r["provenance"]
    note = (
        f"{r['photos']} photos of 640x480 with about {r['faces_per_photo']:.1f} faces each (upscale auto); "
        f"{r['videos']} videos of {r['video_seconds']:g} s at 15 fps, sampled at 2 fps ({r['rows'][0]['sampled_per_video']} frames each). "
        "Rates are steady ones, from the first result to the last; start-up (model, Ray, actors) is the time to the first result. "
        f"Ray's cost per photo (1 worker on 2 CPUs, as this process runs, less in-process): {overhead:+.0f} ms. "
        f"From `bench/batch_scale.py`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`; results in `bench/results/batch_scale.json`."
    )
    pj = projection(r)
    proj = [
        "| archive | sampled frames | frames/s per core (measured) | core-hours | nodes of 16 cores for a 10-hour night |",
        "|---|---:|---:|---:|---:|",
        f"| {STORES} stores x {HOURS} h x {DAYS} days at {FPS:g} fps | {pj['frames'] / 1e6:.1f} M | {pj['per_core_fps']:.1f} | {pj['core_hours']:,} | {pj['nodes']} |",
    ]
    proj_note = (
        f"From the best video throughput above ({pj['engine']}), per core of this {r['cores']}-core machine; "
        f"a {NODE_CORES}-core node is counted as {NODE_CORES // r['cores']} such machines (the files are independent, and only the driver's writing is shared). "
        "That is an assumption this machine cannot test; the measured cost Ray adds per file is in the note above."
    )
    return {"batch-scale": ["\n".join(lines), note], "batch-projection": ["\n".join(proj), proj_note]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--video-seconds", type=float, default=20.0)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        cores = len(os.sched_getaffinity(0))
        prov = provenance("bench/batch_scale.py", machine=f"{platform.node()} {platform.machine()}, {cores} cores")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            photos = make_photos(tmp / "photos", args.photos)
            videos = []
            for i in range(args.videos):
                videos.append(tmp / "videos" / f"v{i}.mp4")
                videos[-1].parent.mkdir(exist_ok=True)
                make_scene(videos[-1], seconds=int(args.video_seconds))
            rows = engine_rows(tmp, photos, videos, int(args.video_seconds * FPS))
        faces_per_photo = rows[0]["photos"]["faces"] / rows[0]["photos"]["files"]
        result = {"provenance": prov, "cores": cores, "photos": args.photos, "faces_per_photo": round(faces_per_photo, 2),
                  "videos": args.videos, "video_seconds": args.video_seconds, "rows": rows}  # fmt: skip
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {OUT}")
    write_blocks(DOCS / "scale.md", tables(load_result("batch_scale.json")), check=args.check)


if __name__ == "__main__":
    main()
