"""Write the inference, peer-comparison and CPU-recipe results into README.md and docs/results.md
from the benchmark results files (no number typed by hand).

    python bench/inference_tables.py [--check]

Blocks written (``<!-- name:start -->`` ... ``<!-- name:end -->``):

- README.md ``results``: the shipped model and the installable peers on FER2013 PublicTest against
  face size, from ``bench/results/suite/fer2013.json`` (``bench/suite.py``);
- docs/results.md ``suite``: the same for every set of ``bench/results/suite/*.json``;
- docs/results.md ``inference``: ``bench/results/{video_fps,onnx_default,photos_vs_fer,calibration_default}.json``
  (``bench/video_fps.py``, ``bench/onnx_int8_accuracy.py``, ``bench/photos_vs_fer.py``, ``bench/calibrate_default.py``);
- docs/results.md ``cpu-recipe``: every ``bench/results/cpu_recipe_*.json`` (``bench/cpu_recipe.py``).

A missing results file leaves its table out.
"""

from __future__ import annotations

import json
from pathlib import Path

from _common import DOCS, README, RESULTS, ROOT, check_flag, pct, write_blocks
from _common import load_result as load
from _common import source_line as provenance

SUITE_SETS = ("fer2013", "ferplus", "ferplus_majority", "ckplus")


def video_table(r: dict) -> list[str]:
    lines = [f"End to end on a {r['video']} video (decode, detection on every frame, crop, classify, track, smooth):", ""]
    lines += ["| configuration | frames/s (median) | passes |", "|---|---:|---|"]
    lines += [f"| {row['config']} | {row['fps']:.1f} | {', '.join(f'{x:.1f}' for x in row.get('fps_runs', [row['fps']]))} |" for row in r["results"]]
    stages = r["results"][0].get("stage_ms_per_frame")
    if stages:
        lines += ["", "Time per frame of each stage, default configuration: " + ", ".join(f"{k} {v:.1f} ms" for k, v in stages.items()) + "."]
    return lines + ["", f"From {provenance(r)}."]


def onnx_table(r: dict) -> list[str]:
    b = r["backends"]
    names = {"torch": "PyTorch (fp32)", "onnx_float": "ONNX Runtime (fp32)", "onnx_int8": "ONNX Runtime (int8, static QDQ)"}
    lines = [f"The default model on FER2013 {r['split']} ({r['n']} faces, {r['face_size']} px):", ""]
    lines += ["| runtime | accuracy (%) | faces/s, batch 1 | faces/s, batch 256 | file (MB) |", "|---|---:|---:|---:|---:|"]
    lines += [
        f"| {names[k]} | {100 * v['accuracy']:.1f} | {v['faces_per_s_batch1']:.0f} | {v['faces_per_s_batch256']:.0f} | {v['file_mb']:.1f} |"
        for k, v in b.items()
    ]
    a = r["agreement"]
    lines += ["", f"ONNX fp32 against PyTorch: largest probability difference {a['onnx_float_vs_torch_max_abs_prob_diff']:.1e}; int8 agrees with fp32 on {100 * a['onnx_int8_vs_onnx_float_top1']:.1f}% of top-1 labels."]
    by_size = r.get("accuracy_by_size")
    if by_size:
        sizes = list(by_size["onnx_float"])
        lines += ["", "Accuracy (%) with the test faces shrunk to each size (area down, bilinear back up):", ""]
        lines += ["| runtime | " + " | ".join(f"{px} px" for px in sizes) + " |", "|---|" + "---:|" * len(sizes)]
        lines += [f"| {names[k]} | " + " | ".join(f"{100 * v[px]:.1f}" for px in sizes) + " |" for k, v in by_size.items()]
    return lines + ["", f"From {provenance(r)}."]


