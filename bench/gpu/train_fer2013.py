"""Train FER2013 models on the lent GPU machine inside one time-boxed command, then sweep them.

The device tool allows 10 minutes per command, so this driver sizes the runs to fit: it probes each
recipe for two epochs (all runs side by side on the one GPU, as they will train), reads their
throughput, picks the number of epochs that fits the remaining budget, trains them side by side,
then runs the PublicTest evaluation (with and without ten-crop) and the resolution sweep of each.

    python bench/gpu/pack_data.py --unpack /tmp/data       # first, from the carried .gpu/ folder
    python bench/gpu/train_fer2013.py --data /tmp/data/fer2013.npz --out $OUT --budget 540 \
        --run slim=fer2013_multires --run slim_nodeg=fer2013_multires:degrade_p=0 --run r18=fer2013_multires_r18

Everything lands in --out: per run the best checkpoint, metrics.jsonl, report.json and sweep.json,
plus summary.json (commit, machine, date, seed, command, epochs, per-run timings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lrfer(*args: str) -> list[str]:
    return [sys.executable, "-m", "lrfer", *args]


def run_spec(text: str) -> tuple[str, str, list[str]]:
    """``name=recipe[:key=value,...]`` -> (name, recipe, extra CLI flags)."""
    name, rest = text.split("=", 1)
    recipe, _, opts = rest.partition(":")
    flags: list[str] = []
    for kv in filter(None, opts.split(",")):
        k, v = kv.split("=", 1)
        flags += [f"--{k.replace('_', '-')}", v]
    return name, recipe, flags


def train_all(runs, data: str, out: Path, epochs: int | None, work: Path, log, deadline: float | None = None) -> dict:
    procs = {}
    for name, recipe, flags in runs:
        cmd = lrfer("train", "--recipe", recipe, "--data", data, "--out", str(work / name), "--no-progress", *flags)
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        log.write(" ".join(cmd) + "\n")
        procs[name] = (cmd, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
    t0 = time.time()
    for name, (cmd, p) in procs.items():
        try:
            code = p.wait(timeout=None if deadline is None else max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            # out of time: keep what the run has (best.safetensors is written every time it improves)
            p.kill()
            log.write(f"run {name} stopped at the deadline\n")
            continue
        if code != 0:
            raise SystemExit(f"run {name} failed (see log)")
    return {"seconds": time.time() - t0, "commands": {n: " ".join(c) for n, (c, _) in procs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", default="/tmp/lrfer_runs", type=Path)
    ap.add_argument("--budget", type=float, default=540, help="seconds for the whole command")
    ap.add_argument("--max-epochs", type=int, default=120)
    ap.add_argument("--epochs", type=int, help="train this many epochs (skips the probe; default: the recipe's)")
    ap.add_argument("--no-probe", action="store_true", help="train with the recipe's epochs, no probe")
    ap.add_argument("--run", action="append", required=True, help="name=recipe[:key=value,...]")
    ap.add_argument("--ship", default="", help="run whose best checkpoint is copied to --out")
    args = ap.parse_args()
    start = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [run_spec(r) for r in args.run]
    log = open(args.out / "log.txt", "w", buffering=1)
    env_info = subprocess.run([sys.executable, "-c", "import torch;print(torch.__version__, torch.cuda.get_device_name(0))"], capture_output=True, text=True).stdout.strip()

    rates: dict[str, float] = {}
    epochs = args.epochs
    if epochs is None and not args.no_probe:
        # 1. probe: two epochs of every run side by side
        train_all(runs, args.data, args.out, 2, args.work / "probe", log)
        for name, _, _ in runs:
            rows = [json.loads(l) for l in (args.work / "probe" / name / "metrics.jsonl").read_text().splitlines()]
            rates[name] = rows[-1]["images_per_s"]
        # epoch time of the slowest run (28,709 training images; validation adds ~5%); concurrent
        # runs slow each other more than a 2-epoch probe shows, hence the 1.3 margin
        epoch_s = max(28709 / r for r in rates.values()) * 1.3
        remaining = args.budget - (time.time() - start) - 150  # evaluation and sweeps: each CLI call imports torch and loads the data
        epochs = int(max(2, min(args.max_epochs, remaining // epoch_s)))
        log.write(f"rates {rates} epoch_s {epoch_s:.2f} -> epochs {epochs}\n")

    # 2. the real runs
    timing = train_all(runs, args.data, args.out, epochs, args.work / "full", log, deadline=start + args.budget - 100)

    # 3. evaluation and sweep of each best checkpoint
    summary = {
        "script": "bench/gpu/train_fer2013.py",
        "command": " ".join(sys.argv),
        "commit": os.environ.get("LRFER_COMMIT", ""),
        "machine": f"{platform.node()} {env_info}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "probe_images_per_s": rates,
        "epochs": epochs,
        "train_seconds": timing["seconds"],
        "train_commands": timing["commands"],
        "runs": {},
    }
    for name, recipe, _ in runs:
        d = args.work / "full" / name
        ck = d / "best.safetensors"
        if name == args.ship:  # first, so that it comes back even if the evaluation runs out of time
            (args.out / f"{name}_best.safetensors").write_bytes(ck.read_bytes())
        res = {"recipe": recipe, "metrics": [json.loads(l) for l in (d / "metrics.jsonl").read_text().splitlines()]}
        for tta in ("none", "tencrop"):
            subprocess.run(lrfer("evaluate", "--checkpoint", str(ck), "--data", args.data, "--split", "PublicTest", "--tta", tta,
                                 "--no-latency", "--no-progress", "--out", str(d / f"eval_{tta}")), stdout=log, stderr=subprocess.STDOUT, check=True)
            rep = json.loads((d / f"eval_{tta}" / "report.json").read_text())
            res[f"publictest_{tta}"] = {k: rep[k] for k in ("accuracy", "macro_f1", "ece", "n")}
        subprocess.run(lrfer("sweep", "--checkpoint", str(ck), "--data", args.data, "--split", "PublicTest", "--no-progress",
                             "--out", str(d / "sweep")), stdout=log, stderr=subprocess.STDOUT, check=True)
        res["sweep"] = json.loads((d / "sweep" / "sweep.json").read_text())
        summary["runs"][name] = res
        summary["total_seconds"] = time.time() - start
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
