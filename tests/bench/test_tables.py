"""The generated tables of README.md and docs/ agree with bench/results/: a number edited by hand, or a
results file added without regenerating, fails here (each writer's ``--check`` writes nothing)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRITERS = [["inference_tables.py"], ["training_tables.py"], ["methods_tables.py"], ["default_model.py", "--card-only"], ["detector_sizes.py"], ["serve_store.py"], ["serve_alerts.py"], ["serve_cameras.py"], ["serve_soak.py"], ["serve_load.py"], ["runtime.py"], ["prior_abstain.py"], ["robustness_tables.py"], ["batch_scale.py"], ["ferplus_ft.py", "--table-only"], ["why_calm.py"], ["readings.py"]]


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


def _set_doc(models: dict, commit: str, n: int = 10) -> dict:
    return {"data": {"n": n}, "protocol": "p", "provenance": {"script": "bench/suite.py", "machine": "vm", "date": f"2026-12-0{commit[-1]}T00:00", "commit": commit},
            "models": {m: {"kind": "x"} for m in models}, "results": {m: {"sweep": [{"size": 48, "accuracy": a}]} for m, a in models.items()}}  # fmt: skip


def test_keep_earlier_keeps_the_models_not_rerun_and_names_their_run(tmp_path):
    common = bench_common()
    path = tmp_path / "set.json"
    path.write_text(json.dumps(_set_doc({"lrfer_default": 0.5, "peer": 0.4}, "aaaaaaa1")))
    doc = common.keep_earlier(path, _set_doc({"lrfer_default": 0.6}, "bbbbbbb2"))
    assert list(doc["results"]) == ["lrfer_default", "peer"]  # the new run's models first
    assert doc["results"]["lrfer_default"]["sweep"][0]["accuracy"] == 0.6 and doc["results"]["peer"]["sweep"][0]["accuracy"] == 0.4
    assert doc["earlier"] == {"peer": {"script": "bench/suite.py", "machine": "vm", "date": "2026-12-01T00:00", "commit": "aaaaaaa1"}}
    line = common.source_line(doc)
    assert "commit `bbbbbbb`" in line and "peer from an earlier run" in line and "commit `aaaaaaa`" in line
    # kept twice: the peer still names the run that scored it, not the run that kept it
    path.write_text(json.dumps(doc))
    again = common.keep_earlier(path, _set_doc({"lrfer_default": 0.7}, "ccccccc3"))
    assert again["earlier"]["peer"]["commit"] == "aaaaaaa1"
    # other faces (or sizes): nothing is kept
    assert list(common.keep_earlier(path, _set_doc({"lrfer_default": 0.7}, "ccccccc3", n=11))["results"]) == ["lrfer_default"]


def test_source_line_says_what_was_uncommitted():
    line = bench_common().source_line
    prov = {"script": "bench/x.py", "machine": "vm", "date": "2026-12-05T00:00", "commit": "abcdef12"}
    assert line({"provenance": prov}).endswith("commit `abcdef1`")
    docs = {**prov, "dirty_tree": True, "dirty_files": ["docs/serve.md"]}
    assert line({"provenance": docs}).endswith("+ uncommitted changes to documents only")
    outputs = {**docs, "dirty_files": ["docs/serve.md", "bench/results/serve_alerts.json"]}
    assert line({"provenance": outputs}).endswith("+ uncommitted changes to documents and results files only")
    code = {**docs, "dirty_files": ["docs/serve.md", "src/lrfer/serve/alerts.py"]}
    assert line({"provenance": code}).endswith("+ uncommitted changes")
