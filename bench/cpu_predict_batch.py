"""Faces per second of batched prediction on this CPU, by batch size and memory format.

Runs :func:`lrfer.data.transforms.predict_proba` (the path of evaluation, the resolution sweep
and the offline teacher's pass) with the shipped model on the first ``--faces`` FER2013
PublicTest faces, for each batch size in NCHW and in NHWC (``channels_last``); each setting is
timed ``--reps`` times, interleaved with the others so that a slow spell of the VM does not fall
on one setting, and its best time kept. This is what chose ``CPU_BATCH`` (the default batch on a
CPU) and the trainer's NHWC prediction passes. Run it with nothing else on the machine.

    python bench/cpu_predict_batch.py                          # 2 threads, the shipped model
    python bench/cpu_predict_batch.py --faces 128 --reps 1 --out /tmp/b.json   # a smoke run

Writes bench/results/cpu_predict_batch.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import ROOT, add_threads_arg, cpu_model, provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.npz")
    ap.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint (default: the shipped model)")
    add_threads_arg(ap)
    ap.add_argument("--faces", type=int, default=1024)
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cpu_predict_batch.json")
    args = ap.parse_args()

    import torch

    from lrfer.data.readers import load_dataset
    from lrfer.data.transforms import CPU_BATCH, predict_proba
    from lrfer.models.checkpoint import load_checkpoint
    from lrfer.predict.classifier import DEFAULT_CHECKPOINT

    torch.set_num_threads(args.threads)
    path = args.checkpoint or DEFAULT_CHECKPOINT
    ckpt = load_checkpoint(path)
    model = ckpt.build_model()
    faces = load_dataset(args.data).select_split("PublicTest").images[: args.faces]
    settings = [(b, nhwc) for b in args.batches for nhwc in (False, True)]
    best = {s: float("inf") for s in settings}
    for _ in range(args.reps):
        for b, nhwc in settings:
            t = time.perf_counter()
            predict_proba(model, faces, batch_size=b, crop=ckpt.spec.get("crop") or None, input_size=ckpt.spec.get("image_size"), channels_last=nhwc)
            best[b, nhwc] = min(best[b, nhwc], time.perf_counter() - t)
    rows = [{"batch_size": b, "channels_last": nhwc, "faces_per_s": len(faces) / best[b, nhwc]} for b, nhwc in settings]
    for r in rows:
        print(f"batch {r['batch_size']:4d} {'NHWC' if r['channels_last'] else 'NCHW'}: {r['faces_per_s']:6.1f} faces/s")
    result = {
        "benchmark": "cpu_predict_batch",
        "model": {"checkpoint": str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path),
                  "name": ckpt.spec.get("name"), "input": ckpt.spec.get("crop") or ckpt.spec.get("image_size")},
        "faces": len(faces),
        "reps": args.reps,
        "cpu_batch_default": CPU_BATCH,
        "rows": rows,
        "provenance": provenance("bench/cpu_predict_batch.py", machine=f"{cpu_model()}, {args.threads} threads, torch {torch.__version__}"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
