"""Salimov & Yoo (2021), Table 3: accuracy of the small CNN against its depth and kernel size.

Trains ``cnn2x2`` with 2..7 convolution layers x kernel 2..5 (24 networks) on FER2013 with the
``salimov_fer2013`` recipe (or ``--recipe``) and reports the best PublicTest accuracy of each, in the
layout of the paper's table (rows: depth, columns: kernel). Every variant goes through the real
training loop (:func:`lrfer.train.engine.fit`), same seed, same data.

    python bench/salimov_depth_kernel.py                          # the full sweep (a GPU job)
    python bench/salimov_depth_kernel.py --epochs 2 --limit-train 2048 --device cpu   # a short CPU version
    python bench/salimov_depth_kernel.py --depths 2,6 --kernels 2,3 --epochs 1 --limit-train 128 --limit-val 256 --out /tmp/sdk.json

Writes bench/results/salimov_depth_kernel[_<tag>].json (commit, machine, date, seed, command, per-cell
accuracy, parameters and training time) unless ``--out`` says otherwise. The paper's own Table 3
values are not reproduced here (we do not have them to hand); only its reported headline numbers
(FER2013 60.82 / 69.32, FERPlus 85.35) are, in the recipe's ``[paper]`` table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, add_data_arg, git_commit

RESULTS = ROOT / "bench" / "results"


def ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def table(cells: dict[tuple[int, int], float], depths: list[int], kernels: list[int]) -> str:
    """The paper's Table 3 layout: one row per depth, one column per kernel, accuracy in %."""
    head = "| conv layers \\ kernel | " + " | ".join(f"{k}x{k}" for k in kernels) + " |"
    rule = "|---|" + "---:|" * len(kernels)
    rows = [head, rule]
    for d in depths:
        vals = [f"{100 * cells[(d, k)]:.2f}" if (d, k) in cells else "" for k in kernels]
        rows.append(f"| {d} | " + " | ".join(vals) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arg(ap)
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="reader option, e.g. labels=ferplus")
    ap.add_argument("--recipe", default="salimov_fer2013")
    ap.add_argument("--depths", default="2,3,4,5,6,7")
    ap.add_argument("--kernels", default="2,3,4,5")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--limit-train", type=int, default=0, help="first N training rows only (0: all)")
    ap.add_argument("--limit-val", type=int, default=0, help="first N validation rows only (0: all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/salimov_depth_kernel[_TAG].json)")
    args = ap.parse_args()

    import numpy as np
    import torch

    from lrfer.cli import parse_key_values
    from lrfer.data.readers import load_dataset
    from lrfer.models import create_model
    from lrfer.train.config import load_config
    from lrfer.train.engine import fit

    options = parse_key_values(args.option)
    depths, kernels = ints(args.depths), ints(args.kernels)
    base = load_config(args.recipe, epochs=args.epochs, batch_size=args.batch_size, device=args.device, seed=args.seed, limit_train=args.limit_train or None)
    faces = load_dataset(args.data, **options)
    train = faces.select_split(base.train_split)
    val = faces.select_split(base.val_split)
    if args.limit_val:
        val = val.subset(np.arange(min(args.limit_val, len(val))))

    cells: dict[tuple[int, int], float] = {}
    rows = []
    for d in depths:
        for k in kernels:
            kwargs = {**base.model_kwargs, "depth": d, "kernel": k}
            cfg = load_config(args.recipe, epochs=args.epochs, batch_size=args.batch_size, device=args.device, seed=args.seed,
                              limit_train=args.limit_train or None, model_kwargs=kwargs)  # fmt: skip
            params = sum(p.numel() for p in create_model(cfg.model, num_classes=train.num_classes, in_chans=1 if cfg.grayscale else train.in_chans, **kwargs).parameters())
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                res = fit(cfg, train, val, tmp)
            seconds = time.perf_counter() - t0
            best = res.history[res.best_epoch - 1]
            cells[(d, k)] = best["val_acc"]
            rows.append({
                "depth": d, "kernel": k, "params": params, "val_acc": best["val_acc"], "val_macro_f1": best["val_macro_f1"],
                "best_epoch": res.best_epoch, "epochs": cfg.epochs, "train_seconds": round(seconds, 1),
            })  # fmt: skip
            print(f"depth {d} kernel {k}: {100 * best['val_acc']:.2f}% (epoch {res.best_epoch}/{cfg.epochs}, {params / 1e6:.2f}M params, {seconds:.0f}s)", file=sys.stderr, flush=True)

    commit = git_commit(short=True)
    device = str(torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)))
    device_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine()
    result = {
        "benchmark": "salimov_depth_kernel",
        "paper": "Salimov & Yoo 2021, Table 3 (depth x kernel); the paper's own cell values are not included",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit,
        "machine": {"host": platform.node(), "device": device, "device_name": device_name, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": args.seed,
        "settings": {
            "data": args.data, "options": options, "recipe": args.recipe, "epochs": base.epochs, "batch_size": base.batch_size,
            "limit_train": args.limit_train, "limit_val": args.limit_val, "train_rows": min(len(train), args.limit_train or len(train)),
            "val_split": base.val_split, "val_rows": len(val), "depths": depths, "kernels": kernels,
        },  # fmt: skip
        "rows": rows,
        "table_markdown": table(cells, depths, kernels),
    }
    out = args.out or RESULTS / f"salimov_depth_kernel{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nBest {base.val_split} accuracy (%), cnn2x2, {args.recipe}, {base.epochs} epochs"
          + (f", first {args.limit_train} training rows" if args.limit_train else "") + ":")  # fmt: skip
    print(table(cells, depths, kernels))
    print("(paper's Table 3 values not included: not available to us)")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
