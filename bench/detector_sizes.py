"""The smallest face each detector finds: one frontal face shrunk to N px in a 640x480 frame.

The astronaut photo (``examples/astronaut.png``, 512x512) is shrunk (Lanczos) so that its face box
is N px wide and pasted into a frame of grey noise (mean 128, sd 10) at six positions; a face
counts as found when a detection overlaps its box with IoU > 0.5 (the protocol of
``tests/infer/test_detect.py``). Every installed detector runs at ``upscale`` 1 and 2. A clean,
frontal, high-contrast face: expect less on real, low-quality video.

Writes ``bench/results/detector_sizes.json`` and the table of ``docs/detectors.md``;
``--table-only`` rewrites the table from the JSON, ``--check`` fails when the page differs from it.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from PIL import Image

from _common import DOCS, RESULTS, load_result, provenance, write_blocks
from lrfer.errors import LrferError
from lrfer.infer.detect import create_detector, list_detectors

OUT = RESULTS / "detector_sizes.json"
PHOTO = RESULTS.parents[1] / "examples" / "astronaut.png"
FACE = np.array([178, 63, 267, 175], np.float64)  # the face box in the 512 px photo (tests/infer/test_detect.py)
SIZES = (6, 8, 9, 10, 12, 14, 16, 20, 24, 32, 48)
# Every position keeps the whole face inside the frame at the largest size (48 px).
POSITIONS = ((260, 180), (37, 301), (490, 23), (100, 120), (400, 300), (20, 20))
UPSCALES = (1.0, 2.0)


def frame_with_face(photo: Image.Image, face_w: int, offset: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 noise frame holding the photo shrunk so its face is ``face_w`` px wide; the face box."""
    frame = np.clip(128 + np.random.default_rng(seed).normal(0, 10, (480, 640, 3)), 0, 255).astype(np.uint8)
    n = round(512 * face_w / (FACE[2] - FACE[0]))
    small = np.asarray(photo.resize((n, n), Image.LANCZOS))
    ox, oy = offset
    h, w = min(n, 480 - oy), min(n, 640 - ox)
    frame[oy : oy + h, ox : ox + w] = small[:h, :w]
    return frame, FACE * (n / 512) + np.array([ox, oy, ox, oy])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def found(detector, frames) -> dict[int, int]:
    """Faces found per size, out of len(POSITIONS)."""
    return {size: sum(any(iou(b, box) > 0.5 for b in detector.detect(frame).boxes) for frame, box in cases) for size, cases in frames.items()}


def measure() -> dict:
    photo = Image.open(PHOTO).convert("RGB")
    frames = {s: [frame_with_face(photo, s, pos, seed=k) for k, pos in enumerate(POSITIONS)] for s in SIZES}
    rows = []
    for name in list_detectors():
        for upscale in UPSCALES:
            try:
                detector = create_detector(name, upscale=upscale)
            except LrferError as err:  # an optional detector that is not installed here
                rows.append({"detector": name, "upscale": upscale, "error": str(err)})
                continue
            with detector:
                rows.append({"detector": name, "upscale": upscale, "found": found(detector, frames)})
    return {"sizes": list(SIZES), "positions": len(POSITIONS), "rows": rows}


def table(result: dict) -> list[str]:
    sizes, n = result["sizes"], result["positions"]
    lines = [
        f"Faces found out of {n} positions, by face width (px):",
        "",
        "| detector | upscale | " + " | ".join(str(s) for s in sizes) + " |",
        "|---|---:|" + "---:|" * len(sizes),
    ]
    for r in result["rows"]:
        if "found" in r:
            lines.append(f"| `{r['detector']}` | {r['upscale']:g} | " + " | ".join(str(r["found"][str(s)]) for s in sizes) + " |")
    missing = sorted({r["detector"] for r in result["rows"] if "error" in r})
    p = result["provenance"]
    note = f"From `bench/detector_sizes.py`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`; results in `bench/results/detector_sizes.json`."
    if missing:
        note += f" Not installed there, so not measured: {', '.join(missing)}."
    return ["\n".join(lines), note]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table-only", action="store_true", help="rewrite the table from the results file")
    ap.add_argument("--check", action="store_true", help="fail if docs/detectors.md differs from the results file; write nothing")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        result = {"provenance": provenance("bench/detector_sizes.py", seed=0), **measure()}
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {OUT}")
    write_blocks(DOCS / "detectors.md", {"detector-sizes": table(load_result("detector_sizes.json"))}, check=args.check)


if __name__ == "__main__":
    main()
