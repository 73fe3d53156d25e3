"""Fine-tuning the shipped model towards FERPlus's reading of FER2013 (issue 27): what calm faces
read as distressed cost on FER2013 PublicTest, one soft_label_weight at a time.

    python bench/ferplus_ft.py [--weights 0.3,0.5] [--distill 0.5] [--ckplus 0.3] [--epochs 2] [--base CKPT] [--seed 0]
    python bench/ferplus_ft.py --table-only | --check        # docs/trust.md's table from the results

For each weight w the recipe ``fer2013_ferplus_ft`` is trained from ``--base`` (the shipped model
unless given) with targets (1 - w) x FER2013's label + w x the face's FERPlus votes, into
``--runs/w<w>`` (``lrfer.train.engine.fit`` with resume: a finished run there is reused and an
unfinished one carried on; a run folder trained with other settings is refused). The candidate is its best epoch on PublicTest, as every lrfer recipe
selects. With ``--distill W`` a candidate at weight W is also trained with the base as an online
teacher (``teacher``: the frozen base sees each augmented face before it is degraded, and the
student matches its softened answer, KL at temperature 4 with weight ``--distill-weight`` beside
the blended targets): the fine-tuning may then take more of the votes while the base holds what it
knew, small faces above all. With ``--ckplus W`` a candidate at weight W also trains on CK+48's
posed faces (``extra_train``, each face ``--ckplus-repeat`` times an epoch), from half its subjects
only: the other half (``lrfer.data.splits.held_out_subjects``, fixed) is never trained on. The base
and each candidate are then scored on:

- FER2013 PublicTest at 8 ... 48 px (the sweep of ``lrfer sweep``), the split models are selected on;
- the calm in-the-wild set (``wild_calm64.npz``, happy and neutral faces; EVALUATION ONLY: nothing
  is trained or chosen on it) at 64 px as stored and at 16 px: neutral and happy recall and the
  share of each read as negative (sad, angry, fear or disgust);
- CK+ at 48 and 16 px, every answer the top class over all seven outputs (bench/robustness.py's
  rule: CK+48 has no neutral face, so a neutral answer is wrong): all of CK+, and the held-out half
  of its subjects alone, the one CK+ score that a candidate trained on the other half can have.

Writes bench/results/ferplus_ft.json, ``ferplus_ft.png`` beside it (PublicTest accuracy at 48 px
against calm neutral recall) and the ``trust-ferplus-ft`` table of docs/trust.md. On 2 CPU threads
an epoch takes about 6 minutes and the scoring about 3 minutes a model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from _common import DATA, DOCS, RESULTS, ROOT, add_data_arg, add_table_args, add_threads_arg, load_result, pct, provenance, save_result, write_blocks
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects
from lrfer.errors import LrferError
from lrfer.evaluate.alerting import calm_summary
from lrfer.evaluate.metrics import classification_report
from lrfer.evaluate.sweep import classifier_sweep
from lrfer.models.checkpoint import load_checkpoint
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier
from lrfer.train.config import TrainConfig, load_config
from lrfer.train.engine import fit

OUT = RESULTS / "ferplus_ft.json"
RECIPE = "fer2013_ferplus_ft"
SWEEP = (8, 12, 16, 24, 32, 48)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def candidate_name(w: float, kd: float, ck: int = 0) -> str:
    return f"w{w:g}" + (f"_kd{kd:g}" if kd else "") + (f"_ck{ck}" if ck else "")


def config_name(config: dict[str, Any]) -> str:
    """The candidate name of the run a stored training config describes (the shipped model's: its entry here)."""
    kd = float(config.get("distill_weight", 0.0)) if config.get("teacher") else 0.0
    ck = int(config.get("extra_train_repeat", 1)) if config.get("extra_train") else 0
    return candidate_name(float(config.get("soft_label_weight", 0.0)), kd, ck)


def train(w: float, args: argparse.Namespace, fer, kd: float = 0.0, ck: int = 0) -> dict[str, Any]:
    """One candidate: the recipe at weight ``w`` from the base (distilled from it with weight ``kd``
    when above 0; with CK+'s training subjects mixed in, each face ``ck`` times, when above 0),
    trained (or reused) in its run folder."""
    teach = {"teacher": str(args.base), "distill_weight": kd} if kd else {}
    if ck:
        teach.update(extra_train=str(Path(args.data).parent / "ckplus48.npz"), extra_train_repeat=ck)
    cfg = load_config(RECIPE, soft_label_weight=w, init_weights=str(args.base), epochs=args.epochs, seed=args.seed, device="cpu", **teach).validate()
    out = Path(args.runs) / candidate_name(w, kd, ck)
    stored = out / "config.json"
    # settings added since a run was made take their defaults, which is what that run trained with
    if stored.exists() and TrainConfig.from_dict(json.loads(stored.read_text())).to_dict() != cfg.to_dict():
        raise LrferError(f"{out} holds a run with other settings", "remove it, or give another --runs folder")
    t0 = time.perf_counter()
    before = len((out / "metrics.jsonl").read_text().splitlines()) if (out / "metrics.jsonl").exists() else 0
    res = fit(cfg, fer.select_split(cfg.train_split), fer.select_split(cfg.val_split), out, resume=(out / "last.safetensors").exists())
    return {"soft_label_weight": w, "distill_weight": kd, "ckplus_repeat": ck, "run": str(out), "checkpoint": str(res.best_path), "best_epoch": res.best_epoch,
            "epochs": len(res.history), "train_seconds": round(sum(h.get("epoch_seconds", 0) for h in res.history), 1),
            "seconds_this_call": round(time.perf_counter() - t0, 1), "trained_this_call": len(res.history) > before,
            "history": res.history, "config": cfg.to_dict()}  # fmt: skip


def top_class(clf: FaceClassifier, faces, size: int, native: int) -> np.ndarray:
    """The index of each face's top class, the faces degraded to ``size`` px (as stored at ``native``)."""
    return clf.predict_proba(faces.images, degrade_to=None if size == native else size).argmax(1).numpy()


def scored_earlier(doc: Optional[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The scores of the earlier results file by checkpoint sha256, for the models that have every
    score this version takes: a checkpoint scored before is not scored again (3 minutes a model)."""
    wanted = {"publictest", "calm", "ckplus", "ckplus_heldout"}
    return {m["sha256"]: m["scores"] for m in (doc or {}).get("models", {}).values() if m.get("sha256") and wanted <= set(m.get("scores", {}))}


def score(path: Path, sets: dict[str, Any], earlier: Optional[dict[str, dict[str, Any]]] = None) -> dict[str, Any]:
    """The base or a candidate on PublicTest (sweep), the calm set and CK+ (taken from ``earlier``,
    by the checkpoint's sha256, where it was scored before)."""
    digest = sha256(path)
    if digest in (earlier or {}):
        return earlier[digest]
    clf = FaceClassifier.load(path, "cpu")
    fer = clf.prepare(sets["fer"])
    out: dict[str, Any] = {"publictest": [{k: r[k] for k in ("size", "accuracy", "macro_f1")} for r in classifier_sweep(clf, fer, SWEEP)]}
    calm = clf.prepare(sets["calm"])
    truth = np.array(calm.classes)[calm.labels.numpy()]
    out["calm"] = [{"size": s, **calm_summary(truth, np.array(clf.classes)[top_class(clf, calm, s, 64)])} for s in (64, 16)]
    for key in ("ckplus", "ckplus_heldout"):
        ck = clf.prepare(sets[key])  # contempt, which the model does not know, is left out
        out[key] = []
        for s in (48, 16):
            rep = classification_report(ck.labels.numpy(), top_class(clf, ck, s, 48), clf.classes)
            out[key].append({"size": s, "n": rep["n"], "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"]})
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    prov = provenance("bench/ferplus_ft.py", args.seed, base=str(Path(args.base).resolve().relative_to(ROOT)) if Path(args.base).resolve().is_relative_to(ROOT) else str(args.base),
                      base_sha256=sha256(args.base), command="python " + " ".join(["bench/ferplus_ft.py", *sys.argv[1:]]))  # fmt: skip
    data_dir = Path(args.data).parent
    fer = load_dataset(args.data)
    ckplus = load_dataset(data_dir / "ckplus48.npz")
    sets = {"fer": fer.select_split("PublicTest"), "calm": load_dataset(data_dir / "wild_calm64.npz"), "ckplus": ckplus,
            "ckplus_heldout": held_out_subjects(ckplus, 2)[1]}  # fmt: skip
    candidates = []
    todo = [(w, 0.0, 0) for w in args.weights] + [(w, args.distill_weight, 0) for w in args.distill]
    todo += [(w, 0.0, r) for w in args.ckplus for r in args.ckplus_repeat]
    for w, kd, ck in todo:
        cand = train(w, args, fer, kd, ck)
        print(f"{candidate_name(w, kd, ck)}: best epoch {cand['best_epoch']} of {cand['epochs']}", flush=True)
        candidates.append(cand)
    base_info = load_checkpoint(args.base).info  # kept here: the card of a model fine-tuned from it describes both stages
    earlier = scored_earlier(load_result(args.results))
    models = {"base": {"checkpoint": prov["base"], "sha256": prov["base_sha256"], "best_epoch": base_info.get("epoch"),
                       "config": base_info.get("config"), "scores": score(Path(args.base), sets, earlier)}}  # fmt: skip
    for cand in candidates:
        name = candidate_name(cand["soft_label_weight"], cand["distill_weight"], cand["ckplus_repeat"])
        models[name] = {**cand, "sha256": sha256(cand["checkpoint"]), "scores": score(Path(cand["checkpoint"]), sets, earlier)}
        print(f"scored {name}", flush=True)
    return {"benchmark": "ferplus_ft", "recipe": RECIPE, "provenance": prov, "protocol": __doc__.split("\n\n", 2)[2].strip(), "models": models}


def training_records(doc: dict[str, Any], earlier: Optional[dict[str, Any]]) -> dict[str, Any]:
    """Each candidate's ``trained_by``: this run's provenance when this run trained it, else that of
    the run that did, kept in the earlier results file (a reused run folder was trained there).
    A file written before the flag existed counts a candidate as reused when this run spent under a
    minute on it (an epoch takes six)."""
    for name, m in doc["models"].items():
        if name == "base":
            continue
        trained = m.get("trained_this_call", m.get("seconds_this_call", 0) >= 60)
        old = (earlier or {}).get("models", {}).get(name, {})
        m["trained_by"] = doc["provenance"] if trained else old.get("trained_by", (earlier or {}).get("provenance", doc["provenance"]))
    return doc


def _at(rows: list[dict], size: int) -> dict:
    return next(r for r in rows if r["size"] == size)


def table(doc: dict) -> list[str]:
    head = ("| model | epochs | PublicTest 48 px | 32 px | 24 px | 16 px | 12 px | 8 px | calm neutral recall (64 / 16 px) "
            "| calm neutral read negative | calm happy recall | CK+ 48 / 16 px | CK+ held-out subjects 48 / 16 px |")  # fmt: skip
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = doc["models"]["base"]["scores"]["publictest"]
    shipped = config_name(load_checkpoint(DEFAULT_CHECKPOINT).info.get("config", {}))
    for name, m in doc["models"].items():
        s = m["scores"]
        fer = []
        for size in (48, 32, 24, 16, 12, 8):
            acc = _at(s["publictest"], size)["accuracy"]
            delta = "" if name == "base" else f" ({100 * (acc - _at(base, size)['accuracy']):+.1f})"
            fer.append(pct(acc) + delta)
        c64, c16 = _at(s["calm"], 64), _at(s["calm"], 16)
        ck_rep = m.get("ckplus_repeat", 0)
        ck = "trained on half" if ck_rep else " / ".join(pct(_at(s["ckplus"], z)["accuracy"]) for z in (48, 16))
        held = " / ".join(pct(_at(s["ckplus_heldout"], z)["accuracy"]) for z in (48, 16)) if "ckplus_heldout" in s else "-"
        kd = m.get("distill_weight", 0.0)
        label = ("the base (`{}`)".format(doc["provenance"]["base"]) if name == "base" else
                 f"w = {m['soft_label_weight']:g}" + (f", distilled from the base at weight {kd:g}" if kd else "")
                 + (f", CK+ training subjects mixed in (each face {ck_rep}x an epoch)" if ck_rep else "") + f" (best epoch {m['best_epoch']})")  # fmt: skip
        if name == shipped and m["config"]["recipe"] == RECIPE:
            label += ": **the shipped model**"
        epochs = "" if name == "base" else str(m["epochs"])
        lines.append(f"| {label} | {epochs} | " + " | ".join(fer) + f" | {pct(c64['neutral_recall'])} / {pct(c16['neutral_recall'])} "
                     f"| {pct(c64['neutral_read_negative'])} | {pct(c64['happy_recall'])} | {ck} | {held} |")  # fmt: skip
    p = doc["provenance"]
    note = (f"Accuracy in %; in brackets the change against the base, points. Source: `bench/ferplus_ft.py` -> `bench/results/ferplus_ft.json`, "
            f"figure `ferplus_ft.png`; {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`, seed {p['seed']}; base sha256 `{p['base_sha256'][:12]}`.")  # fmt: skip
    return ["\n".join(lines), note]


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, m in doc["models"].items():
        s = m["scores"]
        for size, marker in ((48, "o"), (16, "s")):
            x = 100 * _at(s["calm"], 64 if size == 48 else 16)["neutral_recall"]
            y = 100 * _at(s["publictest"], size)["accuracy"]
            ax.scatter(x, y, marker=marker, color="k" if name == "base" else None)
            ax.annotate(f"{name} {size}px", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("calm in-the-wild neutral faces read as neutral (%)")
    ax.set_ylabel("FER2013 PublicTest accuracy (%)")
    ax.set_title("Blending FERPlus votes into the targets: the trade")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arg(ap, DATA)
    add_threads_arg(ap)
    ap.add_argument("--weights", default="0.3,0.5", help="soft_label_weight values, comma-separated")
    ap.add_argument("--distill", default="", help="soft_label_weight values also trained with the base as an online teacher, comma-separated")
    ap.add_argument("--distill-weight", type=float, default=1.0, help="the teacher's weight (distill_weight) for the --distill candidates")
    ap.add_argument("--ckplus", default="", help="soft_label_weight values also trained with CK+48's training subjects mixed in, comma-separated")
    ap.add_argument("--ckplus-repeat", default="4", help="times each CK+ face is seen an epoch, for the --ckplus candidates; comma-separated, a candidate each")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base", type=Path, default=DEFAULT_CHECKPOINT, help="the checkpoint fine-tuned from (default: the shipped model)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "ferplus_ft", help="run folders, one per weight")
    ap.add_argument("--results", default=OUT.name, help="results file name in bench/results (another seed's: docs/trust.md's table is left alone)")
    add_table_args(ap)
    args = ap.parse_args(argv)
    try:
        args.weights = [float(w) for w in args.weights.split(",") if w.strip()]
        args.distill = [float(w) for w in args.distill.split(",") if w.strip()]
        args.ckplus = [float(w) for w in args.ckplus.split(",") if w.strip()]
        args.ckplus_repeat = [int(r) for r in args.ckplus_repeat.split(",") if r.strip()]
    except ValueError:
        ap.error(f"--weights {args.weights!r} / --distill {args.distill!r} / --ckplus {args.ckplus!r}: give numbers between 0 and 1, e.g. 0.3,0.5")
    if not (args.weights or args.distill or args.ckplus) or any(not 0 < w <= 1 for w in args.weights + args.distill + args.ckplus):
        ap.error("--weights / --distill / --ckplus: each weight must be in (0, 1]")
    if args.ckplus and (not args.ckplus_repeat or min(args.ckplus_repeat) < 1):
        ap.error("--ckplus-repeat must be 1 or more")
    if args.distill and not args.distill_weight > 0:
        ap.error("--distill-weight must be above 0")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not (args.table_only or args.check):
        try:
            doc = run(args)
        except LrferError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        out = RESULTS / args.results
        doc = training_records(doc, load_result(args.results))
        save_result(out, doc, plot)
        if out != OUT:  # a second seed's file: docs/trust.md shows the main one
            return 0
    doc = load_result(OUT.name)
    if doc is None:
        print(f"error: {OUT.relative_to(ROOT)} is missing: run python bench/ferplus_ft.py first", file=sys.stderr)
        return 2
    write_blocks(DOCS / "trust.md", {"trust-ferplus-ft": table(doc)}, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
