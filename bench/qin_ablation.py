"""Qin et al. (2021) ablation: Base / STN / SR / STN+SR front ends, our accuracy beside the paper's.

First trains (or takes) the x2 EDSR super-resolution model the SR variants put in front of the
classifier, then trains the four ``qin_<variant>_<dataset>`` recipes through the real training loop
(:func:`lrfer.train.engine.fit`) with the same seed and data, and reports each one's best validation
accuracy (FER2013: PublicTest; CK+: the test fold of a subject-independent 10-fold split, fold
``--fold``; the paper's CK+ protocol is not known to us exactly).

    python bench/qin_ablation.py                                   # the full ablation (a GPU job)
    python bench/qin_ablation.py --sr-checkpoint runs/qin_edsr_x2/best.safetensors   # reuse a trained SR model
    python bench/qin_ablation.py --epochs 3 --limit-train 4096 --sr-config light --device cpu --tag cpu   # a short CPU version
    python bench/qin_ablation.py --epochs 1 --limit-train 256 --limit-val 256 --sr-config light --sr-epochs 1 --out /tmp/qin.json

Writes bench/results/qin_ablation_<dataset>[_<tag>].json (commit, machine, date, seed, command, the
SR model's PSNR/SSIM report, and per variant: accuracy, macro F1, best epoch, training time) unless
``--out`` says otherwise. The paper's numbers are read from the recipes' ``[paper]`` tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import ROOT, git_commit

RESULTS = ROOT / "bench" / "results"
VARIANTS = ("base", "stn", "sr", "stn_sr")
DATA = {"fer2013": ROOT.parent / "shared" / "data" / "fer2013.npz", "ckplus": ROOT.parent / "shared" / "data" / "ckplus48.npz"}


def table(rows: list[dict]) -> str:
    base = next((r for r in rows if r["variant_key"] == "base"), None)
    head = ["| variant | paper (%) | ours (%) | paper gain over Base | our gain over Base |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        paper, ours = r["paper_accuracy"], 100 * r["val_acc"]
        pg = f"{paper - base['paper_accuracy']:+.1f}" if base and paper is not None and base["paper_accuracy"] is not None else ""
        og = f"{ours - 100 * base['val_acc']:+.2f}" if base else ""
        head.append(f"| {r['variant']} | {'' if paper is None else f'{paper:.1f}'} | {ours:.2f} | {pg} | {og} |")
    return "\n".join(head)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="fer2013", choices=sorted(DATA))
    ap.add_argument("--data", default=None, help="dataset path (default ../shared/data/<fer2013|ckplus48>.npz)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=None, help="override the recipes' epochs")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--limit-train", type=int, default=0, help="first N training rows only (0: all); also for SR training")
    ap.add_argument("--limit-val", type=int, default=0, help="first N validation rows only (0: all)")
    ap.add_argument("--fold", type=int, default=0, help="CK+: which of the 10 subject folds is the test fold")
    ap.add_argument("--sr-checkpoint", default=None, help="a trained x2 SR checkpoint (`lrfer train-sr`); else one is trained here")
    ap.add_argument("--sr-config", default="paper", choices=["light", "paper"], help="SR model trained here: paper (16 x 128, Qin) or light (4 x 32)")
    ap.add_argument("--sr-epochs", type=int, default=None, help="epochs of the SR training here (default: --epochs, else SRConfig's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=Path, default=None, help="keep checkpoints here (default: a temporary folder)")
    ap.add_argument("--tag", default="", help="suffix of the result file name")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default bench/results/qin_ablation_<dataset>[_TAG].json)")
    return ap.parse_args()


def sr_model(args: argparse.Namespace, variants: list[str], train, val, runs: Path) -> tuple[str | None, dict]:
    """The x2 SR model of the SR variants: ``--sr-checkpoint``, or one trained here on the training
    split's faces (PSNR/SSIM on the validation faces). Returns its path and what to record of it."""
    from lrfer.train.sr import SRConfig, train_sr

    sr_info: dict = {"checkpoint": args.sr_checkpoint}
    sr_path = args.sr_checkpoint
    if sr_path is None and any("sr" in v for v in variants):
        sr_epochs = args.sr_epochs or args.epochs
        cfg_sr = SRConfig(config=args.sr_config, scale=2, device=args.device, seed=args.seed, limit_train=args.limit_train, **({"epochs": sr_epochs} if sr_epochs else {}))
        t0 = time.perf_counter()

        def sr_progress(event):
            if event.task == "sr_epoch_end":
                r = event.info
                print(f"SR epoch {event.done}/{event.total}: val PSNR {r['val_psnr']:.2f} dB (bicubic {r['bicubic_psnr']:.2f})", file=sys.stderr, flush=True)

        res_sr = train_sr(cfg_sr, train, val, runs / "sr_x2", progress=sr_progress)
        sr_path = str(res_sr.best_path)
        sr_info = {"checkpoint": "trained here", "config": cfg_sr.to_dict(), "train_seconds": round(time.perf_counter() - t0, 1), "report": res_sr.report["results"]}
    elif sr_path is not None:
        from lrfer.models.checkpoint import load_checkpoint

        sr_info["info"] = {k: v for k, v in load_checkpoint(sr_path).info.items() if k in ("metrics", "epoch", "scale", "data")}

    return sr_path, sr_info


