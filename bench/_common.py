"""What the benchmark scripts share: where a number came from, the arguments they all take, and how a
generated table is written into a document.

A script run as ``python bench/x.py`` has ``bench/`` first on ``sys.path``, so ``from _common import ...``
needs no path patching; ``lrfer`` comes from the installed package (or ``PYTHONPATH=src``).

Provenance: every results file under ``bench/results/`` carries a ``provenance`` block (script,
command, commit, machine, date, seed), so a figure in the README or docs/ can be traced to the code
and the machine that produced it. Tables: every number in README.md and docs/ sits between
``<!-- name:start -->`` and ``<!-- name:end -->`` markers and is rewritten from those files by a
script; ``--check`` makes the script fail instead of writing when a document is out of date.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

from lrfer.errors import LrferError
from lrfer.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
#: the research data sets live beside the checkout, never in it (their licences forbid redistribution)
DATA = ROOT.parent / "shared" / "data" / "fer2013.npz"


# ---------------------------------------------------------------------- provenance
def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def git_commit(short: bool = False) -> str:
    """The commit being run; ``LRFER_COMMIT`` on the lent GPU machine, whose copy of the tree has no git history."""
    return os.environ.get("LRFER_COMMIT") or _git("rev-parse", *(["--short"] if short else []), "HEAD")


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        return next((ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("model name")), platform.processor())
    return platform.processor()


def provenance(script: str, seed: Optional[int] = None, *, machine: Optional[str] = None, **extra) -> dict:
    """The provenance block of a results file (``dirty_tree``: tracked files differ from the commit).

    ``machine`` replaces the default description (node, architecture, torch threads and version).
    Call it before the work starts: the tree may change while a long run goes on.
    """
    if machine is None:
        try:
            import torch  # only here: the table writers import this module and need no torch
        except ImportError:  # the inference runtime alone (`pip install lrfer`)
            machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, no torch"
        else:
            machine = f"{platform.node()} {platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}"
    dirty = [line.split(maxsplit=1)[1] for line in _git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    return {
        "script": script,
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "commit": git_commit(),
        "dirty_tree": bool(dirty),
        "dirty_files": dirty[:20],  # which: an edited document is not edited code
        "machine": machine,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        **extra,
    }


def source_line(r: dict) -> str:
    """Where a results file's numbers came from, for the line under its table (models kept from an
    earlier run, :func:`keep_earlier`, are named with theirs)."""
    p = r["provenance"]
    dirty = " + uncommitted changes" if p.get("dirty_tree", p.get("worktree_dirty")) else ""
    files = p.get("dirty_files") or []
    if dirty and files and all(f.endswith(".md") for f in files):
        dirty += " to documents only"
    elif dirty and files and all(f.endswith(".md") or f.startswith("bench/results/") for f in files):
        dirty += " to documents and results files only"  # outputs of the benchmarks, not code
    line = f"`{p['script']}`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`{dirty}"
    runs: dict[tuple[str, str], list[str]] = {}
    for model, q in r.get("earlier", {}).items():
        runs.setdefault((q["date"][:10], q["commit"][:7]), []).append(model)
    for (date, commit), models in runs.items():
        line += f"; the rows of {', '.join(models)} from an earlier run of the same script ({date}, commit `{commit}`)"
    return line


def _sizes(doc: dict) -> set[int]:
    return {row["size"] for res in doc.get("results", {}).values() for row in res["sweep"]}


def keep_earlier(path: Path, doc: dict) -> dict:
    """``doc`` (a set's results: ``data``, ``models``, ``results``, ``provenance``) with the models of the
    earlier file at ``path`` that this run did not score, e.g. the peers, whose numbers a new lrfer
    model cannot change: rerunning them costs most of a suite's time. Each kept model is named under
    ``earlier`` with the run its numbers come from. Nothing is kept when the earlier run read other
    faces or other sizes."""
    if not path.exists():
        return doc
    old = json.loads(path.read_text())
    if old.get("data") != doc.get("data") or old.get("protocol") != doc.get("protocol") or _sizes(old) != _sizes(doc):
        print(f"note: {path.name} scored other faces or sizes: no model kept from it", flush=True)
        return doc
    p = old["provenance"]
    earlier = dict(doc.get("earlier", {}))
    for model in (m for m in old.get("results", {}) if m not in doc["results"]):
        doc["results"][model] = old["results"][model]
        doc["models"][model] = old["models"][model]
        earlier[model] = old.get("earlier", {}).get(model) or {k: p[k] for k in ("script", "machine", "date", "commit")}
    if earlier:
        doc["earlier"] = earlier
    return doc


# ---------------------------------------------------------------------- arguments
def add_data_arg(ap: argparse.ArgumentParser, default: Path = DATA) -> None:
    ap.add_argument("--data", default=str(default), help=f"dataset path (default: {default})")


def add_threads_arg(ap: argparse.ArgumentParser, default: int = 2) -> None:
    """``--threads``: CPU figures are only comparable at a fixed thread count (the development VM has 2 cores)."""
    ap.add_argument("--threads", type=int, default=default, help=f"torch CPU threads (default: {default})")


def add_set_arg(ap: argparse.ArgumentParser, example: str) -> None:
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help=f"override a recipe setting, e.g. --set {example} (value parsed as JSON)")


def set_overrides(args: argparse.Namespace, example: str, own_flags: dict[str, str]) -> dict[str, Any]:
    """The ``--set`` pairs as recipe overrides, parsed as the CLI parses ``--option``; ``own_flags``
    (setting -> what to use instead) are the settings the script passes itself, refused here."""
    from lrfer.cli import parse_key_values  # here, not at the top: the table writers need no CLI

    return parse_key_values(args.set, "--set", example, own_flags=own_flags)


def example_module(name: str) -> ModuleType:
    """``examples/<name>.py`` as a module (the benchmarks build their scenes as the demo's are built),
    loaded by its path so that ``examples/`` never goes on ``sys.path``."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rss_mb() -> float:
    """This process's resident memory in MB (Linux; NaN elsewhere)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------- generated tables
def load_result(name: str) -> Optional[dict]:
    """``bench/results/<name>`` parsed, or None when that benchmark has not been run."""
    p = RESULTS / name
    return json.loads(p.read_text()) if p.exists() else None


def pct(x) -> str:
    """A fraction as a percentage with one decimal; empty for a missing value."""
    return "" if x is None else f"{100 * x:.1f}"


def replace_block(text: str, start: str, end: str, body: list[str]) -> str:
    if start not in text:
        raise SystemExit(f"the document has no {start} ... {end} block")
    a, b = text.index(start), text.index(end) + len(end)
    return text[:a] + "\n\n".join([start, *body, end]) + text[b:]


def save_result(path: Path, doc: dict, plot: Optional[Callable[[dict, Path], None]] = None) -> None:
    """A results file written atomically (a killed run leaves the old one whole), its figure beside
    it (``plot(doc, path.png)``), and a line that says so."""
    atomic_write_text(path, json.dumps(doc, indent=1))
    if plot is not None:
        plot(doc, path.with_suffix(".png"))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def add_table_args(ap: argparse.ArgumentParser, doc: str = "docs/trust.md") -> None:
    """``--table-only`` and ``--check``: the flags :func:`measured_or_stored` reads, for a bench whose
    tables live in ``doc``."""
    ap.add_argument("--table-only", action="store_true", help=f"rewrite {doc}'s tables from the results file")
    ap.add_argument("--check", action="store_true", help=f"fail if {doc} differs from the results file; write nothing")


def measured_or_stored(args: argparse.Namespace, out: Path, run: Callable[[argparse.Namespace], dict], script: str,
                       plot: Optional[Callable[[dict, Path], None]] = None) -> Optional[dict]:  # fmt: skip
    """The document a bench's tables come from: ``run(args)``'s, saved to ``out`` with its figure,
    unless ``--table-only`` or ``--check`` asked for the tables alone; then the file's. ``None``,
    after one line on stderr, when the run met bad input (an LrferError) or the file is missing."""
    if not (args.table_only or args.check):
        try:
            doc = run(args)
        except LrferError as err:
            print(f"error: {err}", file=sys.stderr)
            return None
        save_result(out, doc, plot)
    doc = load_result(out.name)
    if doc is None:
        print(f"error: {out.relative_to(ROOT)} is missing: run python {script} first", file=sys.stderr)
    return doc


def write_blocks(path: Path, blocks: dict[str, list[str]], check: bool = False) -> bool:
    """Replace each ``<!-- name:start -->`` ... ``<!-- name:end -->`` block of ``path`` by its paragraphs.

    With ``check``, write nothing and exit with status 1 when the document differs from what the
    results files say (a number edited by hand, or a results file added without regenerating).
    Returns whether the document changed.
    """
    old = path.read_text()
    new = old
    for name, body in blocks.items():
        new = replace_block(new, f"<!-- {name}:start -->", f"<!-- {name}:end -->", body)
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if check:
        if new != old:
            raise SystemExit(f"{rel} is out of date: run python {Path(sys.argv[0]).as_posix()} to regenerate {', '.join(blocks)}")
        print(f"{rel}: {', '.join(blocks)} up to date")
        return False
    if new != old:
        path.write_text(new)
    print(f"{'updated' if new != old else 'unchanged'} {rel} ({', '.join(blocks)})")
    return new != old


def check_flag(ap: Optional[argparse.ArgumentParser] = None) -> bool:
    """Parse a table writer's one option, ``--check``."""
    ap = ap or argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="fail if a document differs from the results files; write nothing")
    return ap.parse_args().check
