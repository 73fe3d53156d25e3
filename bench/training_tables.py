"""Write the README's table of FER2013 training runs on the GPU (issue 5's experiments) from their results files.

Reads every ``bench/results/gpu_fer2013_*.json`` (``bench/gpu/train_fer2013.py``) and, when present,
``bench/results/ensemble_fer2013.json`` (``bench/ensemble_fer2013.py``), and replaces the block
between ``<!-- gpu-runs:start -->`` and ``<!-- gpu-runs:end -->`` in README.md. Only the runs of the
default's family (recipes ``fer2013_*``) are listed; the published methods' runs are in
docs/methods.md (``bench/methods_tables.py``).

    python bench/training_tables.py
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "gpu"))
from inference_tables import pct, replace_block  # noqa: E402
from train_fer2013 import recipe_epochs, run_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START, END = "<!-- gpu-runs:start -->", "<!-- gpu-runs:end -->"
SIZES = (48, 24, 16, 12, 8)


def run_specs(summary: dict) -> dict[str, tuple[str, list[str]]]:
    """name -> (recipe, extra ``lrfer train`` flags), from the driver's ``--run`` arguments."""
    argv = shlex.split(summary["command"])
    return {name: (recipe, flags) for name, recipe, flags in (run_spec(argv[i + 1]) for i, a in enumerate(argv) if a == "--run")}


def shipped_recipe(recipe: str) -> str:
    # bench/gpu/recipes/X_nz.toml ran on 2026-11-23 and then became the shipped recipe X (same settings)
    return Path(recipe).stem.removesuffix("_nz") if recipe.startswith("bench/gpu/recipes/") else recipe


def planned_epochs(run: dict, recipe: str, flags: list[str]) -> int:
    """The epochs a run was given: the probe's choice, an ``epochs=`` in its --run spec, else its recipe's."""
    return run.get("epochs") or recipe_epochs(shipped_recipe(recipe), flags)


def changes(flags: list[str]) -> str:
    """The --run spec's settings as ``key=value`` (a teacher named by what it is, not its path)."""
    pairs = [(flags[i].lstrip("-").replace("-", "_"), flags[i + 1]) for i in range(0, len(flags), 2)]
    return ", ".join("teacher=previous default" if k == "teacher" else f"{k}={v}" for k, v in pairs)


def zero_init(run: dict) -> bool:
    """Whether the run's residual blocks started zero-initialised (ResNetFER's default)."""
    if "config" in run:
        return run["config"].get("model_kwargs", {}).get("zero_init_residual", True)
    # runs before the driver kept the config: only the bench/gpu/recipes/*_nz.toml files switched it off
    return not run["recipe"].endswith("_nz.toml")


def run_rows() -> list[str]:
    lines = [
        "| run | recipe (changes) | zero-init | epochs done | PublicTest (%) | ten-crop (%) | " + " | ".join(f"{s} px" for s in SIZES) + " | results file |",
        "|---|---|---|---:|---:|---:|" + "---:|" * len(SIZES) + "---|",
    ]
    for f in sorted(RESULTS.glob("gpu_fer2013_*.json")):
        summary = json.loads(f.read_text())
        specs = run_specs(summary)
        for name, run in summary["runs"].items():
            recipe = shipped_recipe(run["recipe"])
            if not recipe.startswith("fer2013_"):
                continue
            spec = changes(specs[name][1])
            done, planned = len(run.get("metrics", [])), planned_epochs(run, *specs[name])
            sweep = {p["size"]: p["accuracy"] for p in run.get("sweep", [])}
            lines.append(
                f"| `{name}` | `{recipe}`{' (' + spec + ')' if spec else ''} | {'yes' if zero_init(run) else 'no'} | {done} / {planned}{' (stopped)' if done < planned else ''} | "
                f"{pct(run.get('publictest_none', {}).get('accuracy'))} | {pct(run.get('publictest_tencrop', {}).get('accuracy'))} | "
                + " | ".join(pct(sweep.get(s)) for s in SIZES) + f" | `{f.relative_to(ROOT)}` ({summary['date'][:10]}, `{summary['commit'] or '?'}`) |"
            )
    return lines


def ensemble_lines() -> list[str]:
    path = RESULTS / "ensemble_fer2013.json"
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    names = [Path(m["path"]).name + (f" (`{m['recipe']}`)" if m.get("recipe") else "") for m in r["members"]]
    ens = {p["size"]: p["accuracy"] for p in r["results"]["ensemble"]}
    best_member = {s: max(next(p["accuracy"] for p in rows if p["size"] == s) for k, rows in r["results"].items() if k != "ensemble") for s in r["sizes"]}
    p = r["provenance"]
    return [
        f"Probability-averaging ensemble of {len(names)} of these models ({', '.join(names)}), {r['tta']} TTA, {r['split']}:",
        "",
        "| | " + " | ".join(f"{s} px" for s in r["sizes"]) + " |",
        "|---|" + "---:|" * len(r["sizes"]),
        "| ensemble (%) | " + " | ".join(pct(ens[s]) for s in r["sizes"]) + " |",
        "| best single member (%) | " + " | ".join(pct(best_member[s]) for s in r["sizes"]) + " |",
        "",
        f"From `bench/ensemble_fer2013.py` (`{path.relative_to(ROOT)}`), {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`.",
    ]


def main() -> None:
    body = [
        "\n".join(run_rows()),
        "Each row's sweep is `lrfer sweep` on PublicTest (faces area-down-sampled to N px, bilinear back "
        "up, centre view); runs marked (stopped) hit their command's deadline part-way through the "
        "learning-rate schedule, so their figures are lower bounds.",
    ]
    ens = ensemble_lines()
    if ens:
        body.append("\n".join(ens))
    README.write_text(replace_block(README.read_text(), START, END, body))
    print(f"updated {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