def main() -> None:
    args = parse_args()

    import numpy as np
    import torch

    from lrfer.data.readers import load_dataset
    from lrfer.data.splits import subject_kfold
    from lrfer.train.config import load_config
    from lrfer.train.engine import fit

    variants = [v for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant {unknown[0]}: choose from {', '.join(VARIANTS)}")
    names = {v: f"qin_{v}_{args.dataset}" for v in variants}
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "device": args.device, "seed": args.seed, "limit_train": args.limit_train or None}
    first = load_config(names[variants[0]], **overrides)

    data_path = args.data or str(DATA[args.dataset])
    faces = load_dataset(data_path)
    if args.dataset == "ckplus":  # no official split: a subject-independent fold, named as the recipes expect
        train_idx, test_idx = subject_kfold(faces, k=10, seed=args.seed)[args.fold]
        split = np.full(len(faces), first.train_split, dtype=object)
        split[test_idx] = first.val_split
        faces = replace(faces, split=split.astype(str))
    train = faces.select_split(first.train_split)
    val = faces.select_split(first.val_split)
    if args.limit_val:
        val = val.subset(np.arange(min(args.limit_val, len(val))))

    tmp = tempfile.TemporaryDirectory()
    runs = args.runs or Path(tmp.name)
    t_all = time.perf_counter()

    sr_path, sr_info = sr_model(args, variants, train, val, runs)

    # provenance now, not at the end: edits to the tree during a long run must not change it
    commit = git_commit(short=True)
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout.strip())
    device = str(torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)))
    device_name = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or platform.machine()
    out = args.out or RESULTS / f"qin_ablation_{args.dataset}{'_' + args.tag if args.tag else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def write_result(rows: list[dict]) -> None:
        """The results file, rewritten after every variant: a run cut off by a time limit keeps the variants it finished."""
        result = {
            "benchmark": "qin_ablation",
            "paper": first.paper.get("title"),
            "paper_reported": first.paper.get("reported"),
            "dataset": args.dataset,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "commit": commit + ("-dirty" if dirty else ""),
            "machine": {"host": platform.node(), "device": device, "device_name": device_name, "cpu_threads": torch.get_num_threads(), "torch": torch.__version__},
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seed": args.seed,
            "settings": {
                "data": data_path, "epochs": first.epochs, "batch_size": first.batch_size, "limit_train": args.limit_train, "limit_val": args.limit_val,
                "train_rows": min(len(train), args.limit_train or len(train)), "val_split": first.val_split, "val_rows": len(val),
                "fold": args.fold if args.dataset == "ckplus" else None,
            },  # fmt: skip
            "sr": sr_info,
            "rows": rows,
            "finished": len(rows) == len(variants),
            "total_seconds": round(time.perf_counter() - t_all, 1),
            "table_markdown": table(rows),
        }
        out.write_text(json.dumps(result, indent=2))

    # ---- the four classifiers
    rows = []
    for v in variants:
        cfg = load_config(names[v], **overrides)
        if "sr" in cfg.model_kwargs:
            cfg.model_kwargs = {**cfg.model_kwargs, "sr": sr_path}
        t0 = time.perf_counter()

        def progress(event, v=v):
            if event.task == "epoch_end":
                print(f"{v} epoch {event.done}/{event.total}: val {100 * event.info.get('val_acc', float('nan')):.2f}%", file=sys.stderr, flush=True)

        res = fit(cfg, train, val, runs / names[v], progress=progress)
        seconds = time.perf_counter() - t0
        best = res.history[res.best_epoch - 1]
        rows.append({
            "variant_key": v, "variant": cfg.paper.get("variant", v), "recipe": names[v], "model": cfg.model, "model_kwargs": cfg.model_kwargs,
            "paper_accuracy": cfg.paper.get("accuracy"), "val_acc": best["val_acc"], "val_macro_f1": best["val_macro_f1"],
            "best_epoch": res.best_epoch, "epochs": cfg.epochs, "train_seconds": round(seconds, 1),
        })  # fmt: skip
        write_result(rows)
        print(f"{cfg.paper.get('variant', v)}: {100 * best['val_acc']:.2f}% (paper {cfg.paper.get('accuracy')}%, epoch {res.best_epoch}/{cfg.epochs}, {seconds:.0f}s)", file=sys.stderr, flush=True)

    tmp.cleanup()
    print(f"\nBest {first.val_split} accuracy, Qin 2021 ablation on {args.dataset}, {first.epochs} epochs"
          + (f", first {args.limit_train} training rows" if args.limit_train else "") + ":")  # fmt: skip
    print(table(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
