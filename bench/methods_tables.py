"""Write the "our numbers" block of docs/methods.md from the methods' results files.

Reads ``bench/results/methods_short/*.json`` (``bench/methods_short.py``),
``bench/results/qin_ablation_*.json`` (``bench/qin_ablation.py``) and
``bench/results/salimov_depth_kernel*.json`` (``bench/salimov_depth_kernel.py``) and replaces
the block between ``<!-- methods-results:start -->`` and ``<!-- methods-results:end -->``.

    python bench/methods_tables.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference_tables import replace_block  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "methods.md"
START, END = "<!-- methods-results:start -->", "<!-- methods-results:end -->"


def _commit(r: dict) -> str:
    p = r.get("provenance", r)
    commit = str(p.get("commit", ""))[:7]
    return commit + (" (dirty tree)" if p.get("dirty_tree") or commit.endswith("-dirty") else "")


def short_runs_table() -> list[str]:
    files = sorted((RESULTS / "methods_short").glob("*.json"))
    if not files:
        return []
    lines = [
        "**Shortened CPU runs** (`bench/methods_short.py`, one thread of the 2-core development machine). "
        "Each recipe as written (model, optimiser, loss, augmentation) but on the first N training faces for a few "
        "epochs, single centre view at test. These show that each method learns under lrfer's engine; they are "
        "a sliver of each paper's schedule and **not comparable with the papers' numbers**.",
        "",
        "| recipe | model | faces seen (share of the full schedule) | evaluated on | accuracy | macro F1 | minutes | commit |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for f in files:
        r = json.loads(f.read_text())
        s = r["settings"]
        where = f"CK+ fold 0 ({s['val_rows']})" if s["dataset"] == "ckplus" else f"{s['val_split']} ({s['val_rows']})"
        lines.append(
            f"| `{r['recipe']}` | `{r['model']}`{' (' + s['sr'] + ')' if s.get('sr') else ''} | {r['samples_seen']:,} ({100 * r['schedule_fraction']:.2g}%) | {where} | "
            f"{100 * r['val_acc']:.1f}% | {r['val_macro_f1']:.3f} | {r['train_seconds'] / 60:.1f} | `{_commit(r)}` |"
        )
    return lines


def benchmark_tables(pattern: str, title) -> list[str]:
    """One captioned markdown table per results file matching ``pattern`` (its ``table_markdown``)."""
    out = []
    for f in sorted(RESULTS.glob(pattern)):
        r = json.loads(f.read_text())
        s = r["settings"]
        rows = f"first {s['limit_train']} training faces" if s.get("limit_train") else "all training faces"
        out += ["", f"**{title(r)}** (`{f.relative_to(ROOT)}`: {s['epochs']} epochs, {rows}, commit `{_commit(r)}`):", "", r["table_markdown"]]
    return out


def main() -> None:
    qin = benchmark_tables("qin_ablation_*.json", lambda r: f"Qin ablation on {r['dataset']}, {r['settings']['val_rows']} test faces")
    salimov = benchmark_tables("salimov_depth_kernel*.json", lambda r: f"Salimov depth x kernel, accuracy (%) on the first {r['settings']['val_rows']} {r['settings']['val_split']} faces")
    body = "\n".join([*short_runs_table(), *qin, *salimov]).strip() or "No results files yet."
    DOC.write_text(replace_block(DOC.read_text(), START, END, [body]))
    print(f"updated {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
