"""Commands that write a trained classifier out again, for deployment: ``lrfer export`` (ONNX,
optionally int8), ``lrfer calibrate`` (a temperature fitted on a validation split, stored in
the checkpoint), ``lrfer add-reading`` (another head fitted on the model's embeddings, stored
beside its own) and ``lrfer readings`` (the stored ones)."""

from __future__ import annotations

from pathlib import Path

from ..errors import LrferError
from ..files import check_writable
from ._common import (
    SPLIT_HELP,
    Bars,
    _default_split,
    _prepared,
    add_data_options,
    add_model_options,
    load_classifier,
    load_data,
    non_negative_int,
    parse_sizes,
    print_table,
    probability,
)

_INT8_DATA_HINT = "add --data PATH (e.g. fer2013.csv); 512 training faces are used"


def add_parsers(sub) -> None:
    sp = sub.add_parser("export", help="export a classifier to ONNX (optionally int8)")
    sp.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the shipped model)")
    sp.add_argument("--onnx", required=True, metavar="FILE", help="output .onnx file (dynamic batch)")
    sp.add_argument("--int8", metavar="FILE", help="also write an int8-quantized model, calibrated on --data")
    add_data_options(sp, required=False)
    sp.add_argument("--split", help="split to draw calibration faces from (default Training)")
    sp.set_defaults(func=cmd_export)

    sp = sub.add_parser("calibrate", help="fit a temperature on a validation split and store it in the checkpoint")
    add_model_options(sp)
    add_data_options(sp)
    sp.add_argument("--split", help=SPLIT_HELP + " (default: the validation split)")
    sp.add_argument("--out", metavar="FILE", help="calibrated checkpoint (default: overwrite --checkpoint)")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--coverage", type=probability, help="also store an abstention rule: the confidence threshold that answers this share of the split's faces (e.g. 0.8)")
    g.add_argument("--risk", type=probability, help="also store an abstention rule: the lowest confidence threshold whose answered faces have at most this error (e.g. 0.2)")
    sp.add_argument("--uncertain-below", type=non_negative_int, default=0, metavar="PX", help="with --coverage/--risk: faces smaller than PX are uncertain too (stored as given)")
    sp.add_argument("--train-split", metavar="SPLIT", help="also store the class shares of this split of --data as the model's training shares (the split it was trained on), for --prior")
    sp.set_defaults(func=cmd_calibrate)

    sp = sub.add_parser("add-reading", help="fit another head on the model's embeddings (labels blended with crowd votes) and store it beside its own")
    sp.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the shipped model, which then needs --out)")
    add_data_options(sp)
    sp.add_argument("--name", required=True, help="the reading's name, for --reading")
    sp.add_argument("--vote-weight", type=probability, required=True, metavar="W", help="targets (1 - W) x label + W x votes: 0 the labels, 1 the crowd's votes alone")
    sp.add_argument("--train-split", default="Training", metavar="SPLIT", help="the split the head is fitted on (default Training)")
    sp.add_argument("--split", default="PublicTest", help="the split its temperature and abstention threshold are chosen on (default PublicTest)")
    sp.add_argument("--sizes", default="48,24,16", metavar="PX,...", help="face sizes the head is fitted at (default 48,24,16)")
    sp.add_argument("--data-only", action="store_true", help="fit on --data alone, without the set the model mixed into its training (for your own labelled faces)")
    sp.add_argument("--out", metavar="FILE", help="checkpoint with the reading (default: overwrite --checkpoint)")
    sp.set_defaults(func=cmd_add_reading)

    sp = sub.add_parser("readings", help="the readings a checkpoint holds beside its own head")
    sp.add_argument("--checkpoint", help="a .safetensors checkpoint (default: the shipped model)")
    sp.set_defaults(func=cmd_readings)


def cmd_export(args) -> int:
    from ..export.onnx import export_onnx, quantize_int8

    # every output writable and every input named before the export: a failed --int8 must not
    # follow a written --onnx that replaced the user's file
    for flag, out in (("--onnx", args.onnx), ("--int8", args.int8)):
        if out:
            check_writable(out, flag)
    if args.int8 and not args.data:
        raise LrferError("--int8 needs calibration faces", _INT8_DATA_HINT)
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

    from ..predict.classifier import FaceClassifier

    clf = FaceClassifier.load(args.checkpoint, device="cpu")
    faces = load_data(args, Bars(not args.no_progress))
    split = args.split or ("Training" if "Training" in set(faces.split) else None)
    faces = clf.prepare(faces.select_split(split) if split else faces)
    idx = np.random.default_rng(0).permutation(len(faces))[:512]
    return faces.images[torch.from_numpy(idx)].numpy()


