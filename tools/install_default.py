"""Make a trained checkpoint the shipped default model: ``src/lrfer/assets/default/model.safetensors``.

    python tools/install_default.py runs/ferplus_ft/w0.3/best.safetensors

The checkpoint must be a classifier of the default's classes and input (every caller, the ONNX
runtime and the service's stored timelines rely on them). It is copied atomically without its
training state, and the temperature, class shares, abstention rule and readings of the model it
replaces are dropped: they belong to that model (a reading is a head on its embeddings). Then, in
this order (each writes its results file, and the tests fail while one is stale):

    python bench/calibrate_default.py            # the temperature, fitted on PublicTest
    python tools/default_trust.py                # training shares, abstention rule, then the ONNX export
    python tools/default_readings.py && python bench/readings.py    # the readings half and crowd, refitted
    python bench/default_model.py                # report, sweep, model card, docs/results.md
    python bench/suite.py --models default --keep-earlier && python bench/inference_tables.py
    python bench/robustness.py --models default,default:half,default:crowd --checkpoint <the model replaced> --keep-earlier
    python bench/prior_abstain.py
    python bench/onnx_int8_accuracy.py; python bench/photos_vs_fer.py; python bench/serve_alerts.py
"""

from __future__ import annotations

import argparse
import sys

from lrfer.errors import LrferError
from lrfer.models.checkpoint import load_checkpoint, save_checkpoint
from lrfer.predict.classifier import DEFAULT_CHECKPOINT

#: what the replaced model's calibration stored, which says nothing about another model's outputs
MODEL_OWN = ("temperature", "calibration", "class_prior", "abstain", "readings", "reading")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="the trained checkpoint (a run's best.safetensors)")
    args = ap.parse_args()
    try:
        new, old = load_checkpoint(args.checkpoint), load_checkpoint(DEFAULT_CHECKPOINT)
        for key in ("classes", "in_chans", "image_size", "crop"):
            if new.spec.get(key) != old.spec.get(key):
                raise LrferError(f"{args.checkpoint}: its {key} is {new.spec.get(key)!r}, the default's {old.spec.get(key)!r}",
                                 "the default's classes and input are what every caller relies on: train with the default's settings")  # fmt: skip
    except LrferError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model = new.build_model(prefer_ema=True)
    spec = {k: v for k, v in new.spec.items() if k not in MODEL_OWN}
    save_checkpoint(DEFAULT_CHECKPOINT, model, spec, info=new.info)
    print(f"installed {args.checkpoint} as {DEFAULT_CHECKPOINT} (epoch {new.info.get('epoch')}); now calibrate it (see this script's help)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
