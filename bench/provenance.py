"""Where a benchmark number came from: script, command, commit, machine, date, seed.

Every results file under ``bench/results/`` carries this block, so a figure in the README can be
traced to the code and the machine that produced it.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        return next((ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("model name")), platform.processor())
    return platform.processor()


def provenance(script: str, seed: Optional[int] = None, *, machine: Optional[str] = None, **extra) -> dict:
    """The provenance block of a results file (``dirty_tree``: tracked files differ from the commit).

    ``machine`` replaces the default description (node, architecture, torch threads and version).
    """
    return {
        "script": script,
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "commit": _git("rev-parse", "HEAD"),
        "dirty_tree": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "machine": machine or f"{platform.node()} {platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seed": seed,
        **extra,
    }
