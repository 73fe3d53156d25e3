"""What the command groups share: the progress display, ``KEY=VALUE`` options, the data and model
options, loading the data and a classifier, and printing a table."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional

from ..errors import LrferError

SPLIT_HELP = "the dataset's own split name (FER2013: Training, PublicTest, PrivateTest)"


# ---------------------------------------------------------------------------- arguments
class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr (what is wrong, where the help is) and exit 2,
    like every other bad input; its subcommand parsers are of this class too."""

    def error(self, message: str):
        print(f"lrfer: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _number(kind, text: str, ok, need: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {'an integer' if kind is int else 'a number'}") from None
    if (isinstance(value, float) and not math.isfinite(value)) or not ok(value):
        raise argparse.ArgumentTypeError(f"{text} is out of range: use {need}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 1, "1 or more")


def non_negative_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "0 or more")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: v > 0, "a number above 0")


def non_negative_float(text: str) -> float:
    return _number(float, text, lambda v: v >= 0, "0 or more")


def probability(text: str) -> float:
    return _number(float, text, lambda v: 0 <= v <= 1, "a number from 0 to 1")


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
        if event.info:
            bar.set_postfix(event.info, refresh=False)
        if event.done >= event.total:
            bar.close()
            del self.bars[event.task]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


# ---------------------------------------------------------------------------- options
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


def add_data_options(sp, required: bool = True) -> None:
    """The dataset a command reads: ``--data`` and how to read it (what :func:`load_data` takes)."""
    sp.add_argument("--data", required=required, help="dataset path (npz, fer2013.csv, fer2013new.csv, or a folder)")
    sp.add_argument("--format", help="reader name, when the format cannot be detected from the path")
    sp.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="reader option, e.g. labels=ferplus")
    sp.add_argument("--no-progress", action="store_true")


def add_model_options(sp) -> None:
    """The classifier a command runs: the checkpoint and its reading, where, and with which test-time augmentation."""
    sp.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the shipped model)")
    sp.add_argument("--reading", metavar="NAME", help="answer with one of the model's stored readings instead of its own head: the shipped model's half and crowd read calm faces as neutral more often (`lrfer readings` lists them; docs/trust.md)")
    sp.add_argument("--device", default="auto", help="auto, cpu, cuda")
    sp.add_argument("--tta", default="none", choices=["none", "flip", "tencrop"], help="test-time augmentation")


def parse_sizes(text: str) -> list[int]:
    """``--sizes``: comma-separated positive pixel sizes."""
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise LrferError(f"--sizes '{text}' is not a comma-separated list of pixel sizes", "write e.g. --sizes 8,12,16,24,32,48") from None
    if not sizes:
        raise LrferError("--sizes is empty", "write e.g. --sizes 8,12,16,24,32,48")
    if min(sizes) <= 0:  # here, before minutes of data loading, as well as in the library
        raise LrferError(f"--sizes must be positive pixel sizes, got {sizes}", "write e.g. --sizes 8,12,16,24,32,48")
    return sizes


# ---------------------------------------------------------------------------- data and classifier
def load_data(args, progress):
    """The dataset named by the data options (:func:`add_data_options`)."""
    from ..data.readers import load_dataset

    return load_dataset(args.data, format=args.format, progress=progress, **parse_key_values(args.option))


def load_classifier(args):
    """The classifier named by the model options (:func:`add_model_options`)."""
    from ..predict.classifier import FaceClassifier

    return FaceClassifier.load(args.checkpoint, device=args.device, reading=args.reading)


def load_test_faces(args, model, bars, validated=None):
    """The asked-for split of the data, prepared for ``model``; by default the split that
    ``validated`` (the classifier, or an ensemble's first member) was validated on."""
    faces = load_data(args, bars)
    split = args.split or _default_split(faces, validated or model)
    return _prepared(model, _unseen(validated or model, faces.select_split(split), bars), bars), split


def _unseen(classifier, faces, bars):
    """``faces`` without the subjects ``classifier`` trained on when it mixed part of this very set
    into its training (``extra_train``: the shipped model and CK+48), with a note on stderr;
    otherwise ``faces`` as they are."""
    from ..data.splits import held_out_subjects, mixed_into

    config = getattr(classifier, "checkpoint", None) and classifier.checkpoint.info.get("config") or {}
    if not mixed_into(config, faces):
        return faces
    source = faces.meta["source"]["path"]
    folds = int(config.get("extra_train_holdout", 2))
    if not folds:
        raise LrferError(f"the model trained on all of {Path(source).name} (extra_train), so it cannot be scored on it", "evaluate it on another set")
    held = held_out_subjects(faces, folds)[1]
    bars.close()
    print(f"note: the model trained on part of {Path(source).name}'s subjects (extra_train): scoring the {len(held)} faces "
          f"of the {len(set(held.groups))} subjects it never saw", file=sys.stderr)  # fmt: skip
    return held


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


def _prepared(model, faces, bars):
    """``faces`` prepared for ``model`` (a FaceClassifier or a ProbabilityEnsemble); faces of classes
    the model does not have (CK+'s contempt for a FER2013 model) cannot be scored and are left out,
    which the user is told on stderr."""
    ready = model.prepare(faces)
    dropped = ready.meta.get("dropped_classes", []) if ready is not faces else []
    if dropped:
        bars.close()
        print(f"note: {len(faces) - len(ready)} faces of {', '.join(dropped)} left out: "
              f"the model's classes are {', '.join(model.classes)}", file=sys.stderr)  # fmt: skip
    return ready


# ---------------------------------------------------------------------------- output
def print_table(rows: list[dict], columns: list[str]) -> None:
    """``rows`` as aligned columns on stdout; floats with three decimals, None as blank."""
    widths = [max([len(c), *(len(_fmt(r.get(c))) for r in rows)]) for c in columns]  # a list: no rows is no error
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)
