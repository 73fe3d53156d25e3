"""How the shrink from 48 px to a model's input size changes its score: area averaging or antialiased bilinear.

lrfer resizes faces to a model's input size with one rule, ``lrfer.data.augment.resize_faces``
(bilinear, antialiased when shrinking), in training and inference alike. Until 2026-11-24 training
shrank by area averaging while inference used that rule. This scores trained checkpoints (e.g. the
30-minute CPU recipe's 32 px students, whose ``--run-dir`` holds ``best.safetensors``) on FER2013
PublicTest at 48 px, shrunk to each checkpoint's input size both ways, with flip TTA: which shrink
a model trained one way prefers.

    python bench/resize_rule.py /tmp/run_A/best.safetensors=bench/results/cpu_recipe_fer2013_cpu30_airnet_kd_area.json --out bench/results/resize_rule.json

Each checkpoint may name, after ``=``, the results file of the run that trained it, whose commit and
name are then recorded. Writes the JSON given by ``--out`` (provenance, and per checkpoint: its
recipe, seed, input size, the run that trained it, and the accuracy under each shrink).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import add_data_arg, add_threads_arg, cpu_model, provenance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT[=RESULTS_JSON]")
    add_data_arg(ap)
    ap.add_argument("--split", default="PublicTest", help="PrivateTest where the data has it")
    add_threads_arg(ap)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    from lrfer.data.augment import resize_faces
    from lrfer.data.readers import load_dataset
    from lrfer.data.transforms import predict_proba
    from lrfer.predict.classifier import FaceClassifier

    prov = provenance("bench/resize_rule.py", cpu=cpu_model(), threads=args.threads)
    faces = load_dataset(args.data).select_split(args.split).to_grayscale()
    labels = faces.labels
    x = faces.images.float() / 255
    rows = []
    for arg in args.checkpoints:
        path, _, results = arg.partition("=")
        clf = FaceClassifier.load(path, device="cpu")
        size = clf.image_size
        shrunk = {
            "area": F.interpolate(x, size=(size, size), mode="area"),
            "bilinear_antialias": resize_faces(x, (size, size)),  # lrfer's one rule, as training and inference run it
        }
        acc = {}
        for name, xs in shrunk.items():
            # Already at the model's size, so predict_proba does no resize of its own.
            probs = predict_proba(clf.model, xs, tta="flip", crop=clf.crop, device="cpu")
            acc[name] = float((probs.argmax(1) == labels).float().mean())
        config = clf.checkpoint.info.get("config", {})
        trained_by = {}
        if results:
            trained_by = {"results": results, "commit": json.loads(Path(results).read_text())["provenance"]["commit"]}
        rows.append({"checkpoint": path, "model": clf.name, "recipe": config.get("recipe", ""), "seed": config.get("seed"), "epochs": clf.checkpoint.info.get("epoch"),
                     "image_size": size, "trained_by": trained_by,
                     "accuracy": acc, "bilinear_minus_area": acc["bilinear_antialias"] - acc["area"]})
    out = {"benchmark": "resize_rule", "split": args.split, "tta": "flip", "provenance": prov, "checkpoints": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for r in rows:
        a = r["accuracy"]
        print(f"{r['checkpoint']}: area {a['area']:.2%}  bilinear antialias {a['bilinear_antialias']:.2%}")


if __name__ == "__main__":
    main()
