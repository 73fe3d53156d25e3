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
from ferplus_ft import config_name
from lrfer.data.readers import load_dataset
from lrfer.evaluate.report import evaluate_classifier, write_report, write_sweep
from lrfer.evaluate.sweep import classifier_sweep
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier
from readings import OUT as READINGS
from readings import table as readings_table

OUT = ROOT / "bench" / "results" / "default_model"
# The default is trained in two stages: on a GPU (the run below; the default until 2026-12-05), then
# fine-tuned on a CPU towards FERPlus's votes (bench/ferplus_ft.py, whose results keep the first
# stage's config, since that checkpoint no longer ships).
FINETUNE = ROOT / "bench" / "results" / "ferplus_ft.json"
TRAINING_RUN = ROOT / "bench" / "results" / "gpu_fer2013_distill_nz.json"  # the GPU stage
RUN = "distill_nz"
PREVIOUS_RUN = ROOT / "bench" / "results" / "gpu_fer2013_default.json"  # the default until 2026-11-23, the GPU stage's teacher
# (label, results file, run): sweeps shown under the default's in the card and the README
COMPARISONS = (
    ("GPU stage without the teacher", TRAINING_RUN, "slim_nz"),
    ("the GPU stage's teacher", PREVIOUS_RUN, "slim"),
    ("no degradation, no teacher", PREVIOUS_RUN, "slim_nodeg"),
)
ROBUSTNESS = ROOT / "bench" / "results" / "robustness"
GPU_STAGE_NAME = "lrfer_gpu_default"  # the GPU stage in the robustness results (bench/robustness.py --checkpoint)
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
    write_blocks(DOCS / "results.md", {"default-model": results_table(clf)}, args.check)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def finetune(clf: FaceClassifier) -> tuple[dict, dict, dict]:
    """(bench/ferplus_ft.py's results, the shipped model's entry in them, the GPU stage's entry)."""
    doc = json.loads(FINETUNE.read_text())
    key = config_name(clf.checkpoint.info["config"])
    if key not in doc["models"]:
        raise SystemExit(f"{rel(FINETUNE)} has no candidate {key}, the shipped model's weight: run python bench/ferplus_ft.py")
    return doc, doc["models"][key], doc["models"]["base"]


def comparison_sweeps(base: dict) -> list[tuple[str, list[dict]]]:
    gpu_stage = ("GPU stage alone (the default until 2026-12-05)", base["scores"]["publictest"])
    return [gpu_stage] + [(label, json.loads(path.read_text())["runs"][run]["sweep"]) for label, path, run in COMPARISONS]


def _robust_row(doc: dict, model: str, size: int) -> dict:
    return next(r for r in doc["results"][model]["sweep"] if r["size"] == size)


def robustness_lines() -> list[str]:
    """The robustness suite (docs/trust.md) for the shipped model and its GPU stage, from bench/robustness.py's results."""
    rows = [("ferplus_majority", "FERPlus majority labels: accuracy / macro F1", (48, 16), "accuracy"),
            ("ckplus", "CK+ (its held-out subjects): accuracy / macro F1", (48, 16), "accuracy"),
            ("ckplus_photos", "CK+ held-out subjects in whole photos, end to end: accuracy", (48, 17), "photos"),
            ("calm", "calm in-the-wild faces: neutral recall", (64, 16), "neutral_recall"),
            ("calm", "calm in-the-wild faces: neutral read as negative", (64, 16), "neutral_read_negative"),
            ("fer2013", "FER2013 PublicTest: negative faces read as negative", (48, 16), "negative_read_negative")]  # fmt: skip
    lines = ["| set (sizes) | this model | GPU stage alone |", "|---|---:|---:|"]
    dates = set()
    for key, label, sizes, field in rows:
        doc = json.loads((ROBUSTNESS / f"{key}.json").read_text())
        dates.add((doc["provenance"]["date"][:10], doc["provenance"]["commit"][:7]))
        cells = []
        for model in ("lrfer_default", GPU_STAGE_NAME):
            vals = []
            for size in sizes:
                r = _robust_row(doc, model, size)
                vals.append(f"{pct(r['accuracy'])} / {pct(r['macro_f1'])}" if field == "accuracy" else pct(r["accuracy"] if field == "photos" else r[field]))
            cells.append(" , ".join(vals))
        lines.append(f"| {label} ({' and '.join(f'{z} px' for z in sizes)}) | {cells[0]} | {cells[1]} |")
    runs = "; ".join(f"{d}, commit `{c}`" for d, c in sorted(dates))
    return [*lines, "", f"Values in %; from `bench/robustness.py` ({runs}), results in `bench/results/robustness/`, every table and the peers in `docs/trust.md`."]


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


