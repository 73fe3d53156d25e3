"""The default model under PyTorch, ONNX Runtime (float) and ONNX Runtime (int8): accuracy on
FER2013 PublicTest at 48 px, and faces/s at batch 1 and 256 on this CPU.

    python bench/onnx_int8_accuracy.py [--data ../shared/data/fer2013.npz] [--threads N]

The default model is exported to a temporary folder, then quantized (static QDQ, per-channel)
with 512 random Training faces as calibration data. All three backends get the same uint8 48 px
faces through their ``predict_proba`` (the shared preprocessing included), so speeds are
end-to-end per face, without TTA. The float and int8 exports are also scored on the faces shrunk to
32, 24, 16, 12 and 8 px (the README's sizes), to see whether int8 holds on small faces. Batch-256 speed is timed over the whole split (the accuracy
pass, after one warm-up batch); batch-1 speed over 300 single faces after 20 warm-up calls.

Writes bench/results/onnx_default.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from _common import ROOT, add_data_arg, cpu_model
from _common import provenance as shared_provenance
from lrfer.data.augment import degrade
from lrfer.data.readers import load_dataset
from lrfer.evaluate.metrics import classification_report
from lrfer.export import export_onnx, quantize_int8
from lrfer.infer.backends import OnnxClassifier
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

OUT = ROOT / "bench" / "results" / "onnx_default.json"
CALIBRATION_FACES = 512
SINGLE_FACES = 300


def provenance(data: str, threads: dict) -> dict:
    return shared_provenance(
        "bench/onnx_int8_accuracy.py",
        machine=f"{platform.node()} {platform.machine()} {cpu_model()}, {os.cpu_count()} cpus",
        software=f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, python {platform.python_version()}",
        threads=threads,
        data=data,
    )


def faces_per_second_single(clf, images: torch.Tensor) -> float:
    for i in range(20):
        clf.predict_proba(images[i : i + 1])
    start = time.perf_counter()
    for i in range(SINGLE_FACES):
        clf.predict_proba(images[i : i + 1])
    return SINGLE_FACES / (time.perf_counter() - start)


def run(clf, images: torch.Tensor, labels: torch.Tensor, classes) -> tuple[torch.Tensor, dict]:
    clf.predict_proba(images[:256], batch_size=256)  # warm-up: allocations, onnxruntime's first run
    start = time.perf_counter()
    probs = torch.as_tensor(clf.predict_proba(images, batch_size=256))  # the ONNX runtime answers in numpy
    batch_fps = len(images) / (time.perf_counter() - start)
    rep = classification_report(labels, probs.argmax(-1), classes)
    return probs, {
        "accuracy": rep["accuracy"],
        "macro_f1": rep["macro_f1"],
        "faces_per_s_batch256": batch_fps,
        "faces_per_s_batch1": faces_per_second_single(clf, images),
    }


#: Face sizes of the README's table: the test faces area-shrunk to each and bilinear back up
#: (lrfer.data.augment.degrade, the suite's protocol), then fed to each ONNX model as float.
SIZES = (48, 32, 24, 16, 12, 8)


def accuracy_by_size(backends: dict, test) -> dict:
    """Accuracy of the float and int8 exports at each of :data:`SIZES`: whether int8 holds on small faces."""
    out: dict = {}
    for size in SIZES:
        x = test.images.float() / 255
        x = (degrade(x, size) if size < x.shape[-1] else x).numpy()
        for name in ("onnx_float", "onnx_int8"):
            pred = torch.as_tensor(backends[name].predict_proba(x, batch_size=256)).argmax(-1)
            out.setdefault(name, {})[str(size)] = float((pred == test.labels).float().mean())
        print(f"{size:2d} px: float {out['onnx_float'][str(size)]:.4f}  int8 {out['onnx_int8'][str(size)]:.4f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    add_data_arg(ap)
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--threads", type=int, default=None, help="torch and onnxruntime intra-op threads (default: each library's own)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = {"torch": torch.get_num_threads(), "onnxruntime": args.threads or "default (one per physical core)", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}

    torch_clf = FaceClassifier.load(device="cpu")
    data = load_dataset(args.data)
    test = torch_clf.prepare(data.select_split(args.split))
    train = data.select_split("Training")
    rng = np.random.default_rng(args.seed)
    calib = train.images[torch.from_numpy(np.sort(rng.choice(len(train), CALIBRATION_FACES, replace=False)))]

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="lrfer-onnx-bench-") as tmp:
        t0 = time.perf_counter()
        f32 = export_onnx(torch_clf, Path(tmp) / "default.onnx")
        export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        i8 = quantize_int8(f32, Path(tmp) / "default_int8.onnx", calib.numpy())
        quantize_s = time.perf_counter() - t0
        backends = {
            "torch": torch_clf,
            "onnx_float": OnnxClassifier.load(f32, threads=args.threads),
            "onnx_int8": OnnxClassifier.load(i8, threads=args.threads),
        }
        sizes = {"torch": DEFAULT_CHECKPOINT.stat().st_size, "onnx_float": f32.stat().st_size, "onnx_int8": i8.stat().st_size}
        by_size = accuracy_by_size(backends, test)
        probs = {}
        for name, clf in backends.items():
            probs[name], results[name] = run(clf, test.images, test.labels, test.classes)
            results[name]["file_mb"] = sizes[name] / 2**20
            print(f"{name:11s} accuracy {results[name]['accuracy']:.4f}  {results[name]['faces_per_s_batch1']:8.1f} faces/s at batch 1  "
                  f"{results[name]['faces_per_s_batch256']:8.1f} at batch 256  {results[name]['file_mb']:.1f} MB")  # fmt: skip

    top = {k: p.argmax(-1) for k, p in probs.items()}
    out = {
        "provenance": provenance(args.data, threads),
        "model": torch_clf.name,
        "temperature": torch_clf.temperature,
        "split": args.split,
        "n": len(test),
        "face_size": torch_clf.image_size,
        "tta": "none",
        "calibration_faces": {"split": "Training", "n": CALIBRATION_FACES, "seed": args.seed},
        "export_s": export_s,
        "quantize_s": quantize_s,
        "backends": results,
        "accuracy_by_size": by_size,
        "agreement": {
            "onnx_float_vs_torch_max_abs_prob_diff": float((probs["onnx_float"] - probs["torch"]).abs().max()),
            "onnx_float_vs_torch_top1": float((top["onnx_float"] == top["torch"]).float().mean()),
            "onnx_int8_vs_onnx_float_top1": float((top["onnx_int8"] == top["onnx_float"]).float().mean()),
            "onnx_int8_vs_onnx_float_max_abs_prob_diff": float((probs["onnx_int8"] - probs["onnx_float"]).abs().max()),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
