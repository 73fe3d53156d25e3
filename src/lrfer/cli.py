"""The ``lrfer`` command line: a thin layer over the library.

Each subcommand parses its flags, calls one library function, and prints the result. Every
:class:`~lrfer.errors.LrferError` becomes one line on stderr and exit code 2 (``--debug`` shows the
traceback instead).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

from .errors import LrferError

SPLIT_HELP = "the dataset's own split name (FER2013: Training, PublicTest, PrivateTest)"


# ---------------------------------------------------------------------------- progress bars
class Bars:
    """Turns library progress events into tqdm bars on stderr (one bar per task)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, event) -> None:
        if event.task == "epoch_end":
            self.close()
            info = event.info
            parts = [f"epoch {event.done}/{event.total}", f"loss {info['train_loss']:.3f}", f"train {info['train_acc']:.3f}"]
            if "val_acc" in info:
                parts += [f"val {info['val_acc']:.4f}", f"F1 {info['val_macro_f1']:.4f}"]
            parts.append(f"{info['images_per_s']:.0f} img/s")
            print("  ".join(parts), file=sys.stderr, flush=True)
            return
        if "message" in event.info:
            print(event.info["message"], file=sys.stderr)
            return
        if not self.enabled or event.total is None:
            return
        from tqdm import tqdm

        bar = self.bars.get(event.task)
        if bar is None:
            # disable=None: bars only on a terminal, so logs and pipes get clean lines
            bar = self.bars[event.task] = tqdm(total=event.total, desc=event.task, leave=False, file=sys.stderr, dynamic_ncols=True, disable=None)
        bar.update(event.done - bar.n)
        if event.done >= event.total:
            bar.close()
            del self.bars[event.task]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


# ---------------------------------------------------------------------------- helpers
def _data_options(pairs: list[str]) -> dict[str, Any]:
    """``--option key=value`` pairs for a dataset reader; values parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise LrferError(f"--option '{pair}' is not key=value", "write e.g. --option labels=ferplus")
        k, v = pair.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _load_data(args, progress):
    from .data.readers import load_dataset

    return load_dataset(args.data, format=args.format, progress=progress, **_data_options(args.option))


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise LrferError(f"--sizes '{text}' is not a comma-separated list of pixel sizes", "write e.g. --sizes 8,12,16,24,32,48") from None
    if not sizes:
        raise LrferError("--sizes is empty", "write e.g. --sizes 8,12,16,24,32,48")
    return sizes


def _default_split(faces, classifier) -> str:
    """The split a checkpoint was validated on if the data has it, else the data's last split."""
    trained = classifier.checkpoint.info.get("config", {}).get("val_split")
    splits = faces.splits
    if trained in splits:
        return trained
    for name in ("PublicTest", "test", "Test", "Validation", "val"):
        if name in splits:
            return name
    return splits[-1]


def _print_table(rows: list[dict], columns: list[str]) -> None:
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


# ---------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from .train.config import load_config
    from .train.engine import fit

    bars = Bars(not args.no_progress)
    aug = {"degrade_p": args.degrade_p} if args.degrade_p is not None else None
    cfg = load_config(
        args.recipe,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        train_split=args.train_split,
        val_split=args.val_split,
        limit_train=args.limit_train,
        init_weights=args.init_weights,
        compile=True if args.compile else None,
        augment=aug,
    )
    cfg.validate()  # fail on a bad name before spending time on the data
    faces = _load_data(args, bars)
    train_set = faces.select_split(cfg.train_split)
    val_set = faces.select_split(cfg.val_split) if cfg.val_split and cfg.val_split != "none" else None
    out = Path(args.out or Path("runs") / (cfg.recipe or cfg.model))
    info = {"data": str(args.data), "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    result = fit(cfg, train_set, val_set, out, resume=args.resume, progress=bars, info=info)
    bars.close()
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"best validation accuracy {result.best_metric:.4f} at epoch {result.best_epoch}")
        print(f"checkpoint: {result.best_path}")
    return 0


