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
from inference_tables import replace_block  # noqa: E402
from train_fer2013 import recipe_epochs, run_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START, END = "<!-- gpu-runs:start -->", "<!-- gpu-runs:end -->"
SIZES = (48, 24, 16, 12, 8)


def pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def planned_epochs(summary: dict, name: str, run: dict) -> int:
    """The epochs a run was given: the probe's choice, an ``epochs=`` in its --run spec, else its recipe's."""
    if run.get("epochs"):
        return run["epochs"]
    argv = shlex.split(summary["command"])
    specs = [run_spec(argv[i + 1]) for i, a in enumerate(argv) if a == "--run"]
    recipe, flags = next((r, f) for n, r, f in specs if n == name)
    if recipe.startswith("bench/gpu/recipes/") and not (ROOT / recipe).exists():
        # bench/gpu/recipes/X_nz.toml ran on 2026-11-23 and then became the shipped recipe X (same settings)
        recipe = Path(recipe).stem.removesuffix("_nz")
    return recipe_epochs(recipe, flags)


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
        for name, run in summary["runs"].items():
            recipe = Path(run["recipe"]).stem.removesuffix("_nz")  # see planned_epochs
            if not recipe.startswith("fer2013_"):
                continue
            argv = shlex.split(summary["command"])
            spec = next((a.split(":", 1)[1] for i, a in enumerate(argv) if i and argv[i - 1] == "--run" and a.startswith(name + "=") and ":" in a), "")
            spec = ", ".join(kv if not kv.startswith("teacher=") else "teacher=previous default" for kv in spec.split(",") if kv)
            done, planned = len(run.get("metrics", [])), planned_epochs(summary, name, run)
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
