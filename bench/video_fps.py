"""End-to-end video throughput: decode, detect every frame, crop, classify, track, smooth.

    python bench/video_fps.py [--frames 300] [--threads 2] [--out bench/results/video_fps.json]

The input is made at run time from the public-domain astronaut photo: a 640x480 video in which
five copies of the photo (faces about 18 to 56 px wide) drift across a textured wall, written with
the library's VideoWriter (H.264). For each configuration it reports frames per second of
``Recognizer.stream`` end to end (decoding included; the median of ``--repeats`` passes), and, for the default one, the time per frame
of each stage measured separately on the same frames. The issue's goal is >= 30 fps on this
machine with the default model and detection on every frame.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import ROOT, example_module, provenance
from lrfer.infer.crop import crop_faces
from lrfer.infer.recognizer import Recognizer
from lrfer.infer.video import VideoWriter, open_video

try:
    import torch
except ImportError:  # the inference runtime alone (`pip install lrfer`, bench/runtime.py) has no torch
    torch = None

backdrop = example_module("make_scene").backdrop  # the demo scene's wall

W, H = 640, 480
#: (face width px, x, bottom y, mirrored, drift px/frame)
COPIES = [(56, 10, 470, False, 0.6), (36, 250, 420, True, -0.4), (28, 380, 300, False, 0.3), (22, 520, 420, True, -0.3), (18, 150, 140, False, 0.5)]


def make_video(path: Path, frames: int) -> None:
    photo = Image.open(ROOT / "examples" / "astronaut.png").convert("RGB")
    wall = Image.fromarray(backdrop())
    tiles = []
    for face_px, _, _, mirror, _ in COPIES:
        side = round(photo.width * face_px / 89)
        im = photo.resize((side, side), Image.BOX)
        tiles.append(im.transpose(Image.FLIP_LEFT_RIGHT) if mirror else im)
    with VideoWriter(path, 15.0, W, H) as out:
        for t in range(frames):
            canvas = wall.copy()
            for (_, x, bottom, _, drift), im in zip(COPIES, tiles):
                canvas.paste(im, (round(x + drift * t), bottom - im.height))
            out.write(np.asarray(canvas))


def stream_fps(rec: Recognizer, video: Path, batch_frames: int, repeats: int) -> dict:
    """Median frames/s over ``repeats`` full passes (single passes on this shared VM vary by ~1 fps)."""
    runs, faces = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = faces = 0
        for r in rec.stream(video, batch_frames=batch_frames):
            n += 1
            faces += len(r.faces)
        runs.append(n / (time.perf_counter() - t0))
    return {"frames": n, "fps": round(float(np.median(runs)), 2), "fps_runs": [round(x, 2) for x in runs], "faces_per_frame": round(faces / n, 2)}


def stage_times(rec: Recognizer, video: Path, batch_frames: int) -> dict:
    """Milliseconds per frame of each stage, each run alone over the same frames."""
    t0 = time.perf_counter()
    with open_video(video) as v:
        frames = [f.image for f in v]
    decode = (time.perf_counter() - t0) / len(frames)
    t0 = time.perf_counter()
    dets = []
    for i in range(0, len(frames), batch_frames):
        dets += rec.detect(frames[i : i + batch_frames])
    detect = (time.perf_counter() - t0) / len(frames)
    t0 = time.perf_counter()
    crops = [crop_faces(f, d.boxes, d.landmarks, size=rec.classifier.image_size, margin=rec.margin, channels=rec.classifier.in_chans) for f, d in zip(frames, dets)]
    crop = (time.perf_counter() - t0) / len(frames)
    batch = np.concatenate(crops) if isinstance(crops[0], np.ndarray) else torch.cat(crops)
    t0 = time.perf_counter()
    for i in range(0, len(batch), 64):
        rec.classify(batch[i : i + 64])
    classify = (time.perf_counter() - t0) / len(frames)
    return {k: round(v * 1000, 2) for k, v in {"decode": decode, "detect": detect, "crop": crop, "classify": classify}.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    ap.add_argument("--repeats", type=int, default=3, help="passes per configuration; the median is reported")
    ap.add_argument("--only-default", action="store_true", help="only the default configuration (bench/runtime.py)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "video_fps.json")
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(args.threads)
    configs = [
        ("default: yunet + classifier on onnxruntime, 8-frame batches", {}, 8),
        ("yunet, 1-frame batches (lowest latency)", {}, 1),
        ("yuface wheel detector (reference C build)", {"detector": "yuface"}, 8),
    ][: 1 if args.only_default else None]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        make_video(video, args.frames)
        for name, kw, bf in configs:
            rec = Recognizer(device="cpu", **kw)
            list(rec.stream(video, batch_frames=bf))  # warm-up: builds the detector runner, fills caches
            row = {"config": name, "batch_frames": bf, **kw, **stream_fps(rec, video, bf, args.repeats)}
            if not results:
                row["stage_ms_per_frame"] = stage_times(rec, video, bf)
            results.append(row)
            print(json.dumps(row), flush=True)
    out = {
        "benchmark": "end-to-end video fps (decode + detect every frame + crop + classify + track + smooth)",
        "video": f"{W}x{H}, {args.frames} frames, {len(COPIES)} faces of {min(c[0] for c in COPIES)}-{max(c[0] for c in COPIES)} px, H.264",
        "goal_fps": 30,
        "results": results,
        "provenance": provenance("bench/video_fps.py", seed=None),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