def cmd_calibrate(args) -> int:
    from ..evaluate.calibration import calibrate_checkpoint
    from ..train.prior import training_prior

    if args.reading:
        raise LrferError("calibrate fits the model's own head; a reading is calibrated when it is fitted", "leave --reading out (lrfer add-reading fits and calibrates a reading)")
    target = _writable_target(args.checkpoint, args.out, "calibrating")
    bars = Bars(not args.no_progress)
    clf = load_classifier(args)
    data = load_data(args, bars)
    split = args.split or _default_split(data, clf)
    faces = _prepared(clf, data.select_split(split), bars)
    abstain = None if args.coverage is None and args.risk is None else {"coverage": args.coverage, "risk": args.risk, "min_face": args.uncertain_below}
    prior = training_prior(clf, data, args.train_split) if args.train_split else None
    rep = calibrate_checkpoint(target, faces, split=split, path_out=args.out, device=clf.device, progress=bars, abstain=abstain, class_prior=prior)
    bars.close()
    print(f"temperature {rep['temperature']:.3f} fitted on {faces.name} {split} (n={rep['n']})")
    print(f"ECE {rep['ece_before']:.4f} -> {rep['ece_after']:.4f}   NLL {rep['nll_before']:.4f} -> {rep['nll_after']:.4f} (measured on the fitting faces)")
    if "abstain" in rep:
        a = rep["abstain"]
        print(f"abstention: uncertain below confidence {a['min_confidence']:.4f}" + (f" or below {a['min_face']} px" if a["min_face"] else "")
              + f"; on {split} it answers {a['chosen']['coverage']:.1%} of faces at {a['chosen']['accuracy']:.1%} accuracy")  # fmt: skip
    if prior is not None:
        print(f"training class shares: {prior['source']}")
    print(f"wrote {rep['path']}")
    return 0


def _writable_target(checkpoint, out, what: str) -> Path:
    """The checkpoint a command rewrites: never the shipped model in place (it is the installed package)."""
    from ..predict.classifier import DEFAULT_CHECKPOINT

    target = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if out is None and target.resolve() == DEFAULT_CHECKPOINT.resolve():
        # by path too: `--checkpoint .../assets/default/model.safetensors` is the same file
        raise LrferError(f"{what} the shipped model in place would change the installed package", "give --out FILE (and --checkpoint for your own model)")
    check_writable(out or target, "--out" if out else "--checkpoint")  # before any work
    return target


def cmd_add_reading(args) -> int:
    from ..train.reading import add_fitted_reading

    target = _writable_target(args.checkpoint, args.out, "adding a reading to")
    sizes = parse_sizes(args.sizes)
    bars = Bars(not args.no_progress)
    data = load_data(args, bars)
    try:
        path, rec = add_fitted_reading(target, data, args.name, args.out, vote_weight=args.vote_weight, train_split=args.train_split,
                                       val_split=args.split, sizes=sizes, mix_extra=not args.data_only, progress=bars)  # fmt: skip
    finally:
        bars.close()
    a, fit = rec["abstain"], rec["fitted"]
    print(f"reading '{args.name}': head fitted on {fit['faces']} faces of {fit['data']} at {', '.join(map(str, fit['sizes']))} px, votes at weight {rec['vote_weight']}")
    print(f"on {args.split} by its own labels: {fit['val_accuracy']:.1%} accuracy; temperature {rec['temperature']:.3f};"
          f" abstention below confidence {a['min_confidence']:.4f} answers {a['chosen']['coverage']:.1%}")  # fmt: skip
    print(f"wrote {path}; use it with --reading {args.name}")
    return 0


def cmd_readings(args) -> int:
    from ..models.checkpoint import load_checkpoint
    from ..predict.classifier import DEFAULT_CHECKPOINT

    ckpt = load_checkpoint(args.checkpoint or DEFAULT_CHECKPOINT)
    rows = [{"reading": "default", "vote weight": "-", "temperature": f"{float(ckpt.spec.get('temperature', 1.0)):.3f}", "about": "the model's own head"}]
    for name, rec in ckpt.readings.items():
        fit = rec.get("fitted") or {}
        rows.append({"reading": name, "vote weight": str(rec.get("vote_weight", "?")), "temperature": f"{float(rec.get('temperature', 1.0)):.3f}",
                     "about": f"fitted on {fit.get('data', '?')}, {fit.get('val_split', '?')} accuracy {fit.get('val_accuracy', float('nan')):.1%} by its own labels"})  # fmt: skip
    print_table(rows, ["reading", "vote weight", "temperature", "about"])
    return 0