def photos_table(r: dict) -> list[str]:
    rows = r["results"]
    sizes = sorted({x["face_px"] for x in rows}, reverse=True)
    pipes = list(dict.fromkeys(x["pipeline"] for x in rows))
    out = []
    for ds in dict.fromkeys(x["dataset"] for x in rows):
        out += [f"{ds}: faces found (recall) and read correctly (accuracy over all pasted faces), in % ({rows[0]['faces']} faces per size):", ""]
        out += ["| pipeline | " + " | ".join(f"{s} px found / correct" for s in sizes) + " |", "|---|" + "---:|" * len(sizes)]
        for p in pipes:
            cells = []
            for s in sizes:
                x = next((x for x in rows if x["dataset"] == ds and x["pipeline"] == p and x["face_px"] == s), None)
                cells.append(f"{100 * x['recall']:.0f} / {100 * x['accuracy_all']:.0f}" if x else "")
            out.append(f"| {p} | " + " | ".join(cells) + " |")
        out.append("")
    return out + [f"Photos: {r['photo']}, made at run time from the test faces. From {provenance(r)}."]


def calibration_line(r: dict) -> list[str]:
    a = r["after_cross_fitted"]
    return [
        f"Calibration: temperature {r['temperature']:.3f} fitted on {r['split']}; expected calibration error "
        f"{100 * r['before']['ece']:.1f}% before, {100 * a['ece']:.1f}% after (2-fold cross-fitted). From {provenance(r)}."
    ]


