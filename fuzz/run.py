"""The fuzz runner behind ``make fuzz``: each target for a set time, one after another.

    python -m fuzz.run --seconds 600 --targets all        # (make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS=all)
    python -m fuzz.run --table                            # the results as the Markdown table of docs/hostile.md

Each target starts from its seeds (``fuzz/seeds.py``) plus what earlier runs found
(``fuzz/corpus/<target>/``, not committed). A Python exception outside the contract is saved by the
harness and fuzzing goes on; a native crash, a hang (``--timeout`` seconds on one input) or running
out of memory stops libFuzzer, whose input is moved to ``tests/hostile/fuzz_crashes/<target>/<sha1>.bin``
too, and the target is started again for the time left. The numbers (seconds, executions, crashes)
go to ``bench/results/fuzz.json``, merged target by target with what is there.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from fuzz.seeds import SEEDS, seeds

ROOT = Path(__file__).resolve().parent.parent
CRASHES = ROOT / "tests" / "hostile" / "fuzz_crashes"
RESULTS = ROOT / "bench" / "results" / "fuzz.json"
_ARTIFACT = re.compile(r"^(crash|timeout|oom|leak)-")


def _execs(output: str) -> int:
    """Executions libFuzzer reports: its final stats, else its last status line (a crash stops it before the stats)."""
    final = re.findall(r"stat::number_of_executed_units:\s*(\d+)", output)
    if final:
        return int(final[-1])
    status = re.findall(r"^#(\d+)\s", output, flags=re.M)
    return int(status[-1]) if status else 0


def _keep_artifacts(target: str, folder: Path, log: Path) -> None:
    """libFuzzer's crash/timeout/oom inputs as regression inputs named by their SHA-1, noted in the log."""
    for f in sorted(folder.iterdir()):
        m = _ARTIFACT.match(f.name)
        if not m:
            continue
        data = f.read_bytes()
        dest = CRASHES / target / (hashlib.sha1(data).hexdigest() + ".bin")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        f.unlink()
        with open(log, "a") as out:
            out.write(json.dumps({"target": target, "file": dest.name, "kind": m.group(1), "error": f"libFuzzer {m.group(1)}"}) + "\n")


def fuzz_target(target: str, seconds: float, timeout: int, work: Path) -> dict:
    """Run one target for ``seconds`` (restarting after a stop), and what it did."""
    corpus = ROOT / "fuzz" / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in seeds(target):
        (corpus / name).write_bytes(data)
    artifacts, log = work / target / "artifacts", work / target / "crashes.jsonl"
    artifacts.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    env = {**os.environ, "LRFER_FUZZ_CRASHES": str(CRASHES), "LRFER_FUZZ_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start, execs, starts = time.monotonic(), 0, 0
    while (left := seconds - (time.monotonic() - start)) >= 5:
        starts += 1
        cmd = [sys.executable, "-m", "fuzz.harness", target, str(corpus), f"-max_total_time={int(left)}",
               f"-timeout={timeout}", "-rss_limit_mb=4096", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace")
        (work / target / f"libfuzzer.{starts}.log").write_text(proc.stdout + proc.stderr)
        execs += _execs(proc.stderr)
        _keep_artifacts(target, artifacts, log)
        if proc.returncode != 0 and not any(_ARTIFACT.match(f) for f in os.listdir(artifacts)) and _execs(proc.stderr) == 0:
            raise SystemExit(f"fuzz target {target} did not start:\n{proc.stderr[-3000:]}")
    found = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return {"seconds": round(time.monotonic() - start, 1), "execs": execs, "starts": starts,
            "corpus": len(os.listdir(corpus)), "crashes": len(found), "found": found}


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "fuzz"], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def table(results: dict) -> str:
    """The results file as a Markdown table (what docs/hostile.md quotes)."""
    rows = ["| target | seconds | executions | crashes | found (saved input: error) | commit | date |", "|---|---:|---:|---:|---|---|---|"]
    for name, r in results.get("targets", {}).items():
        found = "; ".join(f"`{c['file'][:10]}`: {c['error']}" for c in r["found"]) or "none"
        rows.append(f"| {name} | {r['seconds']:.0f} | {r['execs']} | {r['crashes']} | {found.replace('|', '/')} | {r['commit']} | {r['date']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600, help="fuzzing time per target")
    ap.add_argument("--targets", default="all", help=f"comma-separated, or all: {', '.join(SEEDS)}")
    ap.add_argument("--timeout", type=int, default=20, help="seconds one input may take before it counts as a hang")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--work", type=Path, default=ROOT / "fuzz" / "work", help="libFuzzer logs and artifacts")
    ap.add_argument("--table", action="store_true", help="print the results file as a Markdown table and stop")
    args = ap.parse_args(argv)
    results = json.loads(args.results.read_text()) if args.results.exists() else {"targets": {}}
    if args.table:
        print(table(results))
        return
    names = list(SEEDS) if args.targets == "all" else [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in names if t not in SEEDS]
    if unknown:
        raise SystemExit(f"unknown fuzz target(s) {', '.join(unknown)}: choose from {', '.join(SEEDS)}")
    results["machine"] = _machine()
    for name in names:
        print(f"fuzzing {name} for {args.seconds:.0f} s", flush=True)
        r = fuzz_target(name, args.seconds, args.timeout, args.work)
        r.update(commit=_commit(), date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
        results["targets"][name] = r
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2) + "\n")  # after each target: a stopped run keeps what it did
        print(f"  {name}: {r['execs']} executions, {r['crashes']} crashes", flush=True)
        for c in r["found"]:
            print(f"    {c['file']}: {c['error']}", flush=True)


if __name__ == "__main__":
    main()
