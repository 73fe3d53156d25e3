"""Commands that write a trained classifier out again, for deployment: ``lrfer export`` (ONNX,
optionally int8) and ``lrfer calibrate`` (a temperature fitted on a validation split, stored in
the checkpoint)."""

from __future__ import annotations

from pathlib import Path

from ..errors import LrferError
from ..files import check_writable
from ._common import SPLIT_HELP, Bars, _default_split, _prepared, add_data_options, add_model_options, load_classifier, load_data, non_negative_int, probability

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
    from ..predict.classifier import DEFAULT_CHECKPOINT
    from ..train.prior import training_prior

    target = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    if args.out is None and target.resolve() == DEFAULT_CHECKPOINT.resolve():
        # by path too: `--checkpoint .../assets/default/model.safetensors` is the same file
        raise LrferError("calibrating the shipped model in place would change the installed package", "give --out FILE (and --checkpoint for your own model)")
    check_writable(args.out or target, "--out" if args.out else "--checkpoint")  # before the faces are scored
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

