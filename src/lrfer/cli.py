"""The ``lrfer`` command line: a thin layer over the library.

Each subcommand parses its flags, calls one library function, and prints the result. Every
:class:`~lrfer.errors.LrferError` becomes one line on stderr and exit code 2 (``--debug`` shows the
traceback instead).
"""

from __future__ import annotations

import argparse
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
def parse_key_values(
    pairs: list[str], flag: str = "--option", example: str = "labels=ferplus", own_flags: Optional[dict[str, str]] = None
) -> dict[str, Any]:
    """``KEY=VALUE`` command-line pairs (``--option``, a benchmark's ``--set``); values parsed as
    JSON when they can be (``3``, ``[]``, ``true``), else kept as strings. ``own_flags`` maps the
    keys the command sets itself to what to do instead (``{"epochs": "use --epochs"}``): such a key
    is refused, since two places would set it."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise LrferError(f"{flag} '{pair}' is not key=value", f"write e.g. {flag} {example}")
        k, v = pair.split("=", 1)
        if own_flags and k in own_flags:
            raise LrferError(f"{flag} {pair}: this command sets '{k}' itself", own_flags[k])
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _load_data(args, progress):
    from .data.readers import load_dataset

    return load_dataset(args.data, format=args.format, progress=progress, **parse_key_values(args.option))


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise LrferError(f"--sizes '{text}' is not a comma-separated list of pixel sizes", "write e.g. --sizes 8,12,16,24,32,48") from None
    if not sizes:
        raise LrferError("--sizes is empty", "write e.g. --sizes 8,12,16,24,32,48")
    if min(sizes) <= 0:  # here, before minutes of data loading, as well as in the library
        raise LrferError(f"--sizes must be positive pixel sizes, got {sizes}", "write e.g. --sizes 8,12,16,24,32,48")
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
    from .train.config import load_config, with_front_end
    from .train.engine import fit

    bars = Bars(not args.no_progress)
    aug = {"degrade_p": args.degrade_p} if args.degrade_p is not None else None
    cfg = load_config(
        args.recipe,
        model=args.model,
        epochs=args.epochs,
        time_budget_minutes=args.time_budget,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        train_split=args.train_split,
        val_split=args.val_split,
        limit_train=args.limit_train,
        init_weights=args.init_weights,
        teacher=args.teacher,
        compile=True if args.compile else None,
        augment=aug,
    )
    if args.front not in (None, "stn"):
        raise LrferError(f"--front {args.front}", "the front end that needs no file is 'stn'; give a trained SR model with --front-sr CKPT")
    cfg = with_front_end(cfg, stn=args.front == "stn", sr=args.front_sr, sr_trainable=args.sr_trainable)
    cfg.validate()  # fail on a bad name before spending time on the data
    out = Path(args.out or Path("runs") / (cfg.recipe or cfg.model))
    if not args.folds:
        _check_run_dir(out, args)
    faces = _load_data(args, bars)
    if args.folds:
        return _train_folds(args, cfg, faces, bars)
    train_set = faces.select_split(cfg.train_split)
    val_set = faces.select_split(cfg.val_split) if cfg.val_split and cfg.val_split != "none" else None
    info = {"data": str(args.data), "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    result = fit(cfg, train_set, val_set, out, resume=args.resume, progress=bars, info=info)
    bars.close()
    if int(os.environ.get("RANK", "0")) == 0:
        if val_set is not None and len(val_set):
            print(f"best validation accuracy {result.best_metric:.4f} at epoch {result.best_epoch}")
        else:  # without validation data the engine picks the epoch of the lowest training loss
            print(f"no validation split: best training loss {-result.best_metric:.4f} at epoch {result.best_epoch}")
        print(f"checkpoint: {result.best_path}")
    return 0


def _check_run_dir(out: Path, args) -> None:
    """A run folder that holds a run is continued (--resume) or replaced (--overwrite), never
    silently overwritten: a forgotten --resume after a kill would throw away the epochs done."""
    from .files import read_jsonl

    if (out / "last.safetensors").exists() and not (args.resume or args.overwrite):
        rows = read_jsonl(out / "metrics.jsonl")
        phase = {"pretrain": "MSE warm start ", "gan": "SRGAN "}.get(rows[-1].get("phase"), "") if rows else ""  # train-sr --gan's two phases
        done = f" ({phase}epoch {rows[-1]['epoch']} done)" if rows else ""
        raise LrferError(f"{out} already holds a training run{done}", "pass --resume to continue it, --overwrite to start afresh there, or another --out")


def _train_folds(args, cfg, faces, bars) -> int:
    from .train.kfold import cross_validate

    out = Path(args.out or Path("runs") / f"{cfg.recipe or cfg.model}_{args.folds}fold")
    info = {"data": str(args.data), "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    s = cross_validate(cfg, faces, out, k=args.folds, fold_seed=args.fold_seed, folds=args.fold, progress=bars, info=info)
    bars.close()
    _print_table([{**r, "accuracy": r["accuracy"]} for r in s["folds"]], ["fold", "n_train", "n_test", "accuracy", "best_epoch_accuracy"])
    print(
        f"{s['folds_done']}/{s['k']} folds: accuracy {s['accuracy_pooled']:.4f} pooled, "
        f"{s['accuracy_mean']:.4f} +- {s['accuracy_std']:.4f} per fold (last epoch; best-epoch mean {s['best_epoch_accuracy_mean_optimistic']:.4f} is optimistic)"
    )
    print(f"wrote {out / 'kfold.json'}")
    return 0


def cmd_train_sr(args) -> int:
    from .data.splits import TEST_SPLIT_NAMES, TRAIN_SPLIT_NAMES
    from .train.sr import SRConfig, train_sr

    bars = Bars(not args.no_progress)
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "limit_train": args.limit_train, "seed": args.seed, "device": args.device}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.gan:  # SRGAN (Liu 2019 model B's SR stage): SRResNet generator + discriminator
        from .train.srgan import SRGANConfig
        from .train.srgan import train_srgan as train

        gan = {"feature_net": args.feature_net, "pretrain_epochs": args.pretrain_epochs}
        cfg = SRGANConfig(config=args.config, scale=args.scale, init_from=args.init_from or "", **overrides, **{k: v for k, v in gan.items() if v is not None})
    else:
        if args.feature_net is not None or args.pretrain_epochs is not None:
            raise LrferError("--feature-net and --pretrain-epochs are SRGAN settings", "add --gan")
        cfg = SRConfig(config=args.config, scale=args.scale, init_from=args.init_from or "", **overrides)
        train = train_sr
    cfg.validate()  # fail on bad settings (and a missing --feature-net file) before reading the data
    out = Path(args.out or Path("runs") / f"{'srgan_' if args.gan else ''}{cfg.model}_x{cfg.scale}")
    _check_run_dir(out, args)
    faces = _load_data(args, bars)
    splits = faces.splits
    train_split = args.train_split or next((s for s in TRAIN_SPLIT_NAMES if s in splits), None)
    val_split = args.val_split or next((s for s in TEST_SPLIT_NAMES if s in splits), "none")
    train_set = faces.select_split(train_split) if train_split else faces
    val_set = faces.select_split(val_split) if val_split != "none" else None

    def progress(event):
        if event.task not in ("sr_epoch_end", "srgan_epoch_end"):
            return bars(event)
        bars.close()
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

    info = {"data": str(args.data), "train_split": train_split or "all", "val_split": val_split, "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    result = train(cfg, train_set, val_set, out, progress=progress, info=info, resume=args.resume)
    bars.close()
    columns = ["scale", "method", "psnr", "bicubic_psnr", "ssim", "bicubic_ssim"]
    _print_table([{**r, "method": r["method"] or "(cannot)"} for r in result.report["results"]], columns)
    if "srresnet_mse" in result.report:  # the generator after the MSE warm start, for comparison
        _print_table([{**r, "method": r["method"] or "(cannot)"} for r in result.report["srresnet_mse"]["results"]], columns)
    print(f"checkpoint: {result.best_path} (epoch {result.best_epoch})")
    print(f"report: {out / 'sr_report.json'}")
    return 0


def _classifier(args):
    from .predict.classifier import FaceClassifier

    return FaceClassifier.load(args.checkpoint, device=args.device)


def _test_faces(args, bars):
    """The classifier, and the asked-for split of the data prepared for it."""
    clf = _classifier(args)
    faces = _load_data(args, bars)
    split = args.split or _default_split(faces, clf)
    return clf, _prepared(clf, faces.select_split(split), bars), split


def _prepared(clf, faces, bars):
    """``faces`` prepared for ``clf`` (a FaceClassifier or a ProbabilityEnsemble); faces of classes
    the model does not have (CK+'s contempt for a FER2013 model) cannot be scored and are left out,
    which the user is told on stderr."""
    prepared = clf.prepare(faces)
    dropped = prepared.meta.get("dropped_classes", []) if prepared is not faces else []
    if dropped:
        bars.close()
        print(f"note: {len(faces) - len(prepared)} faces of {', '.join(dropped)} left out: "
              f"the model's classes are {', '.join(clf.classes)}", file=sys.stderr)  # fmt: skip
    return prepared


def cmd_evaluate(args) -> int:
    from .evaluate.report import evaluate_classifier, write_report

    bars = Bars(not args.no_progress)
    clf, faces, split = _test_faces(args, bars)
    rep = evaluate_classifier(clf, faces, tta=args.tta, measure_latency=not args.no_latency, progress=bars)
    rep.update({"checkpoint": str(clf.checkpoint.path), "data": str(args.data), "split": split})
    paths = write_report(rep, Path(args.out or "runs/evaluate")).values()
    bars.close()
    print(f"{faces.name} {split}: n={len(faces)}  accuracy {rep['accuracy']:.4f}  macro F1 {rep['macro_f1']:.4f}")
    _print_table([{"class": c, **v} for c, v in rep["per_class"].items()], ["class", "precision", "recall", "f1", "support"])
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_sweep(args) -> int:
    from .evaluate.report import write_sweep
    from .evaluate.sweep import classifier_sweep

    bars = Bars(not args.no_progress)
    sizes = _parse_sizes(args.sizes)
    out = Path(args.out or "runs/sweep")
    if args.member:
        rows, faces, split, name = _ensemble_sweep(args, sizes, bars)
    else:
        clf, faces, split = _test_faces(args, bars)
        rows, name = classifier_sweep(clf, faces, sizes, tta=args.tta, progress=bars), clf.name
    table = write_sweep(rows, out, title=f"{name} on {faces.name} {split}")
    bars.close()
    print(table)
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.png'}")
    return 0


def _ensemble_sweep(args, sizes, bars):
    """``lrfer sweep --member A --member B ...``: each member alone and the mean of their
    probabilities, one column each (named by file) in the table, the JSON and the plot."""
    from .evaluate.sweep import ensemble_sweep
    from .predict.ensemble import ProbabilityEnsemble

    if args.checkpoint:
        raise LrferError("--checkpoint and --member both given", "sweep one model with --checkpoint, or an ensemble with two or more --member")
    if len(args.member) < 2:
        raise LrferError("an ensemble needs two or more --member checkpoints", "repeat --member, or sweep one model with --checkpoint")
    ens = ProbabilityEnsemble(args.member, device=args.device)
    faces = _load_data(args, bars)
    split = args.split or _default_split(faces, ens.members[0])
    faces = _prepared(ens, faces.select_split(split), bars)
    swept = ensemble_sweep(ens, faces, sizes, tta=args.tta, progress=bars)
    stems = [Path(m).stem for m in args.member]
    names = stems if len(set(stems)) == len(stems) else [str(m) for m in args.member]  # file names, unless two share one
    rows = {**{n: swept[f"member{i}"] for i, n in enumerate(names)}, "ensemble (mean)": swept["ensemble"]}
    return rows, faces, split, f"ensemble of {len(names)}"


def _recognizer(args, detect: bool = True):
    from .infer.recognizer import Recognizer

    routes = []
    for item in args.route:
        px, _, path = item.partition("=")
        if not px.isdigit() or not path:
            raise LrferError(f"--route {item!r}", "write --route PIXELS=CHECKPOINT, e.g. --route 16=tiny.safetensors")
        routes.append((int(px), path))
    return Recognizer(
        args.checkpoint, None if (args.no_detect or not detect) else args.detector, args.device,
        backend=args.backend, min_score=args.min_score, upscale=args.upscale, margin=args.margin,
        align=args.align, min_face=args.min_face, tta=args.tta, routes=routes,
    )  # fmt: skip


def _upscale(text: str):
    """``--upscale``: a positive factor or ``auto``."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'auto'") from None


