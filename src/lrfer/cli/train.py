"""``lrfer train`` (a classifier, or K folds of one) and ``lrfer train-sr`` (EDSR, or SRGAN with ``--gan``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..errors import LrferError
from ..files import check_writable
from ._common import Bars, add_data_options, load_data, positive_float, positive_int, print_table, probability


def add_parsers(sub) -> None:
    _add_train_parser(sub)
    _add_train_sr_parser(sub)


def _add_train_parser(sub) -> None:
    sp = sub.add_parser("train", help="train a model")
    sp.add_argument("--model", help="registered model name (`lrfer models`)")
    sp.add_argument("--recipe", help="shipped recipe name (`lrfer recipes`) or a .toml file")
    add_data_options(sp)
    sp.add_argument("--epochs", type=positive_int)
    sp.add_argument("--time-budget", type=positive_float, metavar="MIN", help="stop after MIN minutes, the schedule paced by the clock so it ends at the budget (--epochs is then the most it may run)")
    sp.add_argument("--batch-size", type=positive_int)
    sp.add_argument("--lr", type=positive_float)
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device", help="auto, cpu, cuda")
    sp.add_argument("--train-split")
    sp.add_argument("--val-split", help="split to select on; 'none' to skip validation")
    sp.add_argument("--degrade-p", type=probability, help="probability of multi-resolution degradation per sample")
    sp.add_argument("--limit-train", type=positive_int, help="use only the first N training rows (quick runs)")
    sp.add_argument("--compile", action="store_true", help="torch.compile the model")
    sp.add_argument("--init-weights", metavar="FILE", help="weights to start from: a .pth state dict, a .safetensors file, an lrfer checkpoint, or \"default\" (the shipped model: fine-tuning)")
    sp.add_argument("--extra-train", metavar="DATA", help="mix another labelled set into the training split (e.g. ckplus48.npz's posed faces); half its subjects are held out")
    sp.add_argument("--extra-train-repeat", type=positive_int, metavar="N", help="times each --extra-train face is seen an epoch (default 1)")
    sp.add_argument("--teacher", metavar="CKPT", help="distil from this high-resolution teacher checkpoint (e.g. --recipe fer2013_distill; weights: distill_* in the recipe)")
    sp.add_argument("--front", metavar="stn", help="put a spatial transformer in front of the classifier (Qin 2021)")
    sp.add_argument("--front-sr", metavar="SR_CKPT", help="put a trained super-resolution model (`lrfer train-sr`) in front")
    sp.add_argument("--sr-trainable", action="store_true", help="fine-tune the --front-sr model with the classifier (default frozen)")
    sp.add_argument("--out", help="output folder (default runs/<recipe or model>)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    g.add_argument("--overwrite", action="store_true", help="start afresh in OUT even if it holds a run (its checkpoints are replaced)")
    sp.add_argument("--folds", type=positive_int, metavar="K", help="subject-independent K-fold cross-validation (CK+: 10); finished folds are skipped on rerun")
    sp.add_argument("--fold", type=int, action="append", metavar="N", help="run only fold N (repeatable); default all")
    sp.add_argument("--fold-seed", type=int, default=0, help="seed of the subject-to-fold assignment")
    sp.set_defaults(func=cmd_train)


def _add_train_sr_parser(sub) -> None:
    sp = sub.add_parser("train-sr", help="train a super-resolution model on faces: EDSR (Qin 2021), or SRGAN with --gan (Liu 2019 model B)")
    add_data_options(sp)
    sp.add_argument("--scale", type=int, default=2, choices=[2, 3, 4], help="up-sampling factor")
    sp.add_argument("--config", default="light", choices=["light", "paper"], help="light: 4 blocks x 32 (CPU); paper: EDSR 16 x 128 (Qin 2021), with --gan SRResNet 16 x 64 (Ledig 2017)")
    sp.add_argument("--gan", action="store_true", help="train an SRGAN (SRResNet generator + discriminator, content + 1e-3 adversarial loss) instead of an EDSR")
    sp.add_argument("--feature-net", metavar="CKPT_OR_VGG", help="--gan: content-loss features from an lrfer classifier checkpoint (default: the shipped model) or a torchvision VGG-19 state dict")
    sp.add_argument("--pretrain-epochs", type=int, help="--gan: pixel-MSE epochs (SRResNet warm start) before the adversarial ones (default 0)")
    sp.add_argument("--epochs", type=positive_int, help="training epochs (with --gan: adversarial epochs, default 20)")
    sp.add_argument("--batch-size", type=positive_int)
    sp.add_argument("--lr", type=positive_float)
    sp.add_argument("--init-from", metavar="CKPT", help="start an x4 EDSR from an x2 checkpoint; with --gan, the generator from an SR checkpoint of the same config and scale")
    sp.add_argument("--train-split", help="default: the data's training split, else all rows")
    sp.add_argument("--val-split", help="held-out split for PSNR/SSIM; 'none' holds out the last 10%% of subjects or rows")
    sp.add_argument("--limit-train", type=positive_int, help="use only the first N training faces (quick runs)")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device", help="auto, cpu, cuda")
    sp.add_argument("--out", help="output folder (default runs/<model>_x<scale>; runs/srgan_<model>_x<scale> with --gan)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors (both SRGAN phases)")
    g.add_argument("--overwrite", action="store_true", help="start afresh in OUT even if it holds a run (its checkpoints are replaced)")
    sp.set_defaults(func=cmd_train_sr)


# ---------------------------------------------------------------------------- train
def cmd_train(args) -> int:
    from ..train.engine import fit

    bars = Bars(not args.no_progress)
    cfg = _train_config(args)
    out = check_writable(args.out or Path("runs") / (cfg.recipe or cfg.model), "--out", folder=True)
    if not args.folds:
        _check_run_dir(out, args)
    faces = load_data(args, bars)
    if args.folds:
        return _train_folds(args, cfg, faces, bars)
    train_set = faces.select_split(cfg.train_split)
    val_set = faces.select_split(cfg.val_split) if cfg.val_split and cfg.val_split != "none" else None
    result = fit(cfg, train_set, val_set, out, resume=args.resume, progress=bars, info=_run_info(args))
    bars.close()
    if int(os.environ.get("RANK", "0")) == 0:
        if val_set is not None and len(val_set):
            print(f"best validation accuracy {result.best_metric:.4f} at epoch {result.best_epoch}")
        else:  # without validation data the engine picks the epoch of the lowest training loss
            print(f"no validation split: best training loss {-result.best_metric:.4f} at epoch {result.best_epoch}")
        print(f"checkpoint: {result.best_path}")
    return 0


#: ``lrfer train`` flags that set the config field of their own name (None: the recipe's value)
_FLAGS_AS_CONFIG = ("model", "epochs", "batch_size", "lr", "seed", "device", "train_split", "val_split", "limit_train", "init_weights", "teacher",
                    "extra_train", "extra_train_repeat")


def _train_config(args):
    """The recipe with the command's flags over it, checked: a bad name fails before the data is read."""
    from ..train.config import load_config, with_front_end

    cfg = load_config(
        args.recipe,
        **{field: getattr(args, field) for field in _FLAGS_AS_CONFIG},
        time_budget_minutes=args.time_budget,
        compile=True if args.compile else None,
        augment={"degrade_p": args.degrade_p} if args.degrade_p is not None else None,
    )
    if args.front not in (None, "stn"):
        raise LrferError(f"--front {args.front}", "the front end that needs no file is 'stn'; give a trained SR model with --front-sr CKPT")
    cfg = with_front_end(cfg, stn=args.front == "stn", sr=args.front_sr, sr_trainable=args.sr_trainable)
    cfg.validate()
    return cfg


