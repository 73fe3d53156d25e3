"""The generated tables of README.md and docs/ agree with bench/results/: a number edited by hand, or a
results file added without regenerating, fails here (each writer's ``--check`` writes nothing)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITERS = [["inference_tables.py"], ["training_tables.py"], ["methods_tables.py"], ["default_model.py", "--card-only"], ["detector_sizes.py"], ["serve_store.py"], ["serve_alerts.py"], ["serve_cameras.py"], ["serve_soak.py"], ["serve_load.py"], ["runtime.py"], ["prior_abstain.py"], ["robustness_tables.py"], ["batch_scale.py"]]


def run_bench(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(ROOT / "bench" / args[0]), *args[1:]], capture_output=True, text=True, cwd=ROOT, env=env)


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w[0])
def test_generated_tables_match_results(writer):
    done = run_bench(*writer, "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout


def bench_common():
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "bench" / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_fails_on_a_hand_edited_number(tmp_path):
    """--check compares: a cell changed by hand in a generated block is caught, and nothing is written."""
    write_blocks = bench_common().write_blocks
    doc = tmp_path / "doc.md"
    text = "intro\n\n<!-- t:start -->\n\n| a |\n|---|\n| 69.8 |\n\n<!-- t:end -->\n"
    doc.write_text(text)
    with pytest.raises(SystemExit, match="out of date"):
        write_blocks(doc, {"t": ["| a |\n|---|\n| 69.7 |"]}, check=True)
    assert doc.read_text() == text
    assert write_blocks(doc, {"t": ["| a |\n|---|\n| 69.7 |"]}) is True
    assert "| 69.7 |" in doc.read_text() and "intro" in doc.read_text()
    assert write_blocks(doc, {"t": ["| a |\n|---|\n| 69.7 |"]}, check=True) is False