def _row_writer(args, classes, fields):
    """A streaming CSV/JSON writer for --csv/--json FILE, or None."""
    from .infer.writers import RowWriter

    if args.csv:
        return RowWriter(args.csv, "csv", classes, fields=fields)
    if args.json:
        return RowWriter(args.json, "jsonl" if args.json.endswith(".jsonl") else "json", classes, fields=fields)
    return None


def cmd_predict(args) -> int:
    from .infer.io import predict_files
    from .infer.recognizer import PHOTO_FIELDS

    rec = _recognizer(args)
    writer = _row_writer(args, rec.classes, PHOTO_FIELDS)
    processed, table, n_rows = set(), [], 0
    try:
        for row in predict_files(rec, args.paths, annotate_dir=args.annotate):
            n_rows += 1
            if row["status"] in ("ok", "no face found"):
                processed.add(row["file"])
            if row["status"] != "ok":
                print(f"{row['file']}: {row['status']}", file=sys.stderr)
            if writer is not None:
                writer.write(row)
            else:
                table.append({**row, **row.get("probabilities", {})})
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        print(f"wrote {n_rows} rows to {args.csv or args.json}")
    else:
        box = [] if args.no_detect else ["face", "x1", "y1", "x2", "y2"]
        _print_table(table, ["file", "status", *box, "size", "label", "confidence", *rec.classes])
    return 0 if processed else 1  # non-zero only when no file could be processed at all


