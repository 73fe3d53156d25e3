"""The deployment prior and abstention against calm faces read as distressed (docs/trust.md).

    python bench/prior_abstain.py [--data-dir ../shared/data] [--coverage 0.8] [--seed 0]
    python bench/prior_abstain.py --table-only | --check

The shipped model's probabilities (temperature included) on FER2013 PublicTest with faces at 48,
24 and 16 px (the library's one degradation, as ``lrfer sweep``), and on the calm in-the-wild set
(``wild_calm64.npz``: happy and neutral faces, a DEVELOPMENT set: nothing is fitted on it), read
in these ways:

- ``as shipped``: the model's top class;
- ``uniform prior``: moved from FER2013 Training's class shares to equal shares;
- ``calm-room prior``: moved to a prior fixed in advance by a stated rule, before any calm-set
  number was seen: neutral 0.5, happy 0.25, the five others 0.05 each (:data:`CALM_ROOM`);
- ``EM prior (other half)``: the set's faces split into two random halves (``--seed``); the
  prior is estimated by EM (Saerens et al. 2002) from one half's probabilities, without labels,
  and applied to the other half, both ways. This is what a site would do with its own footage
  (:func:`lrfer.runtime.em_prior.site_prior`: EM on probabilities bias-corrected as stored with
  the model, fitted on PublicTest 48 px); on the calm set it is the one row that uses calm-set
  images (never their labels). ``plain EM``: the same without the bias correction;
- ``abstain``: faces whose top probability is below the threshold that answers ``--coverage``
  of FER2013 PublicTest's 48 px faces are "uncertain" (threshold chosen there, applied everywhere);
- ``calm-room prior + abstain``: the two together, the threshold chosen on PublicTest with the
  calm-room prior applied.

Per row: coverage, then on the faces answered accuracy, macro F1, neutral and happy recall; and
over ALL faces of a class (an uncertain face raises no alarm): the share of neutral and of happy
faces read as negative (sad, angry, fear, disgust), and of negative faces read as negative.
Writes bench/results/prior_abstain.json and the tables of docs/trust.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import numpy as np

from _common import DOCS, RESULTS, ROOT, add_table_args, load_result, pct, provenance, source_line, write_blocks

OUT = RESULTS / "prior_abstain.json"
SIZES = (48, 24, 16)
NEGATIVE = ("angry", "disgust", "fear", "sad")
#: The calm-room prior, fixed before the calm-set numbers were looked at (docs/trust.md).
CALM_ROOM = "neutral=0.5,happy=0.25"


def probabilities(data_dir: Path, cache: Optional[Path] = None):
    """``({set name: (probs, labels)}, classifier)``: the shipped model's (torch, so faces can be
    degraded); from ``cache`` when it exists (and written there when it does not)."""
    from lrfer.predict.classifier import FaceClassifier

    clf = FaceClassifier.load(None, "cpu")
    if cache is not None and cache.exists():
        with np.load(cache) as d:
            return {str(k): (d[f"p{i}"], d[f"y{i}"]) for i, k in enumerate(d["names"])}, clf
    sets = _compute(clf, data_dir)
    if cache is not None:
        np.savez(cache, names=np.array(list(sets)), **{f"{v}{i}": sets[k][j] for i, k in enumerate(sets) for j, v in enumerate("py")})
    return sets, clf


def _compute(clf, data_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from lrfer.data.readers import load_dataset

    fer = clf.prepare(load_dataset(data_dir / "fer2013.npz").select_split("PublicTest"))
    out = {f"FER2013 PublicTest {s} px": (clf.predict_proba(fer.images, degrade_to=s).numpy(), fer.labels.numpy()) for s in SIZES}
    calm = clf.prepare(load_dataset(data_dir / "wild_calm64.npz"))
    out["calm in-the-wild 64 px"] = (clf.predict_proba(calm.images).numpy(), calm.labels.numpy())
    return out


def scores(probs, labels, classes, answered=None) -> dict:
    """The row's numbers (see the module docstring); ``answered``: faces not uncertain."""
    from lrfer.evaluate.metrics import classification_report

    answered = np.ones(len(labels), bool) if answered is None else answered
    pred = probs.argmax(1)
    rep = classification_report(labels[answered], pred[answered], classes)
    neg = np.isin(pred, [classes.index(c) for c in NEGATIVE]) & answered

    def share(names):
        rows = np.isin(labels, [classes.index(c) for c in names])
        return float(neg[rows].mean()) if rows.any() else None

    recall = {c: rep["per_class"][c]["recall"] if rep["per_class"][c]["support"] else None for c in ("neutral", "happy")}
    return {
        "coverage": float(answered.mean()), "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
        "neutral_recall": recall["neutral"], "happy_recall": recall["happy"],
        "neutral_read_negative": share(["neutral"]), "happy_read_negative": share(["happy"]), "negative_read_negative": share(NEGATIVE),
    }  # fmt: skip