def cmd_train_sr(args) -> int:
    from .data.splits import TEST_SPLIT_NAMES, TRAIN_SPLIT_NAMES
    from .train.sr import SRConfig, train_sr

    bars = Bars(not args.no_progress)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "limit_train": args.limit_train, "seed": args.seed, "device": args.device}
    cfg = SRConfig(config=args.config, scale=args.scale, init_from=args.init_from or "", **{k: v for k, v in overrides.items() if v is not None})
    cfg.validate()  # fail on bad settings before reading the data
    faces = _load_data(args, bars)
    splits = faces.splits
    train_split = args.train_split or next((s for s in TRAIN_SPLIT_NAMES if s in splits), None)
    val_split = args.val_split or next((s for s in TEST_SPLIT_NAMES if s in splits), "none")
    train_set = faces.select_split(train_split) if train_split else faces
    val_set = faces.select_split(val_split) if val_split != "none" else None

    def progress(event):
        if event.task != "sr_epoch_end":
            return bars(event)
        bars.close()
        r = event.info
        print(
            f"epoch {event.done}/{event.total}  L1 {r['train_l1']:.4f}  val PSNR {r['val_psnr']:.2f} dB (bicubic {r['bicubic_psnr']:.2f})"
            f"  SSIM {r['val_ssim']:.4f}  {r['images_per_s']:.0f} img/s",
            file=sys.stderr,
            flush=True,
        )

    out = Path(args.out or Path("runs") / f"{cfg.model}_x{cfg.scale}")
    info = {"data": str(args.data), "train_split": train_split or "all", "val_split": val_split, "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    result = train_sr(cfg, train_set, val_set, out, progress=progress, info=info)
    bars.close()
    _print_table(
        [{**r, "method": r["method"] or "(cannot)"} for r in result.report["results"]],
        ["scale", "method", "psnr", "bicubic_psnr", "ssim", "bicubic_ssim"],
    )
    print(f"checkpoint: {result.best_path} (epoch {result.best_epoch})")
    print(f"report: {out / 'sr_report.json'}")
    return 0


def _classifier(args):
    from .infer.classifier import FaceClassifier

    return FaceClassifier.load(args.checkpoint, device=args.device)


def _test_faces(args, bars):
    """The classifier, and the asked-for split of the data prepared for it."""
    clf = _classifier(args)
    faces = _load_data(args, bars)
    split = args.split or _default_split(faces, clf)
    return clf, clf.prepare(faces.select_split(split)), split


def cmd_evaluate(args) -> int:
    from .evaluate.report import write_report

    bars = Bars(not args.no_progress)
    clf, faces, split = _test_faces(args, bars)
    rep = clf.evaluate(faces, tta=args.tta, measure_latency=not args.no_latency, progress=bars)
    rep.update({"checkpoint": str(clf.checkpoint.path), "data": str(args.data), "split": split})
    paths = write_report(rep, Path(args.out or "runs/evaluate")).values()
    bars.close()
    print(f"{faces.name} {split}: n={len(faces)}  accuracy {rep['accuracy']:.4f}  macro F1 {rep['macro_f1']:.4f}")
    _print_table([{"class": c, **v} for c, v in rep["per_class"].items()], ["class", "precision", "recall", "f1", "support"])
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_sweep(args) -> int:
    from .evaluate.report import write_sweep

    bars = Bars(not args.no_progress)
    sizes = _parse_sizes(args.sizes)
    clf, faces, split = _test_faces(args, bars)
    rows = clf.sweep(faces, sizes, tta=args.tta, progress=bars)
    out = Path(args.out or "runs/sweep")
    table = write_sweep(rows, out, title=f"{clf.name} on {faces.name} {split}")
    bars.close()
    print(table)
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.png'}")
    return 0


def cmd_predict(args) -> int:
    from .infer.faces import predict_files

    clf = _classifier(args)
    rows = predict_files(clf, args.paths, tta=args.tta)
    ok = [r for r in rows if r["status"] == "ok"]
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['file']}: {r['status']}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.csv:
        _write_csv(rows, clf.classes, args.csv)
        print(f"wrote {len(rows)} rows to {args.csv}")
    else:
        _print_table(
            [{**r, **{c: r["probabilities"].get(c) for c in clf.classes}} if r["status"] == "ok" else r for r in rows],
            ["file", "label", "confidence", *clf.classes],
        )
    return 0 if ok else 1


def _write_csv(rows: list[dict], classes: tuple[str, ...], path: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "status", "width", "height", "label", "confidence", *classes])
        for r in rows:
            probs = r.get("probabilities") or {}
            w.writerow([r["file"], r["status"], r.get("width", ""), r.get("height", ""), r.get("label", ""), r.get("confidence", ""), *(probs.get(c, "") for c in classes)])


def cmd_models(args) -> int:
    from .models import create_model, list_models
    from .models.registry import describe

    rows = []
    for name in list_models():
        m = create_model(name)
        kind = "classifier" if name in list_models("classifier") else "super-resolution"
        rows.append({"model": name, "kind": kind, "params": f"{sum(p.numel() for p in m.parameters()) / 1e6:.2f}M", "about": describe(name)})
    _print_table(rows, ["model", "kind", "params", "about"])
    return 0