def cmd_video(args, webcam: bool = False) -> int:
    from .infer.annotate import draw_faces
    from .infer.recognizer import VIDEO_FIELDS
    from .infer.video import VideoWriter, open_video, open_webcam
    from .infer.writers import TrackSummary

    rec = _recognizer(args)
    source = open_webcam(int(args.camera) if args.camera.isdigit() else args.camera) if webcam else open_video(args.input)
    writer = _row_writer(args, rec.classes, VIDEO_FIELDS)
    summary = TrackSummary(rec.classes)
    out_video = None
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=source.frame_count, unit="frame", file=sys.stderr, dynamic_ncols=True, disable=None)
    n = 0
    try:
        with source:
            stream = rec.stream(
                source, batch_frames=args.batch_frames, smoothing=args.smoothing, alpha=args.alpha, window=args.window,
                keep_frames=args.out is not None,
            )  # fmt: skip
            for result in stream:
                n += 1
                if args.max_frames and n > args.max_frames:
                    break
                if args.out is not None:
                    if out_video is None:
                        out_video = VideoWriter(args.out, source.fps, source.width, source.height)
                    out_video.write(draw_faces(result.image, result.faces))
                for face in result.faces:
                    summary.update(face.track_id, face.label, result.time)
                    if writer is not None:
                        writer.write({"frame": result.index, "time": round(result.time, 3), "track_id": face.track_id, **face.to_row()})
                if webcam and args.csv is None and args.json is None:
                    faces = "  ".join(f"#{f.track_id} {f.label} {f.confidence:.2f}" for f in result.faces) or "-"
                    print(f"frame {result.index}  t={result.time:.2f}s  {faces}", flush=True)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
        if out_video is not None:
            out_video.close()
    status = getattr(source, "status", "ok")
    if status != "ok":
        print(f"{args.input if not webcam else 'camera'}: {status} (kept the {n} frames before it)", file=sys.stderr)
    if n == 0:
        raise LrferError("no frames could be read", "check the video file or camera")
    rows = summary.rows()
    if args.summary:
        Path(args.summary).write_text(json.dumps(rows, indent=2) + "\n")
    if rows and not webcam:
        _print_table(
            [{**r, **{c: f"{r[f'share_{c}']:.0%}" for c in rec.classes}} for r in rows],
            ["track_id", "first_time", "last_time", "frames", "dominant", *rec.classes],
        )
    print(f"{n} frames, {len(rows)} face tracks" + "".join(f"; wrote {p}" for p in (args.out, args.csv, args.json, args.summary) if p))
    return 0


