"""Write the tables of the FER2013 training runs on the GPU and of the k-fold runs into docs/results.md
from their results files.

Reads every ``bench/results/gpu_fer2013_*.json`` (``bench/gpu/train_fer2013.py``) and, when present,
``bench/results/ensemble_fer2013.json`` (``bench/ensemble_fer2013.py``), and replaces the block
between ``<!-- gpu-runs:start -->`` and ``<!-- gpu-runs:end -->``; the k-fold runs of
``bench/kfold.py`` (``bench/results/kfold_*.json``) go between ``<!-- kfold:start -->`` and
``<!-- kfold:end -->``. Only the runs of the default's family (recipes ``fer2013_*``) are listed;
the published methods' runs are in docs/methods.md (``bench/methods_tables.py``).

    python bench/training_tables.py [--check]
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np

from _common import DOCS, RESULTS, ROOT, check_flag, pct, write_blocks
from gpu.train_fer2013 import recipe_epochs, run_spec

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


def changes(flags: list[str], commit: str, drop: tuple[str, ...] = ()) -> str:
    """The --run spec's settings as ``key=value``, less the keys in ``drop``. A teacher given as the
    shipped model's path is named by the commit whose default it was, since that file changes."""
    pairs = [(flags[i].lstrip("-").replace("-", "_"), flags[i + 1]) for i in range(0, len(flags), 2)]
    return ", ".join(
        (f"teacher=default of `{commit}`" if v.endswith("assets/default/model.safetensors") else f"teacher={Path(v).name}") if k == "teacher" else f"{k}={v}"
        for k, v in pairs if k not in drop
    )


def zero_init(run: dict) -> bool:
    """Whether the run's residual blocks started zero-initialised (ResNetFER's default)."""
    if "config" in run:
        return run["config"].get("model_kwargs", {}).get("zero_init_residual", True)
    # runs before the driver kept the config: only the bench/gpu/recipes/*_nz.toml files switched it off
    return not run["recipe"].endswith("_nz.toml")


def runs() -> list[dict]:
    """Every run of the default's family in the results files, with what the tables need."""
    rows = []
    for f in sorted(RESULTS.glob("gpu_fer2013_*.json")):
        summary = json.loads(f.read_text())
        specs = run_specs(summary)
        for name, run in summary["runs"].items():
            recipe = shipped_recipe(run["recipe"])
            if not recipe.startswith("fer2013_"):
                continue
            flags = specs[name][1]
            rows.append({
                "name": name, "recipe": recipe, "flags": flags, "commit": summary["commit"] or "?", "date": summary["date"][:10], "file": f,
                "zero_init": zero_init(run), "done": len(run.get("metrics", [])), "planned": planned_epochs(run, *specs[name]),
                "acc": run.get("publictest_none", {}).get("accuracy"), "tencrop": run.get("publictest_tencrop", {}).get("accuracy"),
                "sweep": {p["size"]: p["accuracy"] for p in run.get("sweep", [])},
            })
    return rows


def run_rows(rows: list[dict]) -> list[str]:
    lines = [
        "| run | recipe (changes) | zero-init | epochs done | PublicTest (%) | ten-crop (%) | " + " | ".join(f"{s} px" for s in SIZES) + " | results file |",
        "|---|---|---|---:|---:|---:|" + "---:|" * len(SIZES) + "---|",
    ]
    for r in rows:
        spec = changes(r["flags"], r["commit"])
        lines.append(
            f"| `{r['name']}` | `{r['recipe']}`{' (' + spec + ')' if spec else ''} | {'yes' if r['zero_init'] else 'no'} | {r['done']} / {r['planned']}{' (stopped)' if r['done'] < r['planned'] else ''} | "
            f"{pct(r['acc'])} | {pct(r['tencrop'])} | " + " | ".join(pct(r["sweep"].get(s)) for s in SIZES) + f" | `{r['file'].relative_to(ROOT)}` ({r['date']}, `{r['commit']}`) |"
        )
    return lines


