"""Evaluate the shipped default model on FER2013 PublicTest on this machine and write its model card.

    python bench/default_model.py [--data ../shared/data/fer2013.npz] [--split PublicTest]
    python bench/default_model.py --card-only [--check]     # rewrite (or check) from the results files

Writes bench/results/default_model/{report.json,confusion.png,sweep.json,sweep.png},
src/lrfer/assets/default/MODEL_CARD.md and the ``default-model`` block of docs/results.md. The card's
training facts come from the checkpoint itself and from TRAINING_RUN (the GPU run that trained it,
run RUN); the comparison rows of its sweep table come from the runs named in COMPARISONS. Every
number in the card is read from those files, none is typed by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import DOCS, ROOT, add_data_arg, pct, provenance, write_blocks
from lrfer.data.readers import load_dataset
from lrfer.evaluate.report import evaluate_classifier, write_report, write_sweep
from lrfer.evaluate.sweep import classifier_sweep
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

OUT = ROOT / "bench" / "results" / "default_model"
TRAINING_RUN = ROOT / "bench" / "results" / "gpu_fer2013_distill_nz.json"
RUN = "distill_nz"
PREVIOUS_RUN = ROOT / "bench" / "results" / "gpu_fer2013_default.json"  # the default until 2026-11-23, the teacher of this one
# (label, results file, run): sweeps shown under the default's in the card and the README
COMPARISONS = (
    ("same recipe without the teacher", TRAINING_RUN, "slim_nz"),
    ("previous default (its teacher)", PREVIOUS_RUN, "slim"),
    ("no degradation, no teacher", PREVIOUS_RUN, "slim_nodeg"),
)
CARD = DEFAULT_CHECKPOINT.parent / "MODEL_CARD.md"


def main() -> None:
    ap = argparse.ArgumentParser()
    add_data_arg(ap)
    ap.add_argument("--split", default="PublicTest")
    ap.add_argument("--card-only", action="store_true", help="rewrite the card and the docs table from existing results")
    ap.add_argument("--check", action="store_true", help="with --card-only: fail if the card or docs/results.md is out of date; write nothing")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    clf = FaceClassifier.load(device="cpu")
    if not (args.card_only or args.check):
        faces = clf.prepare(load_dataset(args.data).select_split(args.split))
        results = {}
        for tta in ("none", "tencrop"):
            results[tta] = evaluate_classifier(clf, faces, tta=tta, measure_latency=tta == "none")
        rep = results["none"]
        rep["tencrop"] = {k: results["tencrop"][k] for k in ("accuracy", "macro_f1", "ece")}
        rep["provenance"] = provenance("bench/default_model.py", data=args.data, split=args.split)
        write_report(rep, OUT)
        rows = classifier_sweep(clf, faces, (8, 12, 16, 24, 32, 48))
        write_sweep(rows, OUT, title=f"default model on FER2013 {args.split}")
    write_card(clf, args.check)
    write_blocks(DOCS / "results.md", {"default-model": results_table()}, args.check)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def comparison_sweeps() -> list[tuple[str, list[dict]]]:
    return [(label, json.loads(path.read_text())["runs"][run]["sweep"]) for label, path, run in COMPARISONS]


def sweep_rows(sweep: list[dict], comparisons: list[tuple[str, list[dict]]]) -> list[str]:
    sizes = [r["size"] for r in sweep]
    rows = [
        "| face size (px) | " + " | ".join(str(s) for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
        "| default model, accuracy (%) | " + " | ".join(pct(r["accuracy"]) for r in sweep) + " |",
        "| default model, macro F1 (%) | " + " | ".join(pct(r["macro_f1"]) for r in sweep) + " |",
    ]
    for label, other in comparisons:
        acc = {r["size"]: r["accuracy"] for r in other}
        rows.append(f"| {label}, accuracy (%) | " + " | ".join(pct(acc[s]) if s in acc else "" for s in sizes) + " |")
    return rows


def results_table() -> list[str]:
    """The shipped model's section of docs/results.md, from the results files."""
    rep = json.loads((OUT / "report.json").read_text())
    sweep = json.loads((OUT / "sweep.json").read_text())
    train = json.loads(TRAINING_RUN.read_text())
    prov = rep["provenance"]
    lat = rep["model"].get("cpu_latency", {})
    return ["\n".join([
        f"`resnet18_fer_slim` ({rep['model']['params'] / 1e6:.2f}M parameters, {rep['model']['size_mb']:.1f} MB), trained on FER2013 "
        f"Training with multi-resolution augmentation and distillation from a high-resolution teacher (recipe `fer2013_distill`), "
        f"selected on PublicTest. FER2013 {prov['split']}, faces degraded to each size (area down, bilinear up):",
        "",
        *sweep_rows(sweep, comparison_sweeps()),
        "",
        f"Ten-crop TTA at 48 px: {pct(rep['tencrop']['accuracy'])}% accuracy. CPU latency: "
        + ", ".join(f"{v:.2f} ms/face at batch {k.split('batch')[-1]}" for k, v in lat.items() if k.startswith("ms_per_face"))
        + f" ({lat.get('threads', '?')} threads).",
        "",
        f"Evaluated by `bench/default_model.py` on {prov['machine']} ({prov['date']}, commit `{prov['commit'][:7]}`), results in "
        "`bench/results/default_model/`; trained by `bench/gpu/train_fer2013.py` on "
        f"{train['machine'].split(' ', 1)[1]} ({train['date']}), results in `{rel(TRAINING_RUN)}` (run `{RUN}`). "
        "Model card: `src/lrfer/assets/default/MODEL_CARD.md`.",
    ])]


