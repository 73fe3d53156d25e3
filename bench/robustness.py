"""The robustness suite (issue 27): every candidate model beside the peers, on faces that are not FER2013's
as well as on FER2013, scored for what alerts need.

    python bench/robustness.py [--models default,peers] [--checkpoint CKPT ...] [--sizes 48,24,16]
                               [--photo-sizes 48,32,24,17,12] [--datasets fer2013,ferplus,ferplus_majority,ckplus,calm,photos]
                               [--set KEY=PATH ...]
    python bench/robustness_tables.py [--check]        # the tables of docs/trust.md from the results

The models (the shipped default, its readings as ``default:half``/``default:crowd``, each
``--checkpoint``, the five peer Keras models of ``../shared/peers``) are loaded by bench/suite.py, and the face sets are its sets, degraded to each
size as it degrades them (:func:`suite.predict_sizes`); two sets are added:

- ``calm``: ``wild_calm64.npz``, 9,557 in-the-wild web faces at 64 px, happy or neutral (noisy
  labels). EVALUATION ONLY: nothing is fitted or chosen on it. Read at 64 px (as stored) and at each
  size below.
- ``ckplus_photos``: every CK+48 face of the held-out subjects (the ``ckplus`` set's) in a 256 px photo of its own at each face size, read end to
  end by lrfer's detector and crop and then each model (bench/robustness_photos.py says how the
  photos are made and what they favour); a face not found counts as wrong.

- ``--set KEY=PATH`` (repeatable): a labelled set of one's own, in any format lrfer reads (RAF-DB,
  SFEW, an AffectNet-style or any class-per-folder tree, JAFFE, CK+, a ``.npz``): the sets this
  project does not hold, for whoever does. Its faces are made grayscale (every model here reads
  grayscale) and read at their own size and degraded to each size below it, as the calm set is;
  it writes ``KEY.json`` and ``KEY.png``. ``--datasets none --set rafdb=RAF-DB/`` runs it alone.

Unlike bench/suite.py, every answer here is the model's top class over ALL its outputs (what a
deployment acts on); faces of classes the model does not know are left out. Per set, model and
size: accuracy and macro F1, and the errors that matter for alerting
(:mod:`lrfer.evaluate.alerting`): the share of neutral, of happy and of negative faces read as
negative (sad, angry, fear, disgust); on the calm set also neutral and happy recall and what the
neutral faces are read as. Writes ``bench/results/robustness/<set>.json`` (provenance: commit,
machine, date, seed, command) and ``<set>.png`` beside it, then docs/trust.md's tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

import robustness_tables
import suite
from _common import RESULTS, cpu_model, keep_earlier, provenance
from lrfer.data.readers import load_dataset
from lrfer.errors import LrferError
from lrfer.evaluate.alerting import NEGATIVE, calm_summary, negative_read_shares
from lrfer.evaluate.metrics import classification_report
from lrfer.evaluate.plots import plot_sweep
from lrfer.files import atomic_write_text
from robustness_photos import PROTOCOL as PHOTO_PROTOCOL
from robustness_photos import run_photos

OUT = RESULTS / "robustness"
FACE_SETS = ("fer2013", "ferplus", "ferplus_majority", "ckplus")
DATASETS = (*FACE_SETS, "calm", "photos")
DEFAULT_SIZES = (48, 24, 16)
PHOTO_SIZES = (48, 32, 24, 17, 12)
RULE = (
    "Every answer is the model's top class over ALL its outputs (what a deployment acts on; bench/suite.py instead takes the "
    "argmax over the classes the set shares, so its CK+ numbers ignore a neutral answer and these count it wrong). Faces of "
    "classes the model does not know are left out (per-model `n`). Accuracy and macro F1 (mean F1 over the model's classes "
    "that occur in the labels or the answers: on the calm set that counts the five classes it has no face of, read its recalls). "
    f"Alerting errors over ALL faces of a class: the share of neutral, of happy and of negative ({', '.join(NEGATIVE)}) faces "
    "answered as any negative class (lrfer.evaluate.alerting)."
)
CALM_PROTOCOL = (
    "wild_calm64.npz: 9,557 in-the-wild web faces (mostly Labeled Faces in the Wild photos, muxspace/facial_expressions labels), "
    "grayscale 64x64, labelled happy (4,193) or neutral (5,364); labels are noisy (two annotators agreed on about half of a "
    "doubly-labelled subset). A DEVELOPMENT set used for evaluation only: nothing is fitted or chosen on it. Read at 64 px as "
    "stored (resized to each model's input) and degraded to each smaller size; every model knows both classes."
)


def calm_set(args: argparse.Namespace) -> tuple[suite.Pool, suite.EvalSet]:
    path = Path(args.calm) if args.calm else Path(args.data_dir) / "wild_calm64.npz"
    if not path.exists():
        raise LrferError(f"the calm set {path} is not here", "pass --calm PATH (wild_calm64.npz) or leave calm out of --datasets")
    faces = load_dataset(path)
    pool = suite.Pool("calm", faces.images, np.asarray(faces.ids), max(faces.image_size), read_native=True)
    data = {"path": suite._rel(path), "split": "all (evaluation only)"}
    return pool, suite.EvalSet("calm", "Calm in-the-wild faces (happy and neutral, 64 px)", CALM_PROTOCOL, "calm", faces, data)


def own_set(key: str, path: Path) -> tuple[suite.Pool, suite.EvalSet]:
    """A set the user brought (``--set KEY=PATH``), read by lrfer's readers, as a pool and a set."""
    if not path.exists():
        raise LrferError(f"--set {key}: {path} is not here", "give the path of a labelled set lrfer reads (a class-per-folder tree, RAF-DB, JAFFE, a .npz)")
    faces = load_dataset(path)
    if faces.in_chans != 1:
        faces = faces.to_grayscale()
    faces = dataclasses.replace(faces, ids=np.array([f"{key}:{i}" for i in range(len(faces))]))  # the pool's rows, whatever the reader gives
    counts = ", ".join(f"{c} {int(k)}" for c, k in zip(faces.classes, faces.class_counts()) if k)
    protocol = (f"A set of the user's own ({faces.name}, read by lrfer's readers): {len(faces):,} faces of {max(faces.image_size)} px, {counts}; "
                "made grayscale, as every model here reads, and read at its own size and degraded to each smaller one.")  # fmt: skip
    pool = suite.Pool(key, faces.images, np.asarray(faces.ids), max(faces.image_size), read_native=True)
    return pool, suite.EvalSet(key, f"{key} ({path.name})", protocol, key, faces, {"path": suite._rel(path), "split": "all"})


