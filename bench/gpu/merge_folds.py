"""Merge the fold results of a k-fold run that was split over several device calls into one file.

A 10-fold CK+ run does not fit in one 10-minute command, so its folds run in separate calls
(``lrfer train --folds 10 --fold N``; the subject-to-fold assignment is seeded, hence the same in
every call), each call collecting its ``fold_XX/fold.json`` files into one JSON list:

    python bench/gpu/merge_folds.py --recipe lrernet_ckplus --machine "NVIDIA H100 80GB HBM3" \
        --part FOLDS_A.json COMMIT_A DATE_A --part FOLDS_B.json COMMIT_B DATE_B \
        --out bench/results/gpu_lrernet_ckplus_10fold.json

Writes pooled accuracy (all test faces together), the per-fold mean and standard deviation, and
each part's provenance. Accuracy is the last epoch's, as ``lrfer train --folds`` reports it; the
best-epoch figure is selected on the test fold and kept only as an optimistic bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--machine", required=True)
    ap.add_argument("--part", nargs=3, action="append", required=True, metavar=("FOLDS_JSON", "COMMIT", "DATE"))
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    folds: dict[int, dict] = {}
    parts = []
    for path, commit, date in args.part:
        rows = json.loads(Path(path).read_text())
        new = []
        for r in rows:
            if r["fold"] in folds:  # a later call on the same (still warm) machine lists the earlier folds again
                if folds[r["fold"]] != r:
                    raise SystemExit(f"fold {r['fold']} differs between two parts: give each fold once")
                continue
            folds[r["fold"]] = r
            new.append(r["fold"])
        parts.append({"folds": new, "commit": commit, "date": date})
    rows = [folds[f] for f in sorted(folds)]
    accs = [r["accuracy"] for r in rows]
    summary = {
        "script": "bench/gpu/merge_folds.py",
        "command": f"lrfer train --recipe {args.recipe} --folds {args.k} --fold N (one process per fold)",
        "recipe": args.recipe,
        "machine": args.machine,
        "parts": parts,
        "merged": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "k": args.k,
        "folds_done": len(rows),
        "accuracy_pooled": sum(r["correct"] for r in rows) / sum(r["n_test"] for r in rows),
        "accuracy_mean": statistics.mean(accs),
        "accuracy_std": statistics.pstdev(accs),
        "best_epoch_accuracy_mean_optimistic": statistics.mean(r["best_epoch_accuracy"] for r in rows),
        "folds": rows,
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
