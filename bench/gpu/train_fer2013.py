"""Train FER2013 models on the lent GPU machine inside one time-boxed command, then sweep them.

The device tool allows 10 minutes per command, so this driver sizes the runs to fit. All runs share
the one GPU side by side. With the probe (the default) each run first trains two short epochs beside
the others; its own throughput then gives its own number of epochs (at most its recipe's), so a
ResNet-50 and a 0.1M-parameter CNN both finish inside the budget. Each run is then a pipeline of
its own: train -> PublicTest evaluation (centre view and ten-crop) -> resolution sweep, so a fast
run's evaluation overlaps a slow run's training. A run that fails is recorded and the others go on.

    python bench/gpu/pack_data.py --unpack /tmp/data       # first, from the carried .gpu/ folder
    python bench/gpu/train_fer2013.py --data /tmp/data/fer2013.npz --out $OUT --budget 540 \
        --run slim=fer2013_multires --run slim_nodeg=fer2013_multires:degrade_p=0 --run r18=fer2013_multires_r18

A run is ``name=recipe[:key=value,...]``; the keys become ``lrfer train`` flags (``epochs=60``,
``teacher=PATH``, ``degrade_p=0``). Everything lands in --work: per run the best checkpoint,
metrics.jsonl, eval reports and sweep.json; --out gets summary.json (commit, machine, date, seed,
command, per-run epochs, timings and results), log.txt and the checkpoints named by --ship.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
N_TRAIN = 28709  # FER2013 Training faces
EVAL_SECONDS = 75  # two evaluations and a sweep after training: three CLI starts (torch import, data load) and the passes


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


def recipe_epochs(recipe: str, flags: list[str]) -> int:
    if "--epochs" in flags:
        return int(flags[flags.index("--epochs") + 1])
    from lrfer.train.config import load_config  # lazily: the driver itself only launches `python -m lrfer`

    return load_config(recipe).epochs


def without_epochs(flags: list[str]) -> list[str]:
    if "--epochs" not in flags:
        return flags
    i = flags.index("--epochs")
    return flags[:i] + flags[i + 2 :]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def probe(runs, data: str, work: Path, log, faces: int) -> dict[str, float]:
    """Training images/s of each run, measured with all runs side by side (2 epochs of `faces` faces)."""
    procs = {}
    for name, recipe, flags in runs:
        cmd = lrfer("train", "--recipe", recipe, "--data", data, "--out", str(work / name), "--no-progress",
                    *without_epochs(flags), "--epochs", "2", "--limit-train", str(faces), "--val-split", "none")
        log.write(" ".join(cmd) + "\n")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    rates = {}
    for name, p in procs.items():
        if p.wait() == 0:
            rates[name] = read_jsonl(work / name / "metrics.jsonl")[-1]["images_per_s"]
        else:
            log.write(f"probe of {name} failed\n")
    return rates


def pipeline(name: str, recipe: str, flags: list[str], epochs: int | None, data: str, work: Path, deadline: float, log, out: dict) -> None:
    """train -> evaluate (none, tencrop) -> sweep, for one run; fills out[name]."""
    d = work / name
    res: dict = {"recipe": recipe, "flags": flags, "epochs": epochs}
    out[name] = res
    cmd = lrfer("train", "--recipe", recipe, "--data", data, "--out", str(d), "--no-progress", *without_epochs(flags))
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    res["command"] = " ".join(cmd)
    log.write(res["command"] + "\n")
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        code = p.wait(timeout=max(1.0, deadline - time.time()))
    except subprocess.TimeoutExpired:
        p.kill()  # out of time: keep what the run has (best.safetensors is written each time it improves)
        code = None
        res["stopped_at_deadline"] = True
        log.write(f"run {name} stopped at the deadline\n")
    res["train_seconds"] = round(time.time() - t0, 1)
    if (d / "metrics.jsonl").is_file():
        res["metrics"] = read_jsonl(d / "metrics.jsonl")
    if (d / "config.json").is_file():  # the resolved settings, so a table can say what ran even after a recipe changes
        res["config"] = json.loads((d / "config.json").read_text())
    ck = d / "best.safetensors"
    if code not in (0, None) or not ck.is_file():
        res["failed"] = f"training exited with {code}; see log.txt"
        return
    # the run's reader options (e.g. labels=ferplus) name its data: evaluation reads the same
    options = [a for i in range(0, len(flags), 2) if flags[i] == "--option" for a in flags[i : i + 2]]
    # ten-crop takes crops of the size the run trained on; a run trained on whole faces has none
    crop = res.get("config", {}).get("augment", {}).get("crop", 0)
    for tta in ("none", "tencrop") if crop else ("none",):
        r = subprocess.run(lrfer("evaluate", "--checkpoint", str(ck), "--data", data, "--split", "PublicTest", "--tta", tta,
                                 "--no-latency", "--no-progress", "--out", str(d / f"eval_{tta}"), *options), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        if r.returncode == 0:
            rep = json.loads((d / f"eval_{tta}" / "report.json").read_text())
            res[f"publictest_{tta}"] = {k: rep[k] for k in ("accuracy", "macro_f1", "ece", "n")}
    r = subprocess.run(lrfer("sweep", "--checkpoint", str(ck), "--data", data, "--split", "PublicTest", "--no-progress",
                             "--out", str(d / "sweep"), *options), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if r.returncode == 0:
        res["sweep"] = json.loads((d / "sweep" / "sweep.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", default="/tmp/lrfer_runs", type=Path)
    ap.add_argument("--budget", type=float, default=540, help="seconds for the whole command")
    ap.add_argument("--probe-faces", type=int, default=8192, help="training faces per probe epoch")
    ap.add_argument("--no-probe", action="store_true", help="train with the recipes' (or the runs' own) epochs, no probe")
    ap.add_argument("--run", action="append", required=True, help="name=recipe[:key=value,...]")
    ap.add_argument("--ship", action="append", default=[], help="run whose best checkpoint is copied to --out (repeatable)")
    args = ap.parse_args()
    start = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    runs = [run_spec(r) for r in args.run]
    log = open(args.out / "log.txt", "w", buffering=1)
    env_info = subprocess.run([sys.executable, "-c", "import torch;print(torch.__version__, torch.cuda.get_device_name(0))"], capture_output=True, text=True).stdout.strip()

    # 1. probe: each run's throughput with all of them side by side, then its own epochs
    rates: dict[str, float] = {}
    epochs: dict[str, int | None] = {name: None for name, _, _ in runs}
    if not args.no_probe:
        rates = probe(runs, args.data, args.work / "probe", log, args.probe_faces)
        train_window = args.budget - (time.time() - start) - EVAL_SECONDS - 30  # 30: process start, data load, last validation
        for name, recipe, flags in runs:
            if name in rates:
                # validation adds ~13% (3589 faces, forward only); the 1.15 margin covers the runs
                # slowing each other more over a long run than in a short probe
                epoch_s = N_TRAIN / rates[name] * 1.13 * 1.15
                epochs[name] = int(max(1, min(recipe_epochs(recipe, flags), train_window // epoch_s)))
        log.write(f"rates {rates} -> epochs {epochs}\n")
        runs = [r for r in runs if r[0] in rates]

    summary = {
        "script": "bench/gpu/train_fer2013.py",
        "command": " ".join(sys.argv),
        "commit": os.environ.get("LRFER_COMMIT", ""),
        "machine": f"{platform.node()} {env_info}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "probe_images_per_s": rates,
        "runs": {},
    }
    # 2. one pipeline per run, side by side
    deadline = start + args.budget - EVAL_SECONDS
    threads = [threading.Thread(target=pipeline, args=(name, recipe, flags, epochs[name], args.data, args.work, deadline, log, summary["runs"]))
               for name, recipe, flags in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    summary["total_seconds"] = round(time.time() - start, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for name in args.ship:
        ck = args.work / name / "best.safetensors"
        if ck.is_file():
            (args.out / f"{name}_best.safetensors").write_bytes(ck.read_bytes())


if __name__ == "__main__":
    main()
