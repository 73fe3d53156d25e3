"""Probability-averaging ensembles of trained checkpoints on FER2013, against face size.

    python bench/ensemble_fer2013.py --member A.safetensors --member B.safetensors [--member ...] \
        [--tta flip] [--split PublicTest] [--sizes 48,32,24,16,12,8] [--out bench/results/ensemble_fer2013.json]

Scores every member alone and the mean of all members' probabilities
(:class:`lrfer.predict.ensemble.ProbabilityEnsemble`), each face degraded to each size with the
library's one degradation (area down, bilinear back up), with the same test-time views for all.
Each member's probabilities are computed once per size and reused for the ensemble, so the run
costs one pass per member and size. The results file names each member by path and sha256, so a
figure can be traced to the exact weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from _common import ROOT, add_data_arg, cpu_model, provenance
from lrfer.data.readers import load_dataset
from lrfer.evaluate.sweep import ensemble_sweep, sweep_sizes
from lrfer.predict.classifier import DEFAULT_CHECKPOINT
from lrfer.predict.ensemble import ProbabilityEnsemble


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--member", action="append", required=True, help="an lrfer checkpoint (repeatable; 'default' is the shipped model)")
    add_data_arg(ap)
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--tta", default="flip", choices=["none", "flip", "tencrop"])
    ap.add_argument("--sizes", default="48,32,24,16,12,8")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ensemble_fer2013.json")
    args = ap.parse_args()
    prov = provenance("bench/ensemble_fer2013.py", cpu=cpu_model(), threads=torch.get_num_threads())  # first: the tree may change during the run

    paths = [str(DEFAULT_CHECKPOINT) if m == "default" else m for m in args.member]
    ens = ProbabilityEnsemble(paths, device="cpu")
    faces = load_dataset(args.data).select_split(args.split).with_classes(ens.classes)
    sizes = [int(s) for s in args.sizes.split(",")]
    swept = ensemble_sweep(ens, faces, sizes, tta=args.tta)
    # Keyed by path in the results file, so a row names the exact weights it scores.
    rows = {name: swept[key] for name, key in zip([*paths, "ensemble"], swept)}
    for i, size in enumerate(sweep_sizes(faces, sizes)):
        print(f"{size:>3} px: " + "  ".join(f"{r[i]['accuracy']:.4f}" for r in rows.values()), file=sys.stderr, flush=True)
    result = {
        "benchmark": "ensemble_fer2013",
        "split": args.split,
        "n": len(faces),
        "tta": args.tta,
        "sizes": sizes,
        "members": [{"path": p, "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest(), "recipe": m.checkpoint.info.get("config", {}).get("recipe")}
                    for p, m in zip(paths, ens.members)],
        "results": rows,
        "provenance": prov,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