def cmd_webcam(args) -> int:
    return cmd_video(args, webcam=True)


def cmd_export(args) -> int:
    from .export.onnx import export_onnx, quantize_int8

    path = export_onnx(args.checkpoint, args.onnx)
    print(f"wrote {path}")
    if args.int8:
        calib = _calibration_faces(args)
        qpath = quantize_int8(path, args.int8, calib)
        print(f"wrote {qpath} (int8, calibrated on {len(calib)} faces)")
    return 0


def _calibration_faces(args):
    """Face crops for int8 calibration: the --data training split, at the model's input."""
    import numpy as np
    import torch

    from .predict.classifier import FaceClassifier

    if not args.data:
        raise LrferError("--int8 needs calibration faces", "add --data PATH (e.g. fer2013.csv); 512 training faces are used")
    clf = FaceClassifier.load(args.checkpoint, device="cpu")
    faces = _load_data(args, Bars(not args.no_progress))
    split = args.split or ("Training" if "Training" in set(faces.split) else None)
    faces = clf.prepare(faces.select_split(split) if split else faces)
    idx = np.random.default_rng(0).permutation(len(faces))[:512]
    return faces.images[torch.from_numpy(idx)].numpy()


def cmd_calibrate(args) -> int:
    from .evaluate.calibration import calibrate_checkpoint
    from .predict.classifier import DEFAULT_CHECKPOINT

    target = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    if args.out is None and target.resolve() == DEFAULT_CHECKPOINT.resolve():
        # by path too: `--checkpoint .../assets/default/model.safetensors` is the same file
        raise LrferError("calibrating the shipped model in place would change the installed package", "give --out FILE (and --checkpoint for your own model)")
    bars = Bars(not args.no_progress)
    clf = _classifier(args)
    faces = _load_data(args, bars)
    split = args.split or _default_split(faces, clf)
    rep = calibrate_checkpoint(target, _prepared(clf, faces.select_split(split), bars), split=split, path_out=args.out, device=clf.device, progress=bars)
    bars.close()
    print(f"temperature {rep['temperature']:.3f} fitted on {faces.name} {split} (n={rep['n']})")
    print(f"ECE {rep['ece_before']:.4f} -> {rep['ece_after']:.4f}   NLL {rep['nll_before']:.4f} -> {rep['nll_after']:.4f} (measured on the fitting faces)")
    print(f"wrote {rep['path']}")
    return 0


