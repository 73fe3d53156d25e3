"""Shortened CPU runs of the published methods' recipes: a first number for each method without a GPU.

The full recipes (60-250 epochs of FER2013) need the GPU machine. This script trains each recipe
through the real training loop (:func:`lrfer.train.engine.fit`) on the first ``limit_train``
training rows for a few epochs, with the recipe's own model, optimiser, loss and augmentation, and
reports the best validation accuracy. The numbers are **not** comparable with the papers': each run
sees a few thousand faces (``samples_seen``; ``schedule_fraction`` is the share of the recipe's full
schedule), so they show that every method learns under lrfer's engine, and how far a CPU gets in
minutes, no more. Validation uses a single centre view (the recipes' ten-crop test would cost 10x).

    python bench/methods_short.py                       # every run below, skipping finished ones
    python bench/methods_short.py --only salimov_fer2013 --force

Writes bench/results/methods_short/<recipe>.json (commit, machine, date, seed, command, settings,
per-epoch history, best accuracy and macro F1). CK+ runs use fold 0 of the subject-independent
10-fold split (``lrfer.data.splits.subject_kfold``, seed 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from _common import ROOT, provenance

RESULTS = ROOT / "bench" / "results" / "methods_short"
DATA = {"fer2013": ROOT.parent / "shared" / "data" / "fer2013.npz", "ckplus": ROOT.parent / "shared" / "data" / "ckplus48.npz"}

# recipe -> (dataset, training rows, epochs, validation rows (0: all)). Sized so that each run takes
# 4-10 minutes on one core of the 2-core development machine.
RUNS: dict[str, tuple[str, int, int, int]] = {
    "salimov_fer2013": ("fer2013", 16384, 1, 0),
    "salimov_fer2013_noaug": ("fer2013", 16384, 1, 0),
    "dsxception_fer2013": ("fer2013", 8192, 1, 0),
    "lrernet_fer2013": ("fer2013", 6144, 1, 0),
    "lrernet_ckplus": ("ckplus", 0, 6, 0),
    "liu_model_b_fer2013": ("fer2013", 3072, 1, 1000),
    "massoli_fer2013": ("fer2013", 1536, 1, 1000),
}


def run_one(recipe: str, seed: int, device: str) -> dict:
    import numpy as np

    from lrfer.data.readers import load_dataset
    from lrfer.data.splits import subject_kfold
    from lrfer.train.config import load_config
    from lrfer.train.engine import fit

    dataset, limit_train, epochs, limit_val = RUNS[recipe]
    full = load_config(recipe)
    cfg = load_config(recipe, epochs=epochs, limit_train=limit_train or None, seed=seed, device=device, tta="none")
    sr_note = None
    if cfg.model_kwargs.get("sr") and not Path(cfg.model_kwargs["sr"]).exists():
        # Model B's SRGAN is its own long training run (`lrfer train-sr --gan`); without it the
        # network sees bicubic-enlarged faces (the recipe's documented baseline).
        sr_note = f"no {cfg.model_kwargs['sr']}: bicubic x2 instead of the SRGAN"
        cfg.model_kwargs = {**cfg.model_kwargs, "sr": None}
    faces = load_dataset(str(DATA[dataset]))
    val_split = cfg.val_split
    if dataset == "ckplus":  # no official split: fold 0 of the subject-independent 10-fold split
        train_idx, test_idx = subject_kfold(faces, k=10, seed=0)[0]
        split = np.full(len(faces), cfg.train_split, dtype=object)
        val_split = "fold0_test"
        split[test_idx] = val_split
        faces = replace(faces, split=split.astype(str))
    train, val = faces.select_split(cfg.train_split), faces.select_split(val_split)
    if limit_val:
        val = val.subset(np.arange(min(limit_val, len(val))))
    rows = min(len(train), limit_train or len(train))

    def progress(event):
        if event.task == "epoch_end":
            print(f"{recipe} epoch {event.done}/{event.total}: val {100 * event.info.get('val_acc', float('nan')):.2f}%", file=sys.stderr, flush=True)

    import tempfile

    prov = provenance("bench/methods_short.py", seed)  # the commit the run starts from
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = fit(cfg, train, val, tmp, progress=progress)
    seconds = time.perf_counter() - t0
    best = res.history[res.best_epoch - 1]
    return {
        "benchmark": "methods_short",
        "recipe": recipe,
        "model": cfg.model,
        "paper": full.paper.get("title"),
        "paper_reported": full.paper.get("reported"),
        "provenance": prov,
        "settings": {
            "dataset": dataset, "train_rows": rows, "epochs": epochs, "val_split": val_split, "val_rows": len(val),
            "fold": 0 if dataset == "ckplus" else None, "tta": "none", "recipe_epochs": full.epochs, "sr": sr_note,
        },  # fmt: skip
        "samples_seen": rows * epochs,
        "schedule_fraction": round(rows * epochs / (len(faces.select_split(full.train_split)) * full.epochs), 5),
        "val_acc": best["val_acc"],
        "val_macro_f1": best["val_macro_f1"],
        "best_epoch": res.best_epoch,
        "history": res.history,
        "train_seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated recipes (default: all of RUNS)")
    ap.add_argument("--force", action="store_true", help="rerun recipes that already have a results file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(RUNS)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        sys.exit(f"no shortened run is defined for {unknown[0]}: choose from {', '.join(RUNS)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in names:
        out = RESULTS / f"{name}.json"
        if out.exists() and not args.force:
            print(f"{name}: done ({out}), skipped", file=sys.stderr)
            continue
        result = run_one(name, args.seed, args.device)
        out.write_text(json.dumps(result, indent=2))
        print(f"{name}: {100 * result['val_acc']:.2f}% after {result['samples_seen']} samples ({result['train_seconds']:.0f}s); wrote {out}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