def suite_table(r: dict, name: str) -> list[str]:
    """One evaluation set of ``bench/suite.py``: a row per model, a column per face size."""
    sizes = sorted({row["size"] for m in r["results"].values() for row in m["sweep"]}, reverse=True)
    out = [f"**{r['title']}**: accuracy (%) with faces degraded to each size", ""]
    out += ["| model | " + " | ".join(f"{s} px" for s in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for model, m in r["results"].items():
        acc = {row["size"]: row["accuracy"] for row in m["sweep"]}
        out.append(f"| {model} | " + " | ".join(f"{100 * acc[s]:.1f}" if s in acc else "" for s in sizes) + " |")
    return out + ["", f"Protocol and per-model class coverage: `bench/results/suite/{name}.json`. From {provenance(r)}.", ""]


def suite_tables() -> list[str]:
    out = []
    for name in SUITE_SETS:
        r = load(f"suite/{name}.json")
        if r is not None:
            out += suite_table(r, name)
    return out


def flat_settings(config: dict) -> dict:
    """A training config with its tables (augment, model_kwargs) flattened to ``table.key``."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update({f"{k}.{k2}": v2 for k2, v2 in v.items()})
        else:
            out[k] = v
    return out


def config_differences(config: dict, reference: dict) -> str:
    """The settings where ``config`` differs from ``reference``, as ``key=value``.

    A setting a results file lacks did not exist when it was written: it had the default value.
    """
    from lrfer.train.config import TrainConfig

    defaults = flat_settings(TrainConfig().to_dict())
    ours, ref = flat_settings(config), flat_settings(reference)
    skip = {"recipe", "paper.title", "paper.reported", "device"}  # device: where it ran, not what it trains
    keys = sorted(k for k in {*ours, *ref} if k not in skip and ours.get(k, defaults.get(k)) != ref.get(k, defaults.get(k)))
    return ", ".join(f"`{k}={ours.get(k, defaults.get(k))}`" for k in keys) or "none"


def cpu_recipe_lines() -> list[str]:
    """The 30-minute CPU recipe (``bench/cpu_recipe.py``): time, sweep, goals of each shipped CPU
    recipe's results file, then one row per kept run of another version of it (the settings that
    differ read from the files' configs)."""
    out = []
    runs = {f: json.loads(f.read_text()) for f in sorted(RESULTS.glob("cpu_recipe_*.json"))}
    current = {f: name for f, r in runs.items() if (name := results_recipe(f, r))}
    met = lambda ok: "met" if ok else "**not met**"
    for f, name in current.items():
        r = runs[f]
        g = r["goals"]
        sizes = sorted({row["size"] for rows in r["sweep"].values() for row in rows}, reverse=True)
        run_as = "" if name == r["recipe"] else f" (run as `{r['recipe']}` with these settings given by `--set`)"
        out += [
            f"`{name}`{run_as}: {r['epochs']} epochs in **{r['train_seconds'] / 60:.1f} minutes** of training on "
            f"{r['provenance']['threads']} threads of {r['provenance']['cpu']} (goal {g['minutes']:.0f}: {met(g['met_minutes'])}); "
            f"accuracy (%) with faces degraded to each size, {r['tta']} TTA:",
            "",
            "| split | " + " | ".join(f"{s} px" for s in sizes) + " |",
            "|---|" + "---:|" * len(sizes),
        ]
        for split, rows in r["sweep"].items():
            acc = {row["size"]: row["accuracy"] for row in rows}
            out.append(f"| {split} | " + " | ".join(f"{100 * acc[s]:.1f}" if s in acc else "" for s in sizes) + " |")
        out += [
            "",
            f"Goals: >= {100 * g['acc_48']:.0f}% at 48 px ({met(g['met_acc_48'])}), >= {100 * g['acc_16']:.0f}% at 16 px "
            f"({met(g['met_acc_16'])}). From {provenance(r)}; curves and sweep: `{f.with_suffix('').relative_to(ROOT)}_{{curves,sweep}}.png`.",
            "",
        ]
    others = [(f, r) for f, r in runs.items() if f not in current]
    if others:
        base = {name: runs[f] for f, name in current.items()}
        sizes = sorted({row["size"] for _, r in others for row in r["sweep"]["PublicTest"]}, reverse=True)
        out += [
            "Other versions of these recipes, each run the same way at its own commit (settings that differ from its recipe's results above; PublicTest accuracy, %):",
            "",
            "| results file | recipe | settings that differ | epochs | minutes | " + " | ".join(f"{s} px" for s in sizes) + " | commit, date |",
            "|---|---|---|---:|---:|" + "---:|" * len(sizes) + "---|",
        ]
        for f, r in others:
            ref = base.get(r["recipe"])
            changes = config_differences(r["config"], ref["config"]) if ref else f"recipe `{r['recipe']}` (no results file of its current version)"
            epochs = r["epochs"]
            if "members" in r:  # an ensemble (bench/cpu_recipe.py --members N): its accuracy is the members' mean
                n = len(r["members"])
                changes = f"an ensemble of {n} (seeds {', '.join(str(m['seed']) for m in r['members'])}), each on 1/{n} of the budget" + (
                    "" if changes == "none" else f"; {changes}"
                )
                epochs = " + ".join(str(m["epochs"]) for m in r["members"])
            acc = {row["size"]: row["accuracy"] for row in r["sweep"]["PublicTest"]}
            p = r["provenance"]
            out.append(
                f"| `{f.name}` | `{r['recipe']}` | {changes} | {epochs} | {r['train_seconds'] / 60:.1f} | "
                + " | ".join(pct(acc.get(s)) for s in sizes)
                + f" | `{p['commit'][:7]}`, {p['date'][:10]} |"
            )
        out.append("")
    return out


def results_recipe(f: Path, r: dict) -> str | None:
    """The shipped recipe whose results file ``f`` is (``cpu_recipe_<recipe>.json``), or None.

    A file is its recipe's when it was run as that recipe, or as another with ``--set`` overrides
    that make exactly its settings (a recipe written down after a run that tried it).
    """
    from lrfer.train.config import list_recipes, load_config

    name = f.stem.removeprefix("cpu_recipe_")
    if name == r["recipe"]:
        return name
    if name not in list_recipes():
        return None
    recipe_config = json.loads(json.dumps(load_config(name).to_dict()))  # tuples as the files' lists
    return name if config_differences(r["config"], recipe_config) == "none" else None


def main() -> None:
    check = check_flag()
    blocks = []
    for name, fn in (("video_fps.json", video_table), ("onnx_default.json", onnx_table), ("photos_vs_fer.json", photos_table), ("calibration_default.json", calibration_line)):
        r = load(name)
        if r is not None:
            blocks.append("\n".join(fn(r)))
    fer2013 = load("suite/fer2013.json")
    readme = ["\n".join(suite_table(fer2013, "fer2013")).strip()] if fer2013 else ["No results file yet: run `python bench/suite.py`."]
    write_blocks(README, {"results": readme}, check)
    write_blocks(DOCS / "results.md", {
        "suite": ["\n".join(suite_tables()).strip()],
        "inference": blocks,
        "cpu-recipe": ["\n".join(cpu_recipe_lines()).strip() or "No results file yet."],
    }, check)  # fmt: skip


if __name__ == "__main__":
    main()
