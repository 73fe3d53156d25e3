"""Store the shipped default model's readings, then re-export it.

    python tools/default_readings.py [--data ../shared/data/fer2013.npz]

Writes into ``src/lrfer/assets/default/model.safetensors`` (the model's own head, weights,
temperature and rule unchanged) two readings (docs/trust.md, "Readings"), heads fitted on the
model's frozen embeddings of FER2013 Training (with the CK+ faces the model mixed in) at 48, 24
and 16 px, each calibrated on PublicTest:

- ``half``: targets half FER2013's label, half the FERPlus crowd's votes;
- ``crowd``: the crowd's votes alone.

The two weights were fixed before any reading was scored: the midpoint and the crowd's own
reading, the two natural marks on the dial between FER2013's labels and the crowd's. Nothing is
fitted or chosen on the calm development set. Then runs ``tools/export_default.py`` so the shipped
ONNX carries them (its ``embedding`` output and ``readings`` metadata). About 9 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import torch

from lrfer.data.readers import load_dataset
from lrfer.models.checkpoint import load_checkpoint
from lrfer.predict.classifier import DEFAULT_CHECKPOINT
from lrfer.train.reading import add_fitted_reading

ROOT = Path(__file__).resolve().parents[1]
READINGS = {"half": 0.5, "crowd": 1.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.npz"))
    args = ap.parse_args()
    data = load_dataset(args.data)
    before = load_checkpoint(DEFAULT_CHECKPOINT)
    for name, weight in READINGS.items():
        _, rec = add_fitted_reading(DEFAULT_CHECKPOINT, data, name, vote_weight=weight)
        print(f"stored reading '{name}' (votes at {weight}): {rec['fitted']['val_split']} accuracy {rec['fitted']['val_accuracy']:.1%} by its own labels")
    # the file's sha256 changes; the model's own answers must not
    after = load_checkpoint(DEFAULT_CHECKPOINT)
    own, now = before.weights("model"), after.weights("model")
    same_spec = {k: v for k, v in after.spec.items() if k != "readings"} == {k: v for k, v in before.spec.items() if k != "readings"}
    if own.keys() != now.keys() or not all(torch.equal(own[k], now[k]) for k in own) or not same_spec:
        raise SystemExit("the model's own weights or description changed: restore model.safetensors from git")
    print(f"the model's own weights and description unchanged ({len(own)} tensors)")
    runpy.run_path(str(ROOT / "tools" / "export_default.py"), run_name="__main__")


if __name__ == "__main__":
    main()