def _run_info(args, **extra) -> dict:
    """What a run records about how it was started: the data, the command line, the time."""
    return {"data": str(args.data), **extra, "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _check_run_dir(out: Path, args) -> None:
    """A run folder that holds a run is continued (--resume) or replaced (--overwrite), never
    silently overwritten: a forgotten --resume after a kill would throw away the epochs done."""
    from ..files import read_jsonl

    if (out / "last.safetensors").exists() and not (args.resume or args.overwrite):
        rows = read_jsonl(out / "metrics.jsonl")
        phase = {"pretrain": "MSE warm start ", "gan": "SRGAN "}.get(rows[-1].get("phase"), "") if rows else ""  # train-sr --gan's two phases
        done = f" ({phase}epoch {rows[-1]['epoch']} done)" if rows else ""
        raise LrferError(f"{out} already holds a training run{done}", "pass --resume to continue it, --overwrite to start afresh there, or another --out")


def _train_folds(args, cfg, faces, bars) -> int:
    from ..train.kfold import cross_validate

    out = check_writable(args.out or Path("runs") / f"{cfg.recipe or cfg.model}_{args.folds}fold", "--out", folder=True)
    s = cross_validate(cfg, faces, out, k=args.folds, fold_seed=args.fold_seed, folds=args.fold, progress=bars, info=_run_info(args))
    bars.close()
    print_table(s["folds"], ["fold", "n_train", "n_test", "accuracy", "best_epoch_accuracy"])
    print(
        f"{s['folds_done']}/{s['k']} folds: accuracy {s['accuracy_pooled']:.4f} pooled, "
        f"{s['accuracy_mean']:.4f} +- {s['accuracy_std']:.4f} per fold (last epoch; best-epoch mean {s['best_epoch_accuracy_mean_optimistic']:.4f} is optimistic)"
    )
    print(f"wrote {out / 'kfold.json'}")
    return 0


# ---------------------------------------------------------------------------- train-sr
def cmd_train_sr(args) -> int:
    from ..data.splits import TEST_SPLIT_NAMES, TRAIN_SPLIT_NAMES

    bars = Bars(not args.no_progress)
    cfg, train = _sr_config(args)
    out = check_writable(args.out or Path("runs") / f"{'srgan_' if args.gan else ''}{cfg.model}_x{cfg.scale}", "--out", folder=True)
    _check_run_dir(out, args)
    faces = load_data(args, bars)
    splits = faces.splits
    train_split = args.train_split or next((s for s in TRAIN_SPLIT_NAMES if s in splits), None)
    val_split = args.val_split or next((s for s in TEST_SPLIT_NAMES if s in splits), "none")
    train_set = faces.select_split(train_split) if train_split else faces
    val_set = faces.select_split(val_split) if val_split != "none" else None
    info = _run_info(args, train_split=train_split or "all", val_split=val_split)
    result = train(cfg, train_set, val_set, out, progress=_sr_progress(bars), info=info, resume=args.resume)
    bars.close()
    columns = ["scale", "method", "psnr", "bicubic_psnr", "ssim", "bicubic_ssim"]
    print_table([{**r, "method": r["method"] or "(cannot)"} for r in result.report["results"]], columns)
    if "srresnet_mse" in result.report:  # the generator after the MSE warm start, for comparison
        print_table([{**r, "method": r["method"] or "(cannot)"} for r in result.report["srresnet_mse"]["results"]], columns)
    print(f"checkpoint: {result.best_path} (epoch {result.best_epoch})")
    print(f"report: {out / 'sr_report.json'}")
    return 0


def _sr_config(args):
    """The checked config and the training function: EDSR's, or with ``--gan`` SRGAN's (Liu 2019
    model B's SR stage: SRResNet generator + discriminator). Fails on bad settings (and a missing
    --feature-net file) before the data is read."""
    from ..train.sr import SRConfig, train_sr

    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "limit_train": args.limit_train, "seed": args.seed, "device": args.device}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.gan:
        from ..train.srgan import SRGANConfig, train_srgan

        gan = {"feature_net": args.feature_net, "pretrain_epochs": args.pretrain_epochs}
        cfg = SRGANConfig(config=args.config, scale=args.scale, init_from=args.init_from or "", **overrides, **{k: v for k, v in gan.items() if v is not None})
        train = train_srgan
    else:
        if args.feature_net is not None or args.pretrain_epochs is not None:
            raise LrferError("--feature-net and --pretrain-epochs are SRGAN settings", "add --gan")
        cfg = SRConfig(config=args.config, scale=args.scale, init_from=args.init_from or "", **overrides)
        train = train_sr
    cfg.validate()
    return cfg, train


