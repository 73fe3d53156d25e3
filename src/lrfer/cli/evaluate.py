"""``lrfer evaluate`` (accuracy, per-class F1, confusion matrix, risk-coverage) and ``lrfer sweep`` (accuracy
against face size, of one model or of an ensemble)."""

from __future__ import annotations

from pathlib import Path

from ..errors import LrferError
from ..files import check_writable
from ._common import SPLIT_HELP, Bars, add_data_options, add_model_options, load_classifier, load_test_faces, print_table


def add_parsers(sub) -> None:
    sp = sub.add_parser("evaluate", help="accuracy, per-class F1, confusion matrix")
    add_model_options(sp)
    add_data_options(sp)
    sp.add_argument("--split", help=SPLIT_HELP)
    sp.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    sp.add_argument("--out", help="output folder (default runs/evaluate)")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("sweep", help="accuracy against face size")
    add_model_options(sp)
    add_data_options(sp)
    sp.add_argument("--split", help=SPLIT_HELP)
    sp.add_argument("--sizes", default="8,12,16,24,32,48")
    sp.add_argument("--member", action="append", default=[], metavar="CHECKPOINT",
                    help="sweep an ensemble instead (repeat, two or more): each checkpoint alone and the mean of their probabilities")  # fmt: skip
    sp.add_argument("--out", help="output folder (default runs/sweep)")
    sp.set_defaults(func=cmd_sweep)


def cmd_evaluate(args) -> int:
    from ..evaluate.report import evaluate_classifier, write_report

    out = check_writable(args.out or "runs/evaluate", "--out", folder=True)
    bars = Bars(not args.no_progress)
    clf = load_classifier(args)
    faces, split = load_test_faces(args, clf, bars)
    rep = evaluate_classifier(clf, faces, tta=args.tta, measure_latency=not args.no_latency, progress=bars)
    rep.update({"checkpoint": str(clf.checkpoint.path), "data": str(args.data), "split": split})
    paths = write_report(rep, out).values()
    bars.close()
    print(f"{faces.name} {split}: n={len(faces)}  accuracy {rep['accuracy']:.4f}  macro F1 {rep['macro_f1']:.4f}")
    print_table([{"class": c, **v} for c, v in rep["per_class"].items()], ["class", "precision", "recall", "f1", "support"])
    rc = rep["risk_coverage"]
    at = ", ".join(f"{r['accuracy']:.1%} at {r['coverage']:.0%}" for r in rc["at"][1:4])
    print(f"risk-coverage (least confident faces left out first): AURC {rc['aurc']:.4f}; accuracy {at} of faces answered")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_sweep(args) -> int:
    from ..evaluate.report import write_sweep
    from ..evaluate.sweep import classifier_sweep

    bars = Bars(not args.no_progress)
    sizes = _parse_sizes(args.sizes)
    out = check_writable(args.out or "runs/sweep", "--out", folder=True)
    if args.member:
        rows, faces, split, name = _ensemble_sweep(args, sizes, bars)
    else:
        clf = load_classifier(args)
        faces, split = load_test_faces(args, clf, bars)
        rows, name = classifier_sweep(clf, faces, sizes, tta=args.tta, progress=bars), clf.name
    table = write_sweep(rows, out, title=f"{name} on {faces.name} {split}")
    bars.close()
    print(table)
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.png'}")
    return 0


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


def _ensemble_sweep(args, sizes, bars):
    """``lrfer sweep --member A --member B ...``: each member alone and the mean of their
    probabilities, one column each (named by file) in the table, the JSON and the plot."""
    from ..evaluate.sweep import ensemble_sweep
    from ..predict.ensemble import ProbabilityEnsemble

    if args.checkpoint:
        raise LrferError("--checkpoint and --member both given", "sweep one model with --checkpoint, or an ensemble with two or more --member")
    if len(args.member) < 2:
        raise LrferError("an ensemble needs two or more --member checkpoints", "repeat --member, or sweep one model with --checkpoint")
    ens = ProbabilityEnsemble(args.member, device=args.device)
    faces, split = load_test_faces(args, ens, bars, validated=ens.members[0])
    swept = ensemble_sweep(ens, faces, sizes, tta=args.tta, progress=bars)
    stems = [Path(m).stem for m in args.member]
    names = stems if len(set(stems)) == len(stems) else [str(m) for m in args.member]  # file names, unless two share one
    rows = {**{n: swept[f"member{i}"] for i, n in enumerate(names)}, "ensemble (mean)": swept["ensemble"]}
    return rows, faces, split, f"ensemble of {len(names)}"