def score(entry: suite.Entry, ev: suite.EvalSet, pool: suite.Pool, probs: dict[int, torch.Tensor]) -> dict[str, Any]:
    """One model on one set at each size, by :data:`RULE`."""
    true = np.array(ev.faces.classes)[ev.faces.labels.numpy()]
    keep = np.isin(true, list(entry.classes))
    if not keep.any():
        raise LrferError(f"{entry.name} knows no class of {ev.title}", "check the model's classes")
    true = true[keep]
    row_of = {str(i): k for k, i in enumerate(pool.ids)}
    rows = torch.as_tensor([row_of[str(i)] for i in np.asarray(ev.faces.ids)[keep]], dtype=torch.long)
    y = np.array([entry.classes.index(c) for c in true])
    sweep = []
    for size, p in sorted(probs.items()):
        pred_idx = p.index_select(0, rows).argmax(1).numpy()
        pred = np.array(entry.classes)[pred_idx]
        rep = classification_report(y, pred_idx, entry.classes)
        row = {"size": size, "n": rep["n"], "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], **negative_read_shares(true, pred)}
        if ev.key == "calm":
            row.update(calm_summary(true, pred))
        sweep.append(row)
    dropped = sorted(set(np.array(ev.faces.classes)[ev.faces.labels.numpy()].tolist()) - set(entry.classes))
    return {"classes": list(entry.classes), "n": int(keep.sum()), "dropped_label_classes": dropped, "sweep": sweep}


def run_face_sets(entries, pools, sets, args, progress) -> dict[str, dict[str, Any]]:
    """``{set key: {model: score}}`` for the face sets (degraded crops, no detector)."""
    results: dict[str, dict[str, Any]] = {ev.key: {} for ev in sets}
    for entry in entries:
        t0 = time.perf_counter()
        for pool in pools.values():
            sizes = sorted({*args.sizes_list, pool.native}) if pool.read_native else args.sizes_list
            probs = suite.predict_sizes(entry, pool, sizes, args, progress)
            for ev in (e for e in sets if e.pool == pool.key):
                res = results[ev.key][entry.name] = score(entry, ev, pool, probs)
                line = "  ".join(f"{r['size']}px {100 * r['accuracy']:.1f}/{100 * r['macro_f1']:.1f}" for r in reversed(res["sweep"]))
                print(f"{entry.name:24s} {ev.key:18s} n={res['n']:5d}  acc/F1 {line}", flush=True)
        print(f"{entry.name}: face sets in {time.perf_counter() - t0:.0f} s", flush=True)
    return results


def write_set(out: Path, key: str, doc: dict[str, Any], keep: bool = False) -> list[Path]:
    """``<key>.json`` and ``<key>.png`` (accuracy, macro F1 and the set's alerting errors against size);
    with ``keep``, the models this run did not score stay from the file it replaces (``--keep-earlier``)."""
    path = out / f"{key}.json"
    if keep:
        doc = keep_earlier(path, doc)
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    sweeps = {name: r["sweep"] for name, r in doc["results"].items()}
    plot_sweep(sweeps, out / f"{key}.png", f"{doc['title']}: against face size", metrics=robustness_tables.plot_metrics(key, sweeps))
    return [path, out / f"{key}.png"]


def run(args: argparse.Namespace, argv: list[str]) -> list[Path]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        print(f"note: {msg}", flush=True)

    wanted = [d.strip() for d in args.datasets.split(",") if d.strip() and d.strip() != "none"]
    unknown = [d for d in wanted if d not in DATASETS]
    if unknown:
        raise LrferError(f"unknown dataset(s) {', '.join(unknown)} in --datasets", "choose from: " + ", ".join(DATASETS))
    face_sets = [d for d in wanted if d in FACE_SETS]
    pools, sets = suite.build_sets(argparse.Namespace(**{**vars(args), "datasets": ",".join(face_sets)}), note) if face_sets else ({}, [])
    if "calm" in wanted:
        pool, ev = calm_set(args)
        pools[pool.key], sets = pool, [*sets, ev]
    for key, path in args.own_sets:
        pool, ev = own_set(key, path)
        pools[pool.key], sets = pool, [*sets, ev]
    if not sets and "photos" not in wanted:
        raise LrferError("no set to score", f"list sets in --datasets ({', '.join(DATASETS)}) or give --set KEY=PATH")
    entries = suite.build_models(args, note)
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/robustness.py", *argv])
    machine = f"{platform.node()}: {cpu_model()}, {torch.get_num_threads()} torch threads, device {args.device}"
    prov = provenance("bench/robustness.py", args.seed, machine=machine, command=command, python=platform.python_version(), torch=torch.__version__)
    models = {e.name: e.info for e in entries}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    results = run_face_sets(entries, pools, sets, args, suite._tqdm_progress()) if sets else {}
    for ev in sets:
        data = {**ev.data, "n": len(ev.faces), "classes": list(ev.faces.classes),
                "class_counts": {c: int(k) for c, k in zip(ev.faces.classes, ev.faces.class_counts())}}  # fmt: skip
        protocol = ev.protocol + ("" if ev.key == "calm" else " " + suite.DEGRADATION)
        doc = {"set": ev.key, "title": ev.title, "protocol": protocol, "rule": RULE, "data": data, "provenance": prov,
               "notes": notes, "models": models, "results": results[ev.key]}  # fmt: skip
        written += write_set(out, ev.key, doc, args.keep_earlier)
    if "photos" in wanted:
        ck = Path(args.ckplus) if args.ckplus else Path(args.data_dir) / "ckplus48.npz"
        t0 = time.perf_counter()
        res, detection = run_photos(entries, ck, args.photo_sizes_list, args)
        print(f"photos in {time.perf_counter() - t0:.0f} s", flush=True)
        doc = {"set": "ckplus_photos", "title": "CK+ faces in whole photos, end to end", "protocol": PHOTO_PROTOCOL, "rule": RULE,
               "data": {"path": suite._rel(ck), "photos_per_size": detection[0]["photos"] if detection else 0},
               "detection": detection, "provenance": prov, "notes": notes, "models": models, "results": res}  # fmt: skip
        written += write_set(out, "ckplus_photos", doc, args.keep_earlier)
    if out.resolve() == OUT.resolve():  # docs/trust.md shows the committed results, never a trial run's
        robustness_tables.main(check=False)
    return written


def parse_own_sets(ap: argparse.ArgumentParser, items: list[str]) -> list[tuple[str, Path]]:
    """``--set KEY=PATH`` values: a key that names a results file and is none of the suite's own."""
    out: list[tuple[str, Path]] = []
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or not path or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", key):
            ap.error(f"--set {item!r}: give KEY=PATH, KEY in lower-case letters, digits, _ or - (e.g. --set rafdb=RAF-DB/)")
        if key in (*DATASETS, "ckplus_photos") or key in dict(out):
            ap.error(f"--set {key}: that name is taken (by the suite's own sets or another --set); choose another")
        out.append((key, Path(path)))
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    suite.add_model_data_args(ap)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="face sizes of the face sets, px (the calm set is also read at 64)")
    ap.add_argument("--photo-sizes", default=",".join(map(str, PHOTO_SIZES)), help="face sizes in the photos, px (at most 48: CK+48's own)")
    ap.add_argument("--calm", help="wild_calm64.npz (default: --data-dir/wild_calm64.npz)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=PATH",
                    help="a labelled set of your own, any format lrfer reads (RAF-DB, SFEW, class folders, JAFFE, .npz); repeatable")
    ap.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime CPU threads")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    args.own_sets = parse_own_sets(ap, args.set)
    args.sizes_list = suite.parse_sizes(ap, args.sizes)
    args.photo_sizes_list = suite.parse_sizes(ap, args.photo_sizes, "--photo-sizes")
    if max(args.photo_sizes_list) > 48:
        ap.error("--photo-sizes cannot exceed 48: CK+48's faces are 48 px, and enlarging them adds nothing a camera would see")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        for p in run(args, argv):
            print(f"wrote {suite._rel(p)}")
    except LrferError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
