"""Store the shipped default model's training class shares and abstention rule, then re-export it.

    python tools/default_trust.py [--data ../shared/data/fer2013.npz] [--coverage 0.8] [--uncertain-below 16]

Writes into ``src/lrfer/assets/default/model.safetensors`` (weights and temperature unchanged):

- ``class_prior``: the shares of the targets the model trained on (FER2013 Training, its config's
  ``train_split``, with any FERPlus votes its config blended in), which ``--prior`` needs, with the bias correction EM needs
  (fitted on PublicTest);
- ``abstain``: the confidence threshold answering ``--coverage`` of FER2013 PublicTest (the split
  the model was selected and calibrated on; never the calm development set), faces below
  ``--uncertain-below`` px uncertain too (the service's default evidence size), applied by
  ``--abstain``;

then runs ``tools/export_default.py`` so the shipped ONNX carries the same (a test checks that the
two match). See docs/trust.md.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

from lrfer.data.readers import load_dataset
from lrfer.evaluate.abstain import choose_rule
from lrfer.evaluate.bias_calibration import em_calibration_record
from lrfer.models.checkpoint import update_spec
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier
from lrfer.train.prior import training_prior

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.npz"))
    ap.add_argument("--coverage", type=float, default=0.8)
    ap.add_argument("--uncertain-below", type=int, default=16)
    args = ap.parse_args()
    clf = FaceClassifier.load(None, "cpu")
    data = load_dataset(args.data)
    train_split = clf.checkpoint.info["config"]["train_split"]
    val = clf.prepare(data.select_split("PublicTest"))
    probs, labels, split = clf.predict_proba(val.images).numpy(), val.labels.numpy(), f"{Path(args.data).name} PublicTest"
    rule = choose_rule(probs, labels, coverage=args.coverage, min_face=args.uncertain_below, split=split)
    prior = {**training_prior(clf, data, train_split), "em_calibration": em_calibration_record(probs, labels, clf.classes, split)}
    update_spec(DEFAULT_CHECKPOINT, {"class_prior": prior, "abstain": rule})
    print(f"stored class shares ({prior['source']}) and abstention {rule}")
    runpy.run_path(str(ROOT / "tools" / "export_default.py"), run_name="__main__")


if __name__ == "__main__":
    main()
