"""Training throughput (images/s) and peak memory of every registered model, with and without
augmentation, through the real training loop (:func:`lrfer.train.engine.fit`).

Each measurement runs in its own subprocess so that peak memory (CUDA max allocated, or the
process's max RSS on CPU) belongs to that model alone. The faces are random uint8 48x48 images:
throughput does not depend on pixel values. Epoch 1 warms up (cuDNN autotuning, allocator); the
figure is the last epoch's.

    python bench/train_throughput.py [--device cpu|cuda] [--images 2048] [--epochs 2]

Writes bench/results/train_throughput_<device>.json (commit, machine, date, seed, command).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, git_commit

RESULTS = ROOT / "bench" / "results"


def measure(model: str, augment: bool, device: str, images: int, epochs: int, batch: int) -> dict:
    """Run inside the subprocess: one short fit, then report speed and peak memory."""
    import numpy as np
    import torch

    from lrfer.data.augment import AugmentConfig
    from lrfer.data.faceset import FaceSet
    from lrfer.train.config import load_config
    from lrfer.train.engine import fit

    g = torch.Generator().manual_seed(0)
    faces = FaceSet(
        torch.randint(0, 256, (images, 1, 48, 48), dtype=torch.uint8, generator=g),
        torch.randint(0, 7, (images,), generator=g),
        ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        np.full(images, "Training"),
    )
    cfg = load_config("fer2013_multires", model=model, epochs=epochs, batch_size=batch, device=device, ema_decay=0.0)
    if not augment:
        cfg.augment = AugmentConfig(flip=False, rotate=0, scale=0, translate=0, crop=cfg.augment.crop)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(cfg, faces, None, tmp)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "model": model,
        "augment": augment,
        "images_per_s": result.history[-1]["images_per_s"],
        "peak_memory_mib": round(peak, 1),
        "peak_memory_kind": "cuda max allocated" if device.startswith("cuda") else "process max RSS",
        "params": sum(p.numel() for p in __import__("lrfer.models", fromlist=["create_model"]).create_model(model).parameters()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--models", default="", help="comma-separated (default: all registered)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--_one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._one:  # child process: one measurement, JSON on stdout
        row = measure(args._one[0], args._one[1] == "1", args.device, args.images, args.epochs, args.batch_size)
        print(json.dumps(row))
        return

    import torch

    from lrfer.models import list_models

    models = args.models.split(",") if args.models else list_models("classifier")
    rows = []
    for model in models:
        for augment in (False, True):
            cmd = [sys.executable, __file__, "--_one", model, "1" if augment else "0", "--device", args.device,
                   "--images", str(args.images), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    by_model: dict[str, dict] = {}
    for r in rows:
        by_model.setdefault(r["model"], {})[r["augment"]] = r["images_per_s"]
    overhead = {m: round(1 - v[True] / v[False], 4) for m, v in by_model.items()}
    commit = git_commit(short=True)
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or platform.machine()
    result = {
        "benchmark": "train_throughput",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit,
        "machine": {"host": platform.node(), "device": args.device, "device_name": device_name, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": 0,
        "settings": {"images": args.images, "epochs": args.epochs, "batch_size": args.batch_size, "augment": "fer2013_multires recipe (affine, crop 44, erase 0.25, degrade p=0.5)"},
        "rows": rows,
        "augment_overhead": overhead,
    }
    out = args.out or RESULTS / f"train_throughput_{args.device.split(':')[0]}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
