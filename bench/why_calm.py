"""Why calm in-the-wild faces are read as distressed, and what a fix costs on FER2013 (issue 27).

    python bench/why_calm.py [--checkpoint CKPT] [--zooms 0.9,1,1.15,1.3,1.45]
    python bench/why_calm.py --table-only | --check        # docs/trust.md's tables from the results

Two measurements, neither of which trains or chooses anything:

- **The labels.** FER2013's single label against the FERPlus crowd's top class (its ten taggers'
  most voted of the same seven classes) on every face both have, Training and PublicTest: how
  often they differ, the commonest pairs, and the faces FER2013 calls negative (angry, disgust,
  fear, sad) that the crowd calls neutral. On those PublicTest faces, what the model answers: every
  one it gives FER2013's label and would give neutral after learning the crowd's reading is a point
  of PublicTest accuracy lost. That is the floor of the trade in docs/trust.md section 8, whatever
  the means.
- **The framing.** The calm set's faces fill more of their 64 px than FER2013's fill their 48 px
  (LFW-style aligned crops). Each calm face, and each PublicTest face beside it, is zoomed by each
  factor (above 1: shrunk by it, area resampling, and its border repeated out to the full size, so
  the face fills less of the crop; below 1: enlarged and cut) and the model reads it: if the
  framing were what makes calm neutral faces look negative to it, some zoom would read far more of
  them as neutral.

Writes bench/results/why_calm.json, ``why_calm.png`` beside it, and the ``trust-why-calm`` tables
of docs/trust.md. About 3 minutes on 2 CPU threads.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from _common import DATA, DOCS, RESULTS, add_table_args, add_threads_arg, measured_or_stored, pct, provenance, write_blocks
from lrfer.data.faceset import FaceSet
from lrfer.data.readers import load_dataset
from lrfer.errors import LrferError
from lrfer.evaluate.alerting import NEGATIVE, calm_summary
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

OUT = RESULTS / "why_calm.json"
ZOOMS = (0.9, 1.0, 1.15, 1.3, 1.45)


def voted(fer: FaceSet, path: str) -> FaceSet:
    """The faces the crowd voted on (for one of FER2013's seven classes): the reader gives a face
    without such a vote its own label as its distribution, which would count as agreement."""
    votes = np.load(path)["ferplus_votes"]
    if len(votes) != len(fer):
        raise LrferError(f"{path}: {len(votes)} vote rows for {len(fer)} faces", "give the fer2013.npz of ../shared/data")
    return fer.subset(np.flatnonzero(votes[:, :7].sum(1) > 0))  # columns 0-6: neutral ... fear; 7 contempt, 8 unknown, 9 NF


def crowd_disagreement(fer: FaceSet, split: str) -> dict[str, Any]:
    """FER2013's label against the crowd's top class on ``split``'s voted faces."""
    faces = fer.select_split(split)
    label, crowd = faces.labels.numpy(), faces.soft_labels.argmax(1).numpy()
    names = np.array(faces.classes)
    differ = label != crowd
    pairs = Counter(zip(names[label[differ]], names[crowd[differ]]))
    to_neutral = np.isin(names[label], NEGATIVE) & (names[crowd] == "neutral")
    return {"split": split, "n": len(faces), "differ": float(differ.mean()), "negative_crowd_neutral": float(to_neutral.mean()),
            "n_negative_crowd_neutral": int(to_neutral.sum()),
            "pairs": [{"fer2013": a, "crowd": b, "n": n, "share_of_differ": n / int(differ.sum())} for (a, b), n in pairs.most_common()]}  # fmt: skip


def price_of_the_crowd(clf: FaceClassifier, fer_voted: FaceSet, everyone: int) -> dict[str, Any]:
    """On PublicTest's faces FER2013 calls negative and the crowd neutral: the model's answers, and
    the points of PublicTest accuracy (over all its ``everyone`` faces) it would lose by answering
    neutral on all of them."""
    faces = clf.prepare(fer_voted.select_split("PublicTest"))
    names = np.array(faces.classes)
    crowd = names[faces.soft_labels.argmax(1).numpy()]
    label = names[faces.labels.numpy()]
    rows = np.isin(label, NEGATIVE) & (crowd == "neutral")
    pred = np.array(clf.classes)[clf.predict_proba(faces.images[torch.from_numpy(rows)]).argmax(1).numpy()]
    return {"n": int(rows.sum()), "n_publictest": everyone, "read_as_label": float(np.mean(pred == label[rows])), "read_neutral": float(np.mean(pred == "neutral")),
            "read_negative": float(np.isin(pred, NEGATIVE).mean()), "points_at_stake": float(100 * np.sum(pred == label[rows]) / everyone)}  # fmt: skip


def zoomed(images: torch.Tensor, factor: float) -> torch.Tensor:
    """uint8 faces ``(N, C, H, W)`` zoomed out by ``factor`` (> 1: the face shrunk, its border
    repeated to the full size) or in (< 1: enlarged, the centre kept), the size unchanged."""
    n, c, h, w = images.shape
    side = int(round(h / factor))
    x = torch.nn.functional.interpolate(images.float(), size=(side, side), mode="area" if side < h else "bilinear", align_corners=None if side < h else False)
    a, b = (h - side) // 2, h - side - (h - side) // 2
    x = torch.nn.functional.pad(x, (a, b, a, b), mode="replicate") if side < h else x[..., -a: side + b, -a: side + b]
    return x.round().clamp(0, 255).to(torch.uint8)


def framing(clf: FaceClassifier, calm: FaceSet, fer: FaceSet, zooms: tuple[float, ...]) -> list[dict[str, Any]]:
    """Calm-set recalls and PublicTest accuracy with every face zoomed by each factor."""
    calm, test = clf.prepare(calm), clf.prepare(fer.select_split("PublicTest"))
    truth = np.array(calm.classes)[calm.labels.numpy()]
    rows = []
    for z in zooms:
        pred = np.array(clf.classes)[clf.predict_proba(zoomed(calm.images, z)).argmax(1).numpy()]
        s = calm_summary(truth, pred)
        acc = float((clf.predict_proba(zoomed(test.images, z)).argmax(1) == test.labels).float().mean())
        rows.append({"zoom": z, "neutral_recall": s["neutral_recall"], "neutral_read_negative": s["neutral_read_negative"], "happy_recall": s["happy_recall"],
                     "publictest_accuracy": acc})  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    shipped = Path(args.checkpoint).resolve() == DEFAULT_CHECKPOINT.resolve()
    digest = hashlib.sha256(Path(args.checkpoint).read_bytes()).hexdigest()
    model = f"the shipped model, sha256 `{digest[:12]}`" if shipped else f"`{Path(args.checkpoint).name}`, sha256 `{digest[:12]}`"
    prov = provenance("bench/why_calm.py", model=model, model_sha256=digest)
    fer, calm_path = load_dataset(args.data), Path(args.data).parent / "wild_calm64.npz"
    if fer.soft_labels is None:
        raise LrferError(f"{args.data} has no FERPlus votes", "give the fer2013.npz of ../shared/data, which holds them")
    if not calm_path.is_file():
        raise LrferError(f"the calm set {calm_path} is not here", "put wild_calm64.npz beside the FER2013 file")
    clf, fer_voted = FaceClassifier.load(args.checkpoint, "cpu"), voted(fer, args.data)
    return {"provenance": prov, "labels": [crowd_disagreement(fer_voted, s) for s in ("Training", "PublicTest")],
            "price": price_of_the_crowd(clf, fer_voted, len(fer.select_split("PublicTest"))),
            "framing": framing(clf, load_dataset(calm_path), fer, args.zooms)}  # fmt: skip


def tables(doc: dict) -> list[str]:
    lab = {r["split"]: r for r in doc["labels"]}
    head = ["| FER2013 says | the crowd says | Training faces | share of disagreements | PublicTest faces | share |", "|---|---|---:|---:|---:|---:|"]
    test = {(p["fer2013"], p["crowd"]): p for p in lab["PublicTest"]["pairs"]}
    for p in lab["Training"]["pairs"][:8]:
        q = test.get((p["fer2013"], p["crowd"]))
        head.append(f"| {p['fer2013']} | {p['crowd']} | {p['n']} | {pct(p['share_of_differ'])} | {q['n'] if q else ''} | {pct(q['share_of_differ']) if q else ''} |")
    t, pr = lab["PublicTest"], doc["price"]
    summary = (f"They differ on {pct(lab['Training']['differ'])} % of Training's {lab['Training']['n']:,} voted faces and {pct(t['differ'])} % of PublicTest's "
               f"{t['n']:,}. On {t['n_negative_crowd_neutral']} PublicTest faces ({pct(t['negative_crowd_neutral'])} %) FER2013 says negative and the crowd "
               f"neutral; the model ({doc['provenance']['model']}) gives {pct(pr['read_as_label'])} % of them FER2013's label, "
               f"{pct(pr['read_neutral'])} % neutral. A model that read them all as the crowd does would lose {pr['points_at_stake']:.1f} points "
               "of PublicTest accuracy on them alone.")  # fmt: skip
    zoom = ["| zoom | calm neutral recall | calm neutral read negative | calm happy recall | PublicTest accuracy |", "|---:|---:|---:|---:|---:|"]
    for r in doc["framing"]:
        zoom.append(f"| {r['zoom']:g} | {pct(r['neutral_recall'])} | {pct(r['neutral_read_negative'])} | {pct(r['happy_recall'])} | {pct(r['publictest_accuracy'])} |")
    p = doc["provenance"]
    note = (f"In %. Source: `bench/why_calm.py` -> `bench/results/why_calm.json`, figure `why_calm.png`; {p['machine']}, {p['date'][:10]}, "
            f"commit `{p['commit'][:7]}`.")  # fmt: skip
    return ["\n".join(head), summary, "\n".join(zoom), note]


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    z = [r["zoom"] for r in doc["framing"]]
    for key, label in (("neutral_recall", "calm neutral recall"), ("neutral_read_negative", "calm neutral read negative"),
                       ("publictest_accuracy", "PublicTest accuracy")):  # fmt: skip
        ax.plot(z, [100 * r[key] for r in doc["framing"]], marker="o", label=label)
    ax.axvline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xlabel("zoom (above 1: the face fills less of the crop)")
    ax.set_ylabel("%")
    ax.set_title("Is it the framing? The shipped model on zoomed faces")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DATA), help="fer2013.npz with FERPlus votes; wild_calm64.npz is read beside it")
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="the model (default: the shipped one)")
    ap.add_argument("--zooms", default=",".join(f"{z:g}" for z in ZOOMS), help="zoom factors, comma-separated")
    add_table_args(ap)
    add_threads_arg(ap)
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        args.zooms = tuple(float(z) for z in args.zooms.split(","))
    except ValueError:
        ap.error(f"--zooms {args.zooms!r}: give numbers, e.g. 0.9,1,1.3")
    if not args.zooms or min(args.zooms) <= 0:
        ap.error("--zooms: each factor must be above 0")
    doc = measured_or_stored(args, OUT, run, "bench/why_calm.py", plot)
    if doc is None:
        return 2
    write_blocks(DOCS / "trust.md", {"trust-why-calm-labels": tables(doc)[:2], "trust-why-calm-framing": tables(doc)[2:]}, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
