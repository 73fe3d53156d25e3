"""``lrfer evaluate`` (accuracy, per-class F1, confusion matrix, risk-coverage) and ``lrfer sweep`` (accuracy
against face size, of one model or of an ensemble)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import LrferError
from ..files import check_writable
from ._common import SPLIT_HELP, Bars, add_data_options, add_model_options, load_classifier, load_data, load_test_faces, parse_sizes, print_table
from .infer import add_recognizer_options, recognizer_from_args


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

    sp = sub.add_parser("evaluate-photos", help="end to end on labelled whole photos (one face each): detection, crop framing and face size")
    add_recognizer_options(sp, upscale="auto", rows=False)
    add_data_options(sp)
    sp.add_argument("--split", help="the dataset's own split name (default: every photo)")
    sp.add_argument("--face-px", default="native", help="face sizes to shrink the photos to, e.g. native,48,17 (native: as they are)")
    sp.add_argument("--margins", help="crop margins to compare, e.g. 0,0.1,0.2 (default: --margin)")
    sp.add_argument("--out", help="output folder (default runs/evaluate_photos)")
    sp.set_defaults(func=cmd_evaluate_photos)


def cmd_evaluate(args) -> int:
    from ..evaluate.report import evaluate_classifier, write_report

    out = check_writable(args.out or "runs/evaluate", "--out", folder=True)
    bars = Bars(not args.no_progress)
    clf = load_classifier(args)
    faces, split = load_test_faces(args, clf, bars)
    rep = evaluate_classifier(clf, faces, tta=args.tta, measure_latency=not args.no_latency, progress=bars)
    rep.update({"checkpoint": str(clf.checkpoint.path), "reading": clf.reading, "data": str(args.data), "split": split})
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
    sizes = parse_sizes(args.sizes)
    out = check_writable(args.out or "runs/sweep", "--out", folder=True)
    if args.member:
        rows, faces, split, name = _ensemble_sweep(args, sizes, bars)
    else:
        clf = load_classifier(args)
        faces, split = load_test_faces(args, clf, bars)
        rows, name = classifier_sweep(clf, faces, sizes, tta=args.tta, progress=bars), clf.name + ("" if clf.reading == "default" else f" (reading {clf.reading})")
    table = write_sweep(rows, out, title=f"{name} on {faces.name} {split}")
    bars.close()
    print(table)
    print(f"wrote {out / 'sweep.json'}, {out / 'sweep.png'}")
    return 0


def _ensemble_sweep(args, sizes, bars):
    """``lrfer sweep --member A --member B ...``: each member alone and the mean of their
    probabilities, one column each (named by file) in the table, the JSON and the plot."""
    from ..evaluate.sweep import ensemble_sweep
    from ..predict.ensemble import ProbabilityEnsemble

    if args.checkpoint or args.reading:
        flag = "--checkpoint" if args.checkpoint else "--reading"
        raise LrferError(f"{flag} and --member both given", "sweep one model with --checkpoint (and --reading), or an ensemble with two or more --member")
    if len(args.member) < 2:
        raise LrferError("an ensemble needs two or more --member checkpoints", "repeat --member, or sweep one model with --checkpoint")
    ens = ProbabilityEnsemble(args.member, device=args.device)
    faces, split = load_test_faces(args, ens, bars, validated=ens.members[0])
    swept = ensemble_sweep(ens, faces, sizes, tta=args.tta, progress=bars)
    stems = [Path(m).stem for m in args.member]
    names = stems if len(set(stems)) == len(stems) else [str(m) for m in args.member]  # file names, unless two share one
    rows = {**{n: swept[f"member{i}"] for i, n in enumerate(names)}, "ensemble (mean)": swept["ensemble"]}
    return rows, faces, split, f"ensemble of {len(names)}"


def cmd_evaluate_photos(args) -> int:
    import numpy as np

    from ..infer.photo_eval import evaluate_photos, photo_table, write_photo_report

    face_px, margins = _parse_face_px(args.face_px), _parse_margins(args.margins)
    if args.no_detect:
        raise LrferError("evaluate-photos scores the detector too, so --no-detect does not apply", "drop --no-detect; for face crops use lrfer evaluate")
    out = check_writable(args.out or "runs/evaluate_photos", "--out", folder=True)
    bars = Bars(not args.no_progress)
    faces = load_data(args, bars)
    faces = faces.select_split(args.split) if args.split else faces
    rec = recognizer_from_args(args)
    true = np.array(faces.classes)[faces.labels.numpy()]
    keep = np.isin(true, list(rec.classifier.classes))
    if not keep.all():
        bars.close()
        left = sorted(set(true[~keep].tolist()))
        print(f"note: {int((~keep).sum())} photos of {', '.join(left)} left out: the model's classes are {', '.join(rec.classifier.classes)}", file=sys.stderr)
    idx = np.flatnonzero(keep)
    if not len(idx):
        raise LrferError(f"no photo of {faces.name} shows a class the model knows", "check the class folders' names against the model's classes (lrfer info)")
    photos = [_photo(faces.images[i].numpy()) for i in idx]
    ids = [str(faces.ids[i]) for i in idx] if faces.ids is not None else None
    res = evaluate_photos(rec, photos, true[idx].tolist(), face_px=face_px, margins=margins, ids=ids, progress=bars)
    res.update({"checkpoint": str(args.checkpoint or "default"), "reading": args.reading or "default", "data": str(args.data), "split": args.split or "all", "detector": args.detector,
                "upscale": args.upscale, "align": args.align, "left_out": int((~keep).sum())})  # fmt: skip
    paths = write_photo_report(res, out, title=f"{faces.name}: whole photos, end to end")
    bars.close()
    print(f"{faces.name}: {len(idx)} photos, a face not found counts as wrong")
    print_table(photo_table(res["rows"]), ["face px", "margin", "n", "found", "accuracy", "accuracy_found", "macro_f1", "neutral_read_negative", "negative_read_negative"])
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _photo(chw):
    """A FaceSet image ``(C, H, W)`` as a frame: ``HxW`` gray or ``HxWx3`` RGB."""
    return chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)


def _parse_face_px(text: str) -> list:
    sizes: list = []
    for s in (t.strip() for t in text.split(",")):
        if s == "native":
            sizes.append(None)
        elif s.isdigit() and int(s) > 0:
            sizes.append(int(s))
        elif s:
            raise LrferError(f"--face-px '{text}': '{s}' is not a pixel size or 'native'", "write e.g. --face-px native,48,17")
    if not sizes:
        raise LrferError("--face-px is empty", "write e.g. --face-px native,48,17")
    return sizes


def _parse_margins(text) -> list[float]:
    if text is None:
        return []
    try:
        margins = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise LrferError(f"--margins '{text}' is not a comma-separated list of numbers", "write e.g. --margins 0,0.1,0.2") from None
    if not margins or min(margins) < 0:
        raise LrferError(f"--margins '{text}': give margins of 0 or more", "write e.g. --margins 0,0.1,0.2")
    return margins