def cmd_recipes(args) -> int:
    from .train.config import list_recipes, read_recipe

    rows = []
    for name in list_recipes():
        r = read_recipe(name)
        paper = r.get("paper", {})
        rows.append({"recipe": name, "model": r.get("model", ""), "paper": paper.get("title", ""), "reported": paper.get("reported", "")})
    _print_table(rows, ["recipe", "model", "paper", "reported"])
    return 0


def cmd_data_info(args) -> int:
    faces = _load_data(args, Bars(not args.no_progress))
    print(json.dumps(faces.describe(), indent=2))
    return 0


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lrfer", description="Facial expression recognition for low-resolution faces.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def data_args(sp, required=True):
        sp.add_argument("--data", required=required, help="dataset path (npz, fer2013.csv, fer2013new.csv, or a folder)")
        sp.add_argument("--format", help="reader name, when the format cannot be detected from the path")
        sp.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="reader option, e.g. labels=ferplus")
        sp.add_argument("--no-progress", action="store_true")

    def model_args(sp):
        sp.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the shipped model)")
        sp.add_argument("--device", default="auto", help="auto, cpu, cuda")
        sp.add_argument("--tta", default="none", choices=["none", "flip", "tencrop"], help="test-time augmentation")

    sp = sub.add_parser("train", help="train a model")
    sp.add_argument("--model", help="registered model name (`lrfer models`)")
    sp.add_argument("--recipe", help="shipped recipe name (`lrfer recipes`) or a .toml file")
    data_args(sp)
    sp.add_argument("--epochs", type=int)
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--lr", type=float)
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device", help="auto, cpu, cuda")
    sp.add_argument("--train-split")
    sp.add_argument("--val-split", help="split to select on; 'none' to skip validation")
    sp.add_argument("--degrade-p", type=float, help="probability of multi-resolution degradation per sample")
    sp.add_argument("--limit-train", type=int, help="use only the first N training rows (quick runs)")
    sp.add_argument("--compile", action="store_true", help="torch.compile the model")
    sp.add_argument("--init-weights", metavar="FILE", help="pretrained weights (.pth state dict or .safetensors) to start from")
    sp.add_argument("--out", help="output folder (default runs/<recipe or model>)")
    sp.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("train-sr", help="train an EDSR super-resolution model on faces (Qin 2021 front end)")
    data_args(sp)
    sp.add_argument("--scale", type=int, default=2, choices=[2, 3, 4], help="up-sampling factor")
    sp.add_argument("--config", default="light", choices=["light", "paper"], help="light: 4 blocks x 32 (CPU); paper: 16 x 128 (Qin 2021)")
    sp.add_argument("--epochs", type=int)
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--lr", type=float)
    sp.add_argument("--init-from", metavar="X2_CKPT", help="start an x4 model from an x2 checkpoint")
    sp.add_argument("--train-split", help="default: the data's training split, else all rows")
    sp.add_argument("--val-split", help="held-out split for PSNR/SSIM; 'none' holds out the last 10%% of subjects or rows")
    sp.add_argument("--limit-train", type=int, help="use only the first N training faces (quick runs)")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device", help="auto, cpu, cuda")
    sp.add_argument("--out", help="output folder (default runs/<model>_x<scale>)")
    sp.set_defaults(func=cmd_train_sr)

    sp = sub.add_parser("evaluate", help="accuracy, per-class F1, confusion matrix")
    model_args(sp)
    data_args(sp)
    sp.add_argument("--split", help=SPLIT_HELP)
    sp.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    sp.add_argument("--out", help="output folder (default runs/evaluate)")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("sweep", help="accuracy against face size")
    model_args(sp)
    data_args(sp)
    sp.add_argument("--split", help=SPLIT_HELP)
    sp.add_argument("--sizes", default="8,12,16,24,32,48")
    sp.add_argument("--out", help="output folder (default runs/sweep)")
    sp.set_defaults(func=cmd_sweep)

    sp = sub.add_parser("predict", help="expressions of face crops (image files or folders)")
    sp.add_argument("paths", nargs="+")
    model_args(sp)
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print JSON")
    g.add_argument("--csv", metavar="FILE", help="write CSV")
    sp.set_defaults(func=cmd_predict)

    sub.add_parser("models", help="list registered models").set_defaults(func=cmd_models)
    sub.add_parser("recipes", help="list shipped training recipes").set_defaults(func=cmd_recipes)

    sp = sub.add_parser("data", help="dataset tools")
    dsub = sp.add_subparsers(dest="data_command", required=True)
    ip = dsub.add_parser("info", help="classes, splits and counts of a dataset")
    ip.add_argument("data")
    ip.add_argument("--format")
    ip.add_argument("--option", action="append", default=[])
    ip.add_argument("--no-progress", action="store_true")
    ip.set_defaults(func=cmd_data_info)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LrferError as err:
        if args.debug:
            raise
        print(f"lrfer: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lrfer: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