def _sr_progress(bars):
    """The progress callback of an SR training: bars, and one line on stderr per epoch."""

    def progress(event):
        if event.task not in ("sr_epoch_end", "srgan_epoch_end"):
            return bars(event)
        bars.close()
        _print_sr_epoch(event)

    return progress


def _print_sr_epoch(event) -> None:
    r = event.info
    if "train_l1" in r:  # EDSR
        head, loss = "", f"L1 {r['train_l1']:.4f}"
    elif r["phase"] == "pretrain":  # SRGAN's pixel-MSE warm start
        head, loss = "MSE warm start ", f"MSE {r['train_mse']:.5f}"
    else:
        head, loss = "SRGAN ", f"content {r['train_content']:.4f}  adv {r['train_adv']:.3f}  D {r['train_d_loss']:.3f}"
    content = f"  val content {r['val_content']:.4f} (bicubic {r['bicubic_content']:.4f})" if "val_content" in r else ""
    print(
        f"{head}epoch {event.done}/{event.total}  {loss}  val PSNR {r['val_psnr']:.2f} dB (bicubic {r['bicubic_psnr']:.2f})"
        f"  SSIM {r['val_ssim']:.4f}{content}  {r['images_per_s']:.0f} img/s",
        file=sys.stderr,
        flush=True,
    )