def results_table(clf: FaceClassifier) -> list[str]:
    """The shipped model's section of docs/results.md, from the results files."""
    rep = json.loads((OUT / "report.json").read_text())
    sweep = json.loads((OUT / "sweep.json").read_text())
    train = json.loads(TRAINING_RUN.read_text())
    ft, cand, base = finetune(clf)
    tb = cand.get("trained_by", ft["provenance"])  # the run that trained the shipped candidate
    prov = rep["provenance"]
    lat = rep["model"].get("cpu_latency", {})
    w = cand["soft_label_weight"]
    return ["\n".join([
        f"`resnet18_fer_slim` ({rep['model']['params'] / 1e6:.2f}M parameters, {rep['model']['size_mb']:.1f} MB), trained on FER2013 "
        f"Training in two stages: on a GPU with multi-resolution augmentation and distillation from a high-resolution teacher "
        f"(recipe `fer2013_distill`), then fine-tuned on a CPU for {cand['epochs']} epochs on FER2013's labels blended {w:g} with the "
        f"FERPlus votes{mixed_in(cand['config'])} (recipe `fer2013_ferplus_ft`, docs/trust.md section 8); selected on PublicTest. FER2013 {prov['split']}, "
        "faces degraded to each size (area down, bilinear up):",
        "",
        *sweep_rows(sweep, comparison_sweeps(base)),
        "",
        f"Ten-crop TTA at 48 px: {pct(rep['tencrop']['accuracy'])}% accuracy. CPU latency: "
        + ", ".join(f"{v:.2f} ms/face at batch {k.split('batch')[-1]}" for k, v in lat.items() if k.startswith("ms_per_face"))
        + f" ({lat.get('threads', '?')} threads).",
        "",
        f"Evaluated by `bench/default_model.py` on {prov['machine']} ({prov['date']}, commit `{prov['commit'][:7]}`), results in "
        "`bench/results/default_model/`; GPU stage trained by `bench/gpu/train_fer2013.py` on "
        f"{train['machine'].split(' ', 1)[1]} ({train['date']}), results in `{rel(TRAINING_RUN)}` (run `{RUN}`); fine-tuned by "
        f"`bench/ferplus_ft.py` on {tb['machine']} ({tb['date']}, commit `{tb['commit'][:7]}`), "
        f"results in `{rel(FINETUNE)}`. Model card: `src/lrfer/assets/default/MODEL_CARD.md`.",
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
        f"{a['ece']:.3f} after (2-fold cross-fitted; NLL {c['before']['nll']:.3f} -> {a['nll']:.3f}): " + _temperature_effect(c["temperature"]),
    ]


def _temperature_effect(t: float) -> str:
    if t < 0.95:
        return "a temperature below 1 sharpens the probabilities\n  (the vote distributions among the targets leave the model less confident than it is right)."
    if t > 1.05:
        return "a temperature above 1 softens the probabilities\n  (the model was more confident than it is right)."
    return "the model was already calibrated\n  (label smoothing 0.1), so the temperature changes little."


def gpu_stage_lines(base_cfg: dict, base_epoch: int, train: dict) -> list[str]:
    """How the GPU stage was trained, from its config (kept in bench/results/ferplus_ft.json) and its run's results."""
    cfg, aug = base_cfg, base_cfg["augment"]
    return [
        f"1. **On a GPU** (the default from 2026-11-23 to 2026-12-05): recipe `fer2013_distill` (`src/lrfer/recipes/fer2013_distill.toml`; "
        f"the run read it under the name `{cfg['recipe']}` from `bench/gpu/recipes/` at commit `{train['commit']}`, the same settings): "
        f"{cfg['epochs']} epochs, {cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}, {cfg['schedule']} schedule, label smoothing "
        f"{cfg['label_smoothing']}, EMA {cfg['ema_decay']}; augmentation: flip, rotation {aug['rotate']} deg, scale {aug['scale']}, shift "
        f"{aug['translate']}, crop {aug['crop']}, random erasing p={aug['erase_p']}, **resolution degradation p={aug['degrade_p']} to a random "
        f"size in [{aug['degrade_min']}, {aug['degrade_max']}] px** (area down, bilinear up); mixup alpha {cfg.get('mixup_alpha', 0)} on "
        f"{cfg.get('mix_p', 1):.0%} of the batches; residual blocks {'not ' if not cfg['model_kwargs'].get('zero_init_residual', True) else ''}zero-initialised.",
        f"   **Distillation**: a frozen teacher (trained by `fer2013_multires` with zero-init, `{rel(PREVIOUS_RUN)}`) sees each batch before "
        f"the degradation; the student learns cross-entropy + {cfg['distill_weight']} x KL at temperature {cfg['distill_temperature']} to "
        f"the teacher's logits. Run by `bench/gpu/train_fer2013.py` on {train['machine'].split(' ', 1)[1]}, {train['date']}, commit "
        f"`{train['commit']}`; {train['runs'][RUN]['train_seconds']:.0f} s of training beside three other jobs. Best epoch: {base_epoch}.",
    ]


def mixed_in(cfg: dict) -> str:
    """", with ... mixed in" for a run that trained with another set beside FER2013 (``extra_train``), else ""."""
    if not cfg.get("extra_train"):
        return ""
    held = cfg.get("extra_train_holdout", 2)
    return (f", with the faces of {Path(cfg['extra_train']).name} mixed in, each {cfg.get('extra_train_repeat', 1)} times an epoch, from "
            f"{'all its subjects' if not held else f'the subjects outside fold 0 of {held} (the rest held out for evaluation)'}")  # fmt: skip


def finetune_lines(ft: dict, cand: dict) -> list[str]:
    """How the CPU stage was trained, from bench/ferplus_ft.py's results."""
    cfg, aug, p = cand["config"], cand["config"]["augment"], cand.get("trained_by", ft["provenance"])
    w = cfg["soft_label_weight"]
    return [
        f"2. **Fine-tuned on a CPU** (issue 27; `docs/trust.md` section 8): recipe `{cfg['recipe']}` from the GPU stage's weights "
        f"(sha256 `{ft['provenance']['base_sha256'][:12]}`), every layer, targets ({1 - w:g} x FER2013's label + {w:g} x the face's FERPlus votes over "
        f"the same 7 classes){mixed_in(cfg)}, {cand['epochs']} epochs, {cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}, {cfg['schedule']} schedule, "
        f"label smoothing {cfg['label_smoothing']}, EMA {cfg['ema_decay']}, the same augmentation with degradation p={aug['degrade_p']}; "
        f"{cand['train_seconds'] / 60:.0f} min on {p['machine']}, {p['date']}, commit `{p['commit'][:7]}` (`{p['command']}`). "
        f"Best epoch: {cand['best_epoch']}.",
    ]


def write_card(clf: FaceClassifier, check: bool = False) -> None:
    rep = json.loads((OUT / "report.json").read_text())
    sweep = json.loads((OUT / "sweep.json").read_text())
    train = json.loads(TRAINING_RUN.read_text())
    ft, cand, base = finetune(clf)
    prov = rep["provenance"]
    lat = rep["model"].get("cpu_latency", {})
    lines = [
        "# Model card: lrfer default (`resnet18_fer_slim`, FER2013 with FERPlus votes"
        + (", CK+ posed faces" if cand["config"].get("extra_train") else "") + ", multi-resolution)",
        "",
        "Generated by `bench/default_model.py` from `bench/results/default_model/*.json`, "
        f"`{rel(FINETUNE)}`,",
        f"`{rel(TRAINING_RUN)}`, `{rel(PREVIOUS_RUN)}`, `bench/results/robustness/*.json` and `{rel(READINGS)}`; do not edit by hand.",
        "",
        "## What it is",
        f"- Network: `{clf.name}`, a ResNet-18 at half width with a 3x3 stride-1 stem for 48 px faces; "
        f"{rep['model']['params'] / 1e6:.2f}M parameters, {rep['model']['size_mb']:.1f} MB (fp32 safetensors).",
        f"- Input: grayscale face crop resized to {clf.image_size} px, centre crop {clf.crop} px. Output: {', '.join(clf.classes)}.",
        "- Weights are the EMA weights of the best PublicTest epoch; loading reads safetensors and runs no code from the file.",
        "",
        "## How it was trained",
        *gpu_stage_lines(base["config"], base["best_epoch"], train),
        *finetune_lines(ft, cand),
        "- Data: FER2013 Training (28,709 faces) and their FERPlus votes"
        + (" and half of CK+48's subjects (the CK+ rows below score the other half)" if cand["config"].get("extra_train") else "")
        + "; selected on PublicTest (3,589). PrivateTest was not used; the calm in-the-wild set was only read, never trained or selected on.",
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
        *sweep_rows(sweep, comparison_sweeps(base)),
        "",
        "(The GPU stage alone: swept on this machine by `bench/ferplus_ft.py`. The other comparison rows were trained on the same GPU "
        "and swept there by `lrfer sweep`, the same degradation and centre view: "
        + "; ".join(f"{label}: `{rel(path)}`, run `{run}`" for label, path, run in COMPARISONS) + ".)",
        "",
        "![sweep](../../../../bench/results/default_model/sweep.png)",
        "",
        f"CPU latency (fp32, {lat.get('threads', '?')} threads): "
        + ", ".join(f"batch {k.split('batch')[-1]}: {v:.2f} ms/face" for k, v in lat.items() if k.startswith("ms_per_face")),
        "",
        "## Beyond FER2013: the robustness suite",
        "",
        *robustness_lines(),
        "",
        "## Readings (`--reading`)",
        "",
        "Besides its own head the model carries two more, fitted on its frozen embeddings with the FERPlus crowd's votes "
        "(`tools/default_readings.py`; docs/trust.md section 10): `half` and `crowd` read calm faces as neutral more often and miss more distress.",
        "",
        "\n\n".join(readings_table(json.loads(READINGS.read_text()))),
        "",
        "## Limits",
        "- FER2013 faces are Internet photos of mostly adults; accuracy on elderly faces, other cameras and",
        "  other cultures is not measured here. Disgust has 436 training faces and the weakest recall.",
        "- Calm faces: the fine-tuning reads far fewer calm in-the-wild neutral faces as negative than the GPU stage did, but",
        "  still many (table above); for a place of calm faces, add a deployment prior and abstention (`docs/trust.md`).",
        "- Distress caught: it also reads fewer truly negative faces as negative than the GPU stage did, most on small faces",
        "  (the last row above): the votes call some of FER2013's sad and angry faces neutral, and it learnt that.",
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
