"""The shipped model's readings side by side: what each head (docs/trust.md, "Readings") gives on
FER2013 PublicTest by FER2013's labels and by the crowd's, on calm in-the-wild faces, on CK+'s
held-out subjects, and in the two errors that matter for alerts.

    python bench/readings.py [--checkpoint CKPT]
    python bench/readings.py --table-only | --check        # docs/trust.md's table from the results

A reading is chosen by its vote weight, written down before any of these numbers were seen
(``tools/default_readings.py``: 0.5 and 1); nothing here fits or chooses anything, and the calm set
is only measured. Per reading:

- **PublicTest** at each size (degraded as ``lrfer sweep`` does): accuracy and macro F1 by
  FER2013's labels; accuracy by the crowd's (the FERPlus taggers' top class of the seven, on the
  faces they voted on); and distress caught: the share of negative faces (angry, disgust, fear,
  sad) read as any negative class, negative by FER2013's label and by the crowd's.
- **The calm set** (``wild_calm64.npz``) at 64 and 16 px: neutral and happy recall, and neutral
  faces read as negative (the false alarm).
- **CK+'s held-out subjects** (fold 0 of 2, never trained on) at 48 and 16 px.

Writes bench/results/readings.json, ``readings.png`` beside it, and the ``trust-readings`` table of
docs/trust.md. About 8 minutes on 2 CPU threads.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from _common import DATA, DOCS, RESULTS, add_table_args, add_threads_arg, measured_or_stored, pct, provenance, write_blocks
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects
from lrfer.errors import LrferError
from lrfer.evaluate.alerting import NEGATIVE, calm_summary
from lrfer.evaluate.metrics import classification_report
from lrfer.models.checkpoint import load_checkpoint
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

OUT = RESULTS / "readings.json"
SIZES = (48, 32, 24, 16, 12, 8)


def negative_caught(pred: np.ndarray, truth: np.ndarray, classes: tuple[str, ...]) -> float:
    """The share of faces whose true class index is negative that are read as any negative class."""
    neg = np.isin(np.array(classes), NEGATIVE)
    rows = neg[truth]
    return float(neg[pred[rows]].mean())


def publictest(clf: FaceClassifier, faces, voted: np.ndarray) -> list[dict[str, Any]]:
    """Per size: by FER2013's labels, and by the crowd's on the faces it voted on (``voted``)."""
    label, crowd = faces.labels.numpy(), faces.soft_labels.numpy().argmax(1)
    rows = []
    for s in SIZES:
        pred = clf.predict_proba(faces.images, degrade_to=None if s == 48 else s).argmax(1).numpy()
        rep = classification_report(label, pred, clf.classes)
        rows.append({"size": s, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "crowd_accuracy": float((pred[voted] == crowd[voted]).mean()),
                     "negative_read_negative": negative_caught(pred, label, clf.classes),
                     "crowd_negative_read_negative": negative_caught(pred[voted], crowd[voted], clf.classes)})  # fmt: skip
    return rows


def score(clf: FaceClassifier, sets: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"publictest": publictest(clf, clf.prepare(sets["fer"]), sets["voted"])}
    calm = clf.prepare(sets["calm"])
    truth = np.array(calm.classes)[calm.labels.numpy()]
    out["calm"] = [{"size": s, **calm_summary(truth, np.array(clf.classes)[clf.predict_proba(calm.images, degrade_to=None if s == 64 else s).argmax(1).numpy()])}
                   for s in (64, 16)]  # fmt: skip
    ck = clf.prepare(sets["ckplus_heldout"])  # contempt, which the model does not know, is left out
    out["ckplus_heldout"] = [{"size": s, "n": len(ck), "accuracy": float((clf.predict_proba(ck.images, degrade_to=None if s == 48 else s).argmax(1) == ck.labels).float().mean())}
                             for s in (48, 16)]  # fmt: skip
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    path = Path(args.checkpoint)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    shipped = path.resolve() == DEFAULT_CHECKPOINT.resolve()
    model = f"the shipped model, sha256 `{digest[:12]}`" if shipped else f"`{path.name}`, sha256 `{digest[:12]}`"
    ckpt = load_checkpoint(path)
    if not ckpt.readings:
        raise LrferError(f"{path} holds no readings", "add them with tools/default_readings.py or `lrfer add-reading`")
    data = Path(args.data).parent
    fer = load_dataset(args.data)
    if fer.soft_labels is None:
        raise LrferError(f"{args.data} has no FERPlus votes", "give the fer2013.npz of ../shared/data, which holds them")
    ckplus = load_dataset(data / "ckplus48.npz")
    raw = np.load(args.data)
    # the reader gives a face the crowd did not vote on (for one of the seven) its own label as votes
    voted = (raw["ferplus_votes"][:, :7].sum(1) > 0)[raw["usage"] == "PublicTest"]
    sets = {"fer": fer.select_split("PublicTest"), "voted": voted, "calm": load_dataset(data / "wild_calm64.npz"), "ckplus_heldout": held_out_subjects(ckplus, 2)[1]}
    readings = {"default": {"vote_weight": (ckpt.info.get("config") or {}).get("soft_label_weight"), "about": "the model's own head"}}
    readings.update({n: {"vote_weight": r.get("vote_weight"), "about": "a head fitted on the frozen embeddings", "fitted": r.get("fitted")} for n, r in ckpt.readings.items()})
    for name, rec in readings.items():
        rec["scores"] = score(FaceClassifier.load(path, "cpu", reading=name), sets)
        print(f"{name}: scored", flush=True)
    return {"provenance": provenance("bench/readings.py", model=model, model_sha256=digest), "readings": readings}


def _at(rows: list[dict], size: int, key: str) -> float:
    return next(r[key] for r in rows if r["size"] == size)


def table(doc: dict) -> list[str]:
    head = ["| reading | vote weight | PublicTest, FER2013's labels 48 / 24 / 16 px | the crowd's labels 48 / 24 / 16 px | negative faces read negative, FER2013's / the crowd's, 48 px | same, 16 px | calm neutral recall 64 / 16 px | calm neutral read negative 64 / 16 px | calm happy recall 64 px | CK+ held-out subjects 48 / 16 px |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, r in doc["readings"].items():
        s = r["scores"]
        pt, calm, ck = s["publictest"], s["calm"], s["ckplus_heldout"]
        w = "" if r["vote_weight"] is None else f"{r['vote_weight']:g}"
        three = " / ".join(pct(_at(pt, z, "accuracy")) for z in (48, 24, 16))
        crowd = " / ".join(pct(_at(pt, z, "crowd_accuracy")) for z in (48, 24, 16))
        caught = [f"{pct(_at(pt, z, 'negative_read_negative'))} / {pct(_at(pt, z, 'crowd_negative_read_negative'))}" for z in (48, 16)]
        head.append(f"| `{name}` | {w} | {three} | {crowd} | {caught[0]} | {caught[1]} | {pct(_at(calm, 64, 'neutral_recall'))} / {pct(_at(calm, 16, 'neutral_recall'))} | "
                    f"{pct(_at(calm, 64, 'neutral_read_negative'))} / {pct(_at(calm, 16, 'neutral_read_negative'))} | {pct(_at(calm, 64, 'happy_recall'))} | "
                    f"{pct(_at(ck, 48, 'accuracy'))} / {pct(_at(ck, 16, 'accuracy'))} |")  # fmt: skip
    p = doc["provenance"]
    note = (f"In %. `default` is the model's own head (trained with the votes at weight 0.3). Source: `bench/readings.py` -> `bench/results/readings.json`, "
            f"figure `readings.png`; {p['model']}; {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`.")  # fmt: skip
    return ["\n".join(head), note]


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in doc["readings"].items():
        s = r["scores"]
        for ax, size, calm_size in ((axes[0], 48, 64), (axes[1], 16, 16)):
            x = 100 * _at(s["calm"], calm_size, "neutral_read_negative")
            y = 100 * _at(s["publictest"], size, "crowd_negative_read_negative")
            ax.scatter([x], [y], s=40)
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=9)
    for ax, size in zip(axes, ("full size", "16 px")):
        ax.set_xlabel("calm neutral faces read as negative, % (false alarms)")
        ax.set_ylabel("PublicTest negative faces (crowd) read as negative, %")
        ax.set_title(f"The readings' trade, {size}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA), help="fer2013.npz with FERPlus votes; wild_calm64.npz and ckplus48.npz are read beside it")
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="a checkpoint with readings (default: the shipped model)")
    add_table_args(ap)
    add_threads_arg(ap)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    doc = measured_or_stored(args, OUT, run, "bench/readings.py", plot)
    if doc is None:
        return 2
    write_blocks(DOCS / "trust.md", {"trust-readings": table(doc)}, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
