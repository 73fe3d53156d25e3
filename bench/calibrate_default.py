"""Temperature-calibrate the shipped default model on FER2013 PublicTest and store T in it.

    python bench/calibrate_default.py [--data ../shared/data/fer2013.npz] [--split PublicTest] [--dry-run]

The default model was trained on all of Training, so the validation split (PublicTest, the split
the project selects models on) is the only held-out data to fit T on. To report an "after" ECE
that is not measured on the faces T was fitted on, the split is cross-fitted: T is fitted on one
random half and applied to the other, both ways, and NLL/ECE are computed over the pooled
held-out probabilities. The T stored in the checkpoint is then fitted on the whole split.

Writes bench/results/calibration_default.json and (unless --dry-run) the temperature and its
calibration record into src/lrfer/assets/default/model.safetensors (weights unchanged).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from _common import ROOT, add_data_arg, cpu_model
from _common import provenance as shared_provenance
from lrfer.data.readers import load_dataset
from lrfer.data.transforms import predict_logits
from lrfer.evaluate.calibration import ECE_BINS, apply_temperature, calibration_report, fit_temperature, set_checkpoint_temperature
from lrfer.evaluate.metrics import expected_calibration_error, nll
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

OUT = ROOT / "bench" / "results" / "calibration_default.json"


def provenance(args_data: str) -> dict:
    machine = f"{platform.node()} {platform.machine()} {cpu_model()}, {os.cpu_count()} cpus, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    return shared_provenance("bench/calibrate_default.py", machine=machine, data=args_data)


def main() -> None:
    ap = argparse.ArgumentParser()
    add_data_arg(ap)
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random halves for cross-fitting")
    ap.add_argument("--dry-run", action="store_true", help="write the results file only, leave the checkpoint as it is")
    ap.add_argument("--sizes", default="12,24", help="face sizes (px) at which to also report ECE with the stored T ('' for none)")
    args = ap.parse_args()

    clf = FaceClassifier.load(device="cpu")
    faces = clf.prepare(load_dataset(args.data).select_split(args.split))
    # Raw logits of the network: a temperature already in the checkpoint (a re-run) is not applied.
    logits = predict_logits(clf.model, faces.images, crop=clf.crop, input_size=clf.image_size)
    labels = faces.labels
    n = len(labels)

    halves = np.array_split(np.random.default_rng(args.seed).permutation(n), 2)
    held_out = torch.empty(n, logits.shape[1])
    folds = []
    for k in range(2):
        fit_idx, test_idx = torch.from_numpy(halves[1 - k]), torch.from_numpy(halves[k])
        t = fit_temperature(logits[fit_idx], labels[fit_idx])
        held_out[test_idx] = apply_temperature(logits[test_idx], t)
        folds.append({"fit_n": len(fit_idx), **calibration_report(logits[test_idx], labels[test_idx], t)})
    before = calibration_report(logits, labels, 1.0)
    cross = {
        "nll_after": nll(held_out, labels),
        "ece_after": expected_calibration_error(held_out, labels, ECE_BINS),
    }
    t_all = fit_temperature(logits, labels)
    in_sample = calibration_report(logits, labels, t_all)

    # Does one T fit faces seen at low resolution? ECE of degraded copies with the stored T, and the
    # T each size would want (fitted in-sample, for information only: it is not stored).
    by_size = []
    for size in [int(v) for v in args.sizes.split(",") if v.strip()]:
        z = predict_logits(clf.model, faces.images, crop=clf.crop, input_size=clf.image_size, degrade_to=size)
        rep = calibration_report(z, labels, t_all)
        by_size.append({"size": size, "accuracy": rep["accuracy"], "ece_before": rep["ece_before"], "ece_after": rep["ece_after"],
                        "nll_before": rep["nll_before"], "nll_after": rep["nll_after"], "own_temperature": fit_temperature(z, labels)})  # fmt: skip

    record = {
        "split": args.split,
        "n": n,
        "method": "temperature scaling: NLL minimised over log T (golden section), no TTA",
        "nll_before": before["nll_before"],
        "nll_after": cross["nll_after"],
        "ece_before": before["ece_before"],
        "ece_after": cross["ece_after"],
        "ece_bins": ECE_BINS,
        "after": "2-fold cross-fitted: each half scaled by the T fitted on the other half",
        "data": Path(args.data).name,
    }
    results = {
        "provenance": provenance(args.data),
        "checkpoint": str(DEFAULT_CHECKPOINT.relative_to(ROOT)),
        "model": clf.name,
        "split": args.split,
        "n": n,
        "accuracy": before["accuracy"],
        "temperature": t_all,
        "before": {"nll": before["nll_before"], "ece": before["ece_before"]},
        "after_cross_fitted": {"nll": cross["nll_after"], "ece": cross["ece_after"], "fold_temperatures": [f["temperature"] for f in folds]},
        "after_in_sample": {"nll": in_sample["nll_after"], "ece": in_sample["ece_after"]},
        "folds": folds,
        "degraded": by_size,
        "ece_bins": ECE_BINS,
        "stored_in_checkpoint": not args.dry_run,
    }
    if not args.dry_run:
        set_checkpoint_temperature(DEFAULT_CHECKPOINT, t_all, calibration=record)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{clf.name} on {args.split} (n={n}): T = {t_all:.3f}; ECE {before['ece_before']:.4f} -> {cross['ece_after']:.4f} "
        f"(cross-fitted; in-sample {in_sample['ece_after']:.4f}); NLL {before['nll_before']:.4f} -> {cross['nll_after']:.4f}"
    )
    for r in by_size:
        print(f"  at {r['size']} px: accuracy {r['accuracy']:.4f}, ECE {r['ece_before']:.4f} -> {r['ece_after']:.4f} with the stored T (own T {r['own_temperature']:.3f})")
    print(f"wrote {OUT.relative_to(ROOT)}" + ("" if args.dry_run else f" and T into {DEFAULT_CHECKPOINT.relative_to(ROOT)}"))


if __name__ == "__main__":
    main()