def em_halves(probs, train, seed, estimate):
    """Each half's probabilities moved to the prior ``estimate(probs)`` gives on the other half
    (from the training shares); the two estimates."""
    from lrfer.runtime.prior import adjust

    halves = np.array_split(np.random.default_rng(seed).permutation(len(probs)), 2)
    out, estimates = np.empty_like(probs), []
    for a, b in (halves, halves[::-1]):
        q = estimate(probs[a])
        out[b] = adjust(probs[b], q, train)
        estimates.append(q.round(4).tolist())
    return out, estimates


def evaluate(sets, clf, coverage, seed) -> dict:
    from lrfer.evaluate.risk_coverage import threshold_for_coverage
    from lrfer.runtime.em_prior import estimate_prior, site_prior
    from lrfer.runtime.prior import adjust, parse_prior

    classes, train = list(clf.classes), clf.train_prior

    calm, uniform = parse_prior(CALM_ROOM, classes), parse_prior("uniform", classes)
    fer48 = sets[f"FER2013 PublicTest {SIZES[0]} px"][0]
    t_plain = threshold_for_coverage(fer48.max(1), coverage)
    t_calm = threshold_for_coverage(adjust(fer48, calm, train).max(1), coverage)
    results = {}
    for name, (p, y) in sets.items():
        pc = adjust(p, calm, train)
        pe, est = em_halves(p, train, seed, lambda half: site_prior(half, clf))
        plain, plain_est = em_halves(p, train, seed, lambda half: estimate_prior(half, train)[0])
        results[name] = {
            "as shipped": scores(p, y, classes),
            "uniform prior": scores(adjust(p, uniform, train), y, classes),
            "calm-room prior": scores(pc, y, classes),
            "EM prior (other half)": {**scores(pe, y, classes), "estimates": est},
            "plain EM prior (other half)": {**scores(plain, y, classes), "estimates": plain_est},
            "abstain": scores(p, y, classes, p.max(1) >= t_plain),
            "calm-room prior + abstain": scores(pc, y, classes, pc.max(1) >= t_calm),
        }
    return {"thresholds": {"abstain": t_plain, "calm-room prior + abstain": t_calm}, "sets": results}


COLUMNS = [("coverage", "answered"), ("accuracy", "accuracy"), ("macro_f1", "macro F1"), ("neutral_recall", "neutral recall"), ("happy_recall", "happy recall"),
           ("neutral_read_negative", "neutral read negative"), ("happy_read_negative", "happy read negative"), ("negative_read_negative", "negative read negative")]  # fmt: skip


def table(r: dict) -> list[str]:
    if r is None:
        return ["(not run yet: `python bench/prior_abstain.py`)"]
    out = []
    for name, rows in r["sets"].items():
        lines = [f"**{name}** (n={r['n'][name]})", "", "| reading | " + " | ".join(h for _, h in COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
        lines += [f"| {m} | " + " | ".join(pct(row[k]) if row[k] is not None else "-" for k, _ in COLUMNS) + " |" for m, row in rows.items()]
        out.append("\n".join(lines))
    t = r["thresholds"]
    out.append(f"Values in %. Abstention thresholds chosen at {pct(r['coverage'])}% coverage of PublicTest 48 px: top probability >= {t['abstain']:.3f} "
               f"(as shipped), >= {t['calm-room prior + abstain']:.3f} (with the calm-room prior). Source: {source_line(r)}.")  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--coverage", type=float, default=0.8, help="share of PublicTest 48 px faces the abstention threshold answers")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random halves for the EM rows")
    ap.add_argument("--probs", type=Path, help="an .npz of the probabilities: read when it exists, else written (reruns skip the model)")
    add_table_args(ap)
    args = ap.parse_args()
    if args.table_only or args.check:
        write_blocks(DOCS / "trust.md", {"trust-prior-abstain": table(load_result(OUT.name))}, check=args.check)
        return
    prov = provenance("bench/prior_abstain.py", args.seed, data=str(args.data_dir), calm_room_prior=CALM_ROOM)
    sets, clf = probabilities(args.data_dir, args.probs)
    report = {"provenance": prov, "model": clf.name, "classes": list(clf.classes), "train_prior": clf.train_prior.round(6).tolist(),
              "coverage": args.coverage, "n": {k: len(v[1]) for k, v in sets.items()},
              **evaluate(sets, clf, args.coverage, args.seed)}  # fmt: skip
    from lrfer.files import atomic_write_text

    atomic_write_text(OUT, json.dumps(report, indent=2) + "\n")
    write_blocks(DOCS / "trust.md", {"trust-prior-abstain": table(report)})


if __name__ == "__main__":
    main()