def cmd_models(args) -> int:
    from .models import create_model, list_models
    from .models._registry import describe

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
    sp.add_argument("--time-budget", type=float, metavar="MIN", help="stop after MIN minutes, the schedule paced by the clock so it ends at the budget (--epochs is then the most it may run)")
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--lr", type=float)
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device", help="auto, cpu, cuda")
    sp.add_argument("--train-split")
    sp.add_argument("--val-split", help="split to select on; 'none' to skip validation")
    sp.add_argument("--degrade-p", type=float, help="probability of multi-resolution degradation per sample")
    sp.add_argument("--limit-train", type=int, help="use only the first N training rows (quick runs)")
    sp.add_argument("--compile", action="store_true", help="torch.compile the model")
    sp.add_argument("--init-weights", metavar="FILE", help="weights to start from: a .pth state dict, a .safetensors file, an lrfer checkpoint, or \"default\" (the shipped model: fine-tuning)")
    sp.add_argument("--teacher", metavar="CKPT", help="distil from this high-resolution teacher checkpoint (e.g. --recipe fer2013_distill; weights: distill_* in the recipe)")
    sp.add_argument("--front", metavar="stn", help="put a spatial transformer in front of the classifier (Qin 2021)")
    sp.add_argument("--front-sr", metavar="SR_CKPT", help="put a trained super-resolution model (`lrfer train-sr`) in front")
    sp.add_argument("--sr-trainable", action="store_true", help="fine-tune the --front-sr model with the classifier (default frozen)")
    sp.add_argument("--out", help="output folder (default runs/<recipe or model>)")
    sp.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    sp.add_argument("--overwrite", action="store_true", help="start afresh in OUT even if it holds a run (its checkpoints are replaced)")
    sp.add_argument("--folds", type=int, metavar="K", help="subject-independent K-fold cross-validation (CK+: 10); finished folds are skipped on rerun")
    sp.add_argument("--fold", type=int, action="append", metavar="N", help="run only fold N (repeatable); default all")
    sp.add_argument("--fold-seed", type=int, default=0, help="seed of the subject-to-fold assignment")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("train-sr", help="train a super-resolution model on faces: EDSR (Qin 2021), or SRGAN with --gan (Liu 2019 model B)")
    data_args(sp)
    sp.add_argument("--scale", type=int, default=2, choices=[2, 3, 4], help="up-sampling factor")
    sp.add_argument("--config", default="light", choices=["light", "paper"], help="light: 4 blocks x 32 (CPU); paper: EDSR 16 x 128 (Qin 2021), with --gan SRResNet 16 x 64 (Ledig 2017)")
    sp.add_argument("--gan", action="store_true", help="train an SRGAN (SRResNet generator + discriminator, content + 1e-3 adversarial loss) instead of an EDSR")
    sp.add_argument("--feature-net", metavar="CKPT_OR_VGG", help="--gan: content-loss features from an lrfer classifier checkpoint (default: the shipped model) or a torchvision VGG-19 state dict")
    sp.add_argument("--pretrain-epochs", type=int, help="--gan: pixel-MSE epochs (SRResNet warm start) before the adversarial ones (default 0)")
    sp.add_argument("--epochs", type=int, help="training epochs (with --gan: adversarial epochs, default 20)")
    sp.add_argument("--batch-size", type=int)
    sp.add_argument("--lr", type=float)
    sp.add_argument("--init-from", metavar="CKPT", help="start an x4 EDSR from an x2 checkpoint; with --gan, the generator from an SR checkpoint of the same config and scale")
    sp.add_argument("--train-split", help="default: the data's training split, else all rows")
    sp.add_argument("--val-split", help="held-out split for PSNR/SSIM; 'none' holds out the last 10%% of subjects or rows")
    sp.add_argument("--limit-train", type=int, help="use only the first N training faces (quick runs)")
    sp.add_argument("--seed", type=int)
    sp.add_argument("--device", help="auto, cpu, cuda")
    sp.add_argument("--out", help="output folder (default runs/<model>_x<scale>; runs/srgan_<model>_x<scale> with --gan)")
    sp.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors (both SRGAN phases)")
    sp.add_argument("--overwrite", action="store_true", help="start afresh in OUT even if it holds a run (its checkpoints are replaced)")
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
    sp.add_argument("--member", action="append", default=[], metavar="CHECKPOINT",
                    help="sweep an ensemble instead (repeat, two or more): each checkpoint alone and the mean of their probabilities")
    sp.add_argument("--out", help="output folder (default runs/sweep)")
    sp.set_defaults(func=cmd_sweep)

    from .infer.crop import DEFAULT_MARGIN
    from .infer.detect import DEFAULT_DETECTOR

    def recognizer_args(sp, upscale):
        model_args(sp)
        sp.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"], help="classifier runtime: auto = onnxruntime on the CPU (exported once, cached), torch on a GPU")
        sp.add_argument("--detector", default=DEFAULT_DETECTOR, help=f"face detector: {DEFAULT_DETECTOR} (default), yuface, mtcnn, haar, mediapipe")
        sp.add_argument("--no-detect", action="store_true", help="the inputs are already face crops")
        sp.add_argument("--min-score", type=float, default=0.5, help="detector confidence threshold")
        sp.add_argument("--upscale", type=_upscale, default=upscale, help=f"enlarge frames before detection to find faces under ~16 px: a factor, or auto (longer side to 1280 px, at most 2x); default {upscale}")
        sp.add_argument("--min-face", type=int, default=0, help="ignore faces smaller than this many pixels")
        sp.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help=f"crop margin around the detected box, as a fraction of its size (default {DEFAULT_MARGIN})")
        sp.add_argument("--align", action="store_true", help="rotate each face so the eyes are level")
        sp.add_argument("--route", action="append", default=[], metavar="PX=CKPT", help="faces under PX pixels go to model CKPT")
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--csv", metavar="FILE", help="write one row per face as CSV")
        g.add_argument("--json", metavar="FILE", help="write one record per face as JSON (.jsonl: JSON lines)")

    def video_args(sp):
        recognizer_args(sp, upscale=1.0)  # every frame: speed first
        sp.add_argument("--out", metavar="VIDEO", help="write the video with boxes and labels drawn (.mp4)")
        sp.add_argument("--summary", metavar="FILE", help="write the per-track summary as JSON")
        sp.add_argument("--smoothing", default="ema", choices=["ema", "window", "none"], help="per-track smoothing of probabilities")
        sp.add_argument("--alpha", type=float, default=0.6, help="EMA weight of the newest frame")
        sp.add_argument("--window", type=int, default=5, help="frames averaged by --smoothing window")
        sp.add_argument("--batch-frames", type=int, default=8, help="frames detected and classified together")
        sp.add_argument("--max-frames", type=int, help="stop after this many frames")
        sp.add_argument("--no-progress", action="store_true")

    sp = sub.add_parser("predict", help="faces and expressions in photos (files or folders)")
    sp.add_argument("paths", nargs="+")
    recognizer_args(sp, upscale="auto")  # photos: finding the small faces first
    sp.add_argument("--annotate", metavar="DIR", help="save copies of the images with boxes and labels drawn")
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("video", help="faces, tracks and expressions in a video file")
    sp.add_argument("input")
    video_args(sp)
    sp.set_defaults(func=cmd_video)

    sp = sub.add_parser("webcam", help="faces and expressions from a camera, printed per frame")
    sp.add_argument("--camera", default="0", help="camera number or device path (default 0: /dev/video0)")
    video_args(sp)
    sp.set_defaults(func=cmd_webcam)

    sp = sub.add_parser("export", help="export a classifier to ONNX (optionally int8)")
    sp.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the shipped model)")
    sp.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file (dynamic batch)")
    sp.add_argument("--int8", metavar="FILE", help="also write an int8-quantized model, calibrated on --data")
    data_args(sp, required=False)
    sp.add_argument("--split", help="split to draw calibration faces from (default Training)")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("calibrate", help="fit a temperature on a validation split and store it in the checkpoint")
    model_args(sp)
    data_args(sp)
    sp.add_argument("--split", help=SPLIT_HELP + " (default: the validation split)")
    sp.add_argument("--out", metavar="FILE", help="calibrated checkpoint (default: overwrite --checkpoint)")
    sp.set_defaults(func=cmd_calibrate)

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
