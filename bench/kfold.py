"""A recipe's subject-independent k-fold protocol (CK+), with a resolution sweep of every fold.

    python bench/kfold.py --recipe ckplus_from_default                 # CK+48, 10 folds, on this CPU
    python bench/kfold.py --recipe lrernet_ckplus --device cuda

Runs :func:`lrfer.train.kfold.cross_validate` (what ``lrfer train --folds K`` runs: each fold
trains on the other folds' subjects and is scored at its last epoch), then degrades each held-out
fold's faces to each size with the training's own degradation (area down, bilinear back up) and
scores that fold's model on them, so every face is tested once per size. A killed run restarts
where it stopped (finished folds are kept in --run-dir).

Writes bench/results/kfold_<recipe>[_<tag>].json (provenance, the k-fold summary, pooled accuracy per
face size, wall-clock time, the --set overrides) and its _sweep.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import ROOT, add_set_arg, add_threads_arg, cpu_model, provenance, set_overrides

DATA = ROOT.parent / "shared" / "data" / "ckplus48.npz"
SIZES = (8, 12, 16, 24, 32, 48)

# Settings this script passes to the recipe itself, which --set must not name too.
OWN_FLAGS = {"epochs": "use --epochs", "seed": "use --seed", "device": "use --device"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="ckplus_from_default")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--fold-seed", type=int, default=0)
    ap.add_argument("--folds", default=None, help="comma list of the folds to run (default: all); a partial run says so in folds_done")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    ap.add_argument("--seed", type=int, default=0)
    add_set_arg(ap, "'freeze=[]'")
    ap.add_argument("--tag", default="", help="suffix of the result file name (a variant of the recipe)")
    ap.add_argument("--device", default="cpu")
    add_threads_arg(ap)
    ap.add_argument("--run-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from lrfer.data.readers import load_dataset
    from lrfer.data.splits import subject_kfold
    from lrfer.evaluate.plots import plot_sweep
    from lrfer.evaluate.sweep import resolution_sweep
    from lrfer.predict.classifier import FaceClassifier
    from lrfer.train.config import load_config
    from lrfer.train.kfold import cross_validate

    prov = provenance("bench/kfold.py", args.seed, cpu=cpu_model(), threads=args.threads, device=args.device)  # first: the tree may change during the run
    overrides = set_overrides(args, "'freeze=[]'", OWN_FLAGS)
    cfg = load_config(args.recipe, epochs=args.epochs, seed=args.seed, device=args.device, **overrides).validate()
    name = args.recipe + (f"_{args.tag}" if args.tag else "")
    run_dir = args.run_dir or ROOT / "runs" / f"kfold_{name}"
    out = args.out or ROOT / "bench" / "results" / f"kfold_{name}.json"
    faces = load_dataset(args.data)
    if cfg.grayscale:
        faces = faces.to_grayscale()

    def progress(event):
        if event.task == "epoch_end":
            print(f"  epoch {event.done}/{event.total}: {event.info.get('images_per_s', 0):.0f} img/s, {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
        elif event.task == "kfold":
            print(event.info.get("message", ""), file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    summary = cross_validate(cfg, faces, run_dir, k=args.k, fold_seed=args.fold_seed, folds=folds, progress=progress)
    seconds = time.perf_counter() - t0

    # each fold's model on its own held-out faces, degraded to each size; pooled over the folds
    correct = dict.fromkeys(SIZES, 0)
    splits = subject_kfold(faces, k=args.k, seed=args.fold_seed)
    for row in summary["folds"]:
        clf = FaceClassifier.load(str(run_dir / f"fold_{row['fold']:02d}" / "last.safetensors"), device=args.device)
        test = faces.subset(splits[row["fold"]][1]).with_classes(clf.classes)
        for r in resolution_sweep(clf.model, test, SIZES, tta=cfg.tta, crop=clf.crop, input_size=clf.image_size, device=args.device):
            correct[r["size"]] += int(round(r["accuracy"] * r["n"]))
    n = sum(r["n_test"] for r in summary["folds"])
    sweep = [{"size": s, "accuracy": correct[s] / n, "n": n} for s in SIZES]
    if not np.isclose(sweep[-1]["accuracy"], summary["accuracy_pooled"], atol=1.5 / n):
        # 48 px is the faces' own size: the sweep's score there must be the protocol's
        raise SystemExit(f"sweep at 48 px ({sweep[-1]['accuracy']:.4f}) differs from the k-fold accuracy ({summary['accuracy_pooled']:.4f})")

    result = {
        "benchmark": "kfold",
        "recipe": args.recipe,
        "overrides": overrides,
        "provenance": prov,
        "seconds": round(seconds, 1),
        "sweep_pooled": sweep,
        **summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot_sweep({f"{name} ({args.k}-fold, pooled)": sweep}, out.with_name(out.stem + "_sweep.png"), title=f"{faces.name}: accuracy against face size")
    print(f"{name}: {100 * summary['accuracy_pooled']:.1f}% pooled over {summary['folds_done']} folds "
          f"({100 * summary['accuracy_mean']:.1f} +- {100 * summary['accuracy_std']:.1f} per fold); "
          + ", ".join(f"{r['size']} px {100 * r['accuracy']:.1f}" for r in sweep) + f"; {seconds / 60:.1f} min -> {out}")  # fmt: skip


if __name__ == "__main__":
    from lrfer.errors import LrferError

    try:
        main()
    except LrferError as err:  # a bad flag or input: one line, as the CLI gives it
        sys.exit(f"error: {err}")