def seed_lines(rows: list[dict]) -> list[str]:
    """Mean and standard deviation over seeds, for each setting that finished its schedule with more than one seed."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["done"] == r["planned"]:
            groups.setdefault((r["recipe"], r["zero_init"], changes(r["flags"], r["commit"], drop=("seed",))), []).append(r)

    def cell(values: list) -> str:
        v = np.array([x for x in values if x is not None]) * 100  # a run without ten-crop has none
        return f"{v.mean():.1f} +- {v.std(ddof=1):.1f}" if len(v) > 1 else ""

    lines = []
    for (recipe, zi, spec), members in groups.items():
        seeds = sorted({dict(zip(m["flags"][::2], m["flags"][1::2])).get("--seed", "0") for m in members})
        if len(seeds) < 2 or len(seeds) != len(members):
            continue
        lines.append(
            f"| `{recipe}`{' (' + spec + ')' if spec else ''}, zero-init {'yes' if zi else 'no'} | {', '.join(seeds)} | {cell([m['acc'] for m in members])} | "
            f"{cell([m['tencrop'] for m in members])} | " + " | ".join(cell([m["sweep"].get(s) for m in members]) for s in SIZES) + " |"
        )
    if not lines:
        return []
    return [
        "Seed spread: the settings above that finished their schedule with more than one seed, mean +- standard deviation over the seeds (%):",
        "",
        "| setting | seeds | PublicTest | ten-crop | " + " | ".join(f"{s} px" for s in SIZES) + " |",
        "|---|---|---:|---:|" + "---:|" * len(SIZES),
        *lines,
    ]


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


def changed_settings(overrides: dict) -> str:
    """``bench/kfold.py --set`` overrides other than ``freeze`` (its own column), as ``key=value``."""
    flat = [(f"{k}.{k2}", v2) for k, v in overrides.items() if isinstance(v, dict) for k2, v2 in v.items()]
    flat += [(k, v) for k, v in overrides.items() if not isinstance(v, dict) and k != "freeze"]
    return ", ".join(f"`{k}={v}`" for k, v in sorted(flat)) or "none"


def kfold_lines() -> list[str]:
    """Subject-independent k-fold runs with a pooled resolution sweep (``bench/kfold.py``)."""
    files = sorted(RESULTS.glob("kfold_*.json"))
    if not files:
        return []
    sizes = sorted({x["size"] for f in files for x in json.loads(f.read_text())["sweep_pooled"]}, reverse=True)
    lines = [
        "| recipe | fixed layers | other settings changed | folds | pooled (%) | per fold (%) | " + " | ".join(f"{s} px" for s in sizes) + " | minutes | machine | results file |",
        "|---|---|---|---:|---:|---:|" + "---:|" * len(sizes) + "---:|---|---|",
    ]
    for f in files:
        r = json.loads(f.read_text())
        p = r["provenance"]
        sweep = {x["size"]: x["accuracy"] for x in r["sweep_pooled"]}
        lines.append(
            f"| `{r['recipe']}` | {', '.join(r['config'].get('freeze') or []) or 'none'} | {changed_settings(r.get('overrides', {}))} | {r['folds_done']} of {r['k']} | **{pct(r['accuracy_pooled'])}** | {pct(r['accuracy_mean'])} +- {pct(r['accuracy_std'])} | "
            + " | ".join(pct(sweep.get(s)) for s in sizes) + f" | {r['seconds'] / 60:.0f} | {p['machine']} | `{f.relative_to(ROOT)}` ({p['date'][:10]}, `{p['commit'][:7]}`) |"
        )
    return lines


#: the GPU goals of docs/gpu-queue.md: (what, goal, results file, how to read its figure)
GOALS = (
    ("FER2013 PublicTest, 48 px, single model", ">= 74%", "default_model/sweep.json", lambda r: _at(r, 48)),
    ("FER2013 PublicTest, 48 px, ensemble", ">= 75.5%", "ensemble_fer2013.json", lambda r: _at(r["results"]["ensemble"], 48)),
    ("FER2013 PublicTest, 24 px", "low-resolution goal", "default_model/sweep.json", lambda r: _at(r, 24)),
    ("FER2013 PublicTest, 16 px", ">= 66%", "default_model/sweep.json", lambda r: _at(r, 16)),
    ("FER2013 PublicTest, 12 px", "low-resolution goal", "default_model/sweep.json", lambda r: _at(r, 12)),
    ("FER2013 PublicTest, 8 px", ">= 50%", "default_model/sweep.json", lambda r: _at(r, 8)),
    ("FERPlus (`ferplus_multires`, 48 px)", ">= 89%", "suite/ferplus.json", lambda r: _at(r["results"]["ferplus_multires"]["sweep"], 48)),
    ("CK+ (10-fold)", ">= 98.5%", "kfold_ckplus_from_default_unfrozen.json", lambda r: r["accuracy_pooled"]),
)


def _at(rows: list[dict], size: int) -> float:
    return next(x["accuracy"] for x in rows if x["size"] == size)


def goal_lines() -> list[str]:
    """The GPU goals beside the figures the results files hold now (the shipped model's sweep, the
    ensemble, FERPlus and CK+): a table that cannot fall behind a new default."""
    lines = ["| | goal | now | results file |", "|---|---:|---:|---|"]
    for what, goal, name, read in GOALS:
        path = RESULTS / name
        now = pct(read(json.loads(path.read_text()))) + "%" if path.exists() else ""
        lines.append(f"| {what} | {goal} | {now} | `bench/results/{name}` |")
    return ["\n".join(lines), "The FER2013 rows are the shipped model's (`bench/default_model.py`), whichever ships now."]


def main() -> None:
    check = check_flag()
    write_blocks(DOCS / "gpu-queue.md", {"gpu-goals": goal_lines()}, check)
    blocks = {}
    kfold = kfold_lines()
    if kfold:
        blocks["kfold"] = ["\n".join(kfold)]
    rows = runs()
    body = [
        "\n".join(run_rows(rows)),
        "Each row's sweep is `lrfer sweep` on PublicTest (faces area-down-sampled to N px, bilinear back "
        "up, centre view); runs marked (stopped) hit their command's deadline part-way through the "
        "learning-rate schedule, so their figures are lower bounds.",
    ]
    seeds = seed_lines(rows)
    if seeds:
        body.append("\n".join(seeds))
    ens = ensemble_lines()
    if ens:
        body.append("\n".join(ens))
    blocks["gpu-runs"] = body
    write_blocks(DOCS / "results.md", blocks, check)


if __name__ == "__main__":
    main()