def calibration_lines() -> list[str]:
    """The temperature stored in the checkpoint and its effect, from bench/calibrate_default.py's results."""
    path = ROOT / "bench" / "results" / "calibration_default.json"
    if not path.exists():
        return ["- Probabilities are not temperature-calibrated (ECE above)."]
    c = json.loads(path.read_text())
    a = c["after_cross_fitted"]
    return [
        f"- Calibration: temperature {c['temperature']:.3f}, fitted on {c['split']} and stored in the checkpoint "
        f"(`bench/calibrate_default.py`, {c['provenance']['date'][:10]}). Expected calibration error {c['before']['ece']:.3f} before, "
        f"{a['ece']:.3f} after (2-fold cross-fitted; NLL {c['before']['nll']:.3f} -> {a['nll']:.3f}): the model was already calibrated",
        "  (label smoothing 0.1), so the temperature changes little.",
    ]


def write_card(clf: FaceClassifier, check: bool = False) -> None:
    rep = json.loads((OUT / "report.json").read_text())
    sweep = json.loads((OUT / "sweep.json").read_text())
    train = json.loads(TRAINING_RUN.read_text())
    info = clf.checkpoint.info
    cfg = info["config"]
    prov = rep["provenance"]
    lat = rep["model"].get("cpu_latency", {})
    lines = [
        "# Model card: lrfer default (`resnet18_fer_slim`, FER2013, multi-resolution, distilled)",
        "",
        "Generated by `bench/default_model.py` from `bench/results/default_model/*.json`,",
        f"`{rel(TRAINING_RUN)}` and `{rel(PREVIOUS_RUN)}`; do not edit by hand.",
        "",
        "## What it is",
        f"- Network: `{clf.name}`, a ResNet-18 at half width with a 3x3 stride-1 stem for 48 px faces; "
        f"{rep['model']['params'] / 1e6:.2f}M parameters, {rep['model']['size_mb']:.1f} MB (fp32 safetensors).",
        f"- Input: grayscale face crop resized to {clf.image_size} px, centre crop {clf.crop} px. Output: {', '.join(clf.classes)}.",
        "- Weights are the EMA weights of the best PublicTest epoch; loading reads safetensors and runs no code from the file.",
        "",
        "## How it was trained",
        "- Recipe `fer2013_distill` (`src/lrfer/recipes/fer2013_distill.toml`; the run read it under the name "
        f"`{cfg['recipe']}` from `bench/gpu/recipes/` at commit `{train['commit']}`, the same settings): {cfg['epochs']} epochs, {cfg['optimizer']} lr {cfg['lr']}, "
        f"batch {cfg['batch_size']}, {cfg['schedule']} schedule, label smoothing {cfg['label_smoothing']}, EMA {cfg['ema_decay']}; "
        f"augmentation: flip, rotation {cfg['augment']['rotate']} deg, scale {cfg['augment']['scale']}, shift {cfg['augment']['translate']}, "
        f"crop {cfg['augment']['crop']}, random erasing p={cfg['augment']['erase_p']}, **resolution degradation p={cfg['augment']['degrade_p']} "
        f"to a random size in [{cfg['augment']['degrade_min']}, {cfg['augment']['degrade_max']}] px** (area down, bilinear up); "
        f"mixup alpha {cfg.get('mixup_alpha', 0)} on {cfg.get('mix_p', 1):.0%} of the batches; residual blocks {'not ' if not cfg['model_kwargs'].get('zero_init_residual', True) else ''}zero-initialised.",
        f"- **Distillation**: a frozen teacher, the previous default (trained by `fer2013_multires` with zero-init, "
        f"`{rel(PREVIOUS_RUN)}`), sees each batch before the degradation; the student learns cross-entropy + "
        f"{cfg['distill_weight']} x KL at temperature {cfg['distill_temperature']} to the teacher's logits.",
        f"- Command: `lrfer train --recipe fer2013_distill --teacher <previous default> --data fer2013.npz` (seed {cfg['seed']}), "
        f"run by `bench/gpu/train_fer2013.py` on {train['machine'].split(' ', 1)[1]}, {train['date']}, commit `{train['commit']}`; "
        f"{train['runs'][RUN]['train_seconds']:.0f} s of training beside three other jobs. Best epoch: {info['epoch']}.",
        "- Data: FER2013 Training (28,709 faces); selected on PublicTest (3,589). PrivateTest was not used.",
        "",
        f"## Results on FER2013 {prov['split']} (this machine: {prov['machine']}, {prov['date']}, commit `{prov['commit'][:7]}`)",
        "",
        "| | accuracy | macro F1 | ECE |",
        "|---|---:|---:|---:|",
        f"| single centre crop | {pct(rep['accuracy'])} | {pct(rep['macro_f1'])} | {rep['ece']:.3f} |",
        f"| ten-crop TTA | {pct(rep['tencrop']['accuracy'])} | {pct(rep['tencrop']['macro_f1'])} | {rep['tencrop']['ece']:.3f} |",
        "",
        "Resolution sweep (faces area-down-sampled to N px, then bilinear back to 48):",
        "",
        *sweep_rows(sweep, comparison_sweeps()),
        "",
        "(The comparison rows were trained on the same GPU and swept there by `lrfer sweep`, the same degradation and",
        "centre view: " + "; ".join(f"{label}: `{rel(path)}`, run `{run}`" for label, path, run in COMPARISONS) + ".)",
        "",
        "![sweep](../../../../bench/results/default_model/sweep.png)",
        "",
        f"CPU latency (fp32, {lat.get('threads', '?')} threads): "
        + ", ".join(f"batch {k.split('batch')[-1]}: {v:.2f} ms/face" for k, v in lat.items() if k.startswith("ms_per_face")),
        "",
        "## Limits",
        "- FER2013 faces are Internet photos of mostly adults; accuracy on elderly faces, other cameras and",
        "  other cultures is not measured here. Disgust has 436 training faces and the weakest recall.",
        *calibration_lines(),
        "",
    ]
    text = "\n".join(lines)
    if check and CARD.read_text() != text:
        raise SystemExit(f"{rel(CARD)} is out of date: run python bench/default_model.py --card-only")
    if not check:
        CARD.write_text(text)


if __name__ == "__main__":
    main()
