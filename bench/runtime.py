"""The inference runtime on a small machine (issue 26): install size, start-up, memory and speed of
installed environments, side by side in one run.

    python bench/runtime.py [--env NAME=VENV ...] [--src NAME=DIR] [--runtime-venv DIR [--skip-build] | --no-runtime]
                            [--photos 200] [--video-frames 300] [--out bench/results/runtime.json]
    python bench/runtime.py --table-only | --check

Environments: ``runtime``, a virtual environment this script builds with ``python -m venv`` and
``pip install <this checkout>`` (no extras: what ``pip install lrfer`` gives; ``--runtime-venv DIR``
keeps it there, ``--skip-build`` reuses it), and each ``--env NAME=VENV`` (for instance the full
development environment). ``--src NAME=DIR`` puts ``DIR`` first on that environment's
``PYTHONPATH``, to measure the lrfer of one commit with the packages of an existing environment
(the baseline ``runtime_before.json`` is ``--no-runtime --env today=/work/main/.venv --src
today=<a checkout of the commit before>/src``). Otherwise nothing from this checkout is on the path:
each environment runs its own installed lrfer, as a user has it.

For each environment, every command in a fresh process, timed with its peak resident memory (the
child of a tiny wrapper process, so that no parent's memory is counted):

- install: disk use of its site-packages, and of lrfer and what it requires without extras (what
  ``pip install lrfer`` installs, measured from the packages there); whether ``import torch`` works;
- ``lrfer --help``: median wall time of 5 runs (after one run that warms the page cache);
- ``lrfer predict one.png`` (the astronaut photo at 256x256, one face of 44 px): a first run with
  ``LRFER_CACHE`` an empty folder (cold cache: a model export, if the install needs one, is paid
  here), then the median of 3 with the cache filled;
- photos/s: ``lrfer predict DIR --json`` on ``--photos`` 256x256 photos, each with 1-3 FER2013
  PublicTest faces of 24-64 px pasted on the demo scene's wall (made in a temporary folder at run
  time, never kept); photos/s net of start-up, ``(N - 1) / (t(N photos) - t(one.png))`` with the same
  flags; default settings, ``--upscale 1``, and ``--backend torch`` where torch is installed.
  Skipped with one line when ``../shared/data/fer2013.npz`` is absent;
- classifier faces/s at batch 1 and 64 on 48x48 crops, in one process of that environment
  (``lrfer.Recognizer(detector=None).classifier.predict_proba``);
- video frames/s: ``bench/video_fps.py --only-default`` run by that environment's Python.

Writes ``bench/results/runtime.json`` (``--out``), then the tables in README.md and docs/runtime.md
from ``bench/results/runtime_before.json`` (before) and ``runtime.json`` (after); the goals are
relative to the before file. ``--table-only`` rewrites them, ``--check`` fails when they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from _common import DATA, DOCS, README, RESULTS, ROOT, cpu_model, example_module, load_result, provenance, write_blocks

BEFORE, AFTER = "runtime_before.json", "runtime.json"
PHOTO_PX, FACES_PER_PHOTO, FACE_PX = 256, (1, 3), (24, 64)
#: the issue's goals: absolute, or relative to the before file
GOALS = {"install_mb": 400, "help_s": 0.5, "predict_cold_s": 1.5, "predict_peak_mb": 250, "photos_x": 3.0}
#: modules whose import the start-up probes report (torch is what the runtime must not load)
HEAVY = ("torch", "torchvision", "onnx", "onnxruntime", "matplotlib", "av", "safetensors")

# Runs a command as its only child and reports the child's wall time, CPU time (user + system: less
# sensitive than wall time to other work on the machine) and peak RSS: a process's ru_maxrss starts
# at its parent's at fork, so the benchmark's own memory must not be the parent.
WRAP = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
with open(sys.argv[2], "ab") as log:
    rc = subprocess.call(sys.argv[3:], stdout=log, stderr=log)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    json.dump({"rc": rc, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}, f)
"""

# The CLI as the console script runs it, reporting at exit which heavy modules it imported.
PROBE = r"""
import atexit, json, sys
atexit.register(lambda: print("LRFER_PROBE " + json.dumps(sorted(m for m in %r if m in sys.modules)), file=sys.__stderr__))
from lrfer.cli import main
sys.argv = ["lrfer", *sys.argv[1:]]
sys.exit(main())
""" % (HEAVY,)

# What an environment holds: its site-packages, and lrfer with what it requires without extras.
INFO = r"""
import importlib.metadata as md, importlib.util, json, os, platform, sys, sysconfig
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

def disk(paths):
    total = 0
    for p in paths:
        try:
            total += os.lstat(p).st_blocks * 512
        except OSError:
            pass
    return total

def tree(path):
    return disk(os.path.join(r, f) for r, _, fs in os.walk(path) for f in fs)

norm = lambda n: n.lower().replace("_", "-").replace(".", "-")
purelib = sysconfig.get_paths()["purelib"]
pkg = importlib.util.find_spec("lrfer").submodule_search_locations[0]
sizes, seen, todo = {}, set(), [("lrfer", "")]
while todo:  # (package, extra): a requirement's extras bring their own requirements (torch's cuda-toolkit[...])
    name, extra = todo.pop()
    if (name, extra) in seen:
        continue
    seen.add((name, extra))
    dist = md.distribution(name)
    if name not in sizes:
        sizes[name] = disk({str(dist.locate_file(f)) for f in dist.files or []})
    for r in dist.requires or []:
        req = Requirement(r)
        if req.marker is None or req.marker.evaluate({"extra": extra}):
            todo += [(norm(req.name), e) for e in ["", *req.extras]]
if not os.path.realpath(pkg).startswith(os.path.realpath(purelib)):
    sizes["lrfer"] += tree(pkg)  # an editable install: the sources are outside site-packages
mb = lambda b: round(b / 2**20, 1)
print(json.dumps({
    "python": platform.python_version(), "lrfer_version": md.version("lrfer"), "lrfer_package": pkg,
    "site_packages_mb": mb(tree(purelib)), "core_install_mb": mb(sum(sizes.values())),
    "core_packages_mb": {k: mb(v) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])},
}))
"""

# Faces/s of the classifier alone, on uint8 48x48 crops, in one process.
CLASSIFY = r"""
import json, sys, time
import numpy as np
import lrfer
backend, seconds = sys.argv[1], float(sys.argv[2])
rec = lrfer.Recognizer(detector=None, **({} if backend == "auto" else {"backend": backend}))
clf = rec.classifier
out = {"backend": backend, "runs_on": type(clf).__name__}
rng = np.random.default_rng(0)
for b in (1, 64):
    x = rng.integers(0, 256, (b, clf.in_chans, 48, 48), dtype=np.uint8)
    clf.predict_proba(x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict_proba(x)
        n += b
    out[f"faces_per_s_batch{b}"] = round(n / (time.perf_counter() - t0), 1)
print(json.dumps(out))
"""


@dataclass
class Env:
    name: str
    venv: Path
    src: Optional[Path]
    cache: Path  # LRFER_CACHE: empty at the start
    log: Path  # every child's stdout and stderr

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def lrfer(self) -> str:
        return str(self.venv / "bin" / "lrfer")

    def environ(self) -> dict[str, str]:
        # PYTHONDONTWRITEBYTECODE: a user's Python caches its bytecode, and compiling every module at each start is not what they get
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "LRFER_CACHE", "PYTHONDONTWRITEBYTECODE")}
        env["LRFER_CACHE"] = str(self.cache)
        if self.src:
            env["PYTHONPATH"] = str(self.src)
        return env


# ---------------------------------------------------------------------- running children
def shown(cmd: list[str]) -> str:
    """A command for a message: a ``-c`` script as its first line."""
    return " ".join(a.strip().splitlines()[0] + " ..." if "\n" in a else a for a in cmd)


def failed(env: Env, cmd: list[str], rc: int) -> None:
    """Stop the run: a figure from a command that failed means nothing (the log goes with the temporary folder: its end is shown)."""
    tail = "\n".join(env.log.read_text().splitlines()[-12:])
    raise SystemExit(f"{tail}\n{env.name}: '{shown(cmd)}' exited with {rc} (output above; --logs DIR keeps it all)")


def timed(env: Env, cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` in a fresh process: its wall time and peak RSS (MB); fails loudly on a non-zero exit."""
    with tempfile.NamedTemporaryFile(suffix=".json") as rep:
        with env.log.open("a") as log:
            log.write(f"\n$ {' '.join(cmd)}\n")
        subprocess.run([sys.executable, "-I", "-S", "-c", WRAP, rep.name, str(env.log), *cmd], env=env.environ(), cwd=cwd, check=True)
        r = json.loads(Path(rep.name).read_text())
    if r["rc"] != 0:
        failed(env, cmd, r["rc"])
    return {"wall_s": round(r["wall_s"], 3), "cpu_s": round(r["cpu_s"], 3), "peak_rss_mb": round(r["peak_rss_mb"], 1)}


def output(env: Env, cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=env.environ(), cwd=cwd, capture_output=True, text=True)
    with env.log.open("a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    if check and done.returncode != 0:
        failed(env, cmd, done.returncode)
    return done


def probe(env: Env, args: list[str], cwd: Path) -> list[str]:
    """The heavy modules the CLI imports for ``lrfer ARGS``."""
    done = output(env, [env.python, "-c", PROBE, *args], cwd)
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("LRFER_PROBE "))
    return json.loads(line.split(" ", 1)[1])


def median_run(runs: list[dict]) -> dict:
    return {
        "wall_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "cpu_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "runs_s": [r["wall_s"] for r in runs],
    }


def source_commit(src: Path) -> Optional[dict]:
    """The git commit of a source folder given by ``--src``, and whether it differs from it."""
    git = lambda *a: subprocess.run(["git", "-C", str(src), *a], capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "HEAD")
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--", "."))} if commit else None


# ---------------------------------------------------------------------- measurements
def install(env: Env, cwd: Path) -> dict:
    info = json.loads(output(env, [env.python, "-c", INFO], cwd).stdout)
    info["torch"] = output(env, [env.python, "-c", "import torch"], cwd, check=False).returncode == 0
    if env.src:
        info["src"] = {"path": str(env.src), **(source_commit(env.src) or {})}
    return info


def start_up(env: Env, one: Path, cwd: Path) -> dict:
    """``lrfer --help`` (median of 5) and ``lrfer predict one.png`` (cold cache, then warm)."""
    help_imports = probe(env, ["--help"], cwd)  # also warms the page cache
    helps = [timed(env, [env.lrfer, "--help"], cwd) for _ in range(5)]
    cmd = [env.lrfer, "predict", str(one), "--json", str(cwd / "one.json")]
    cold = timed(env, cmd, cwd)
    predict_imports = probe(env, cmd[1:], cwd)
    warm = [timed(env, cmd, cwd) for _ in range(3)]
    return {
        "help": {**median_run(helps), "imports": help_imports},
        "predict_one": {"cold_cache": cold, "warm_cache": median_run(warm), "imports": predict_imports},
    }


def photo_settings(has_torch: bool) -> list[tuple[str, list[str]]]:
    return [("default", []), ("--upscale 1", ["--upscale", "1"])] + ([("--backend torch", ["--backend", "torch"])] if has_torch else [])


def photos(env: Env, has_torch: bool, one: Path, folder: Path, pasted: int, cwd: Path) -> list[dict]:
    """Photos/s of ``lrfer predict DIR`` with each setting, net of its start-up on one photo."""
    n = len(list(folder.glob("*.png")))
    rows = []
    for name, flags in photo_settings(has_torch):
        t1 = timed(env, [env.lrfer, "predict", str(one), *flags, "--json", str(cwd / "one.json")], cwd)
        tn = timed(env, [env.lrfer, "predict", str(folder), *flags, "--json", str(cwd / "photos.json")], cwd)
        records = json.loads((cwd / "photos.json").read_text())
        rows.append({
            "setting": name, "photos": n, "wall_s": tn["wall_s"], "one_photo_wall_s": t1["wall_s"], "peak_rss_mb": tn["peak_rss_mb"],
            "cpu_s": tn["cpu_s"], "one_photo_cpu_s": t1["cpu_s"],
            "photos_per_s": round((n - 1) / (tn["wall_s"] - t1["wall_s"]), 2), "photos_per_s_end_to_end": round(n / tn["wall_s"], 2),
            "faces_found": sum(isinstance(r.get("face"), int) for r in records), "faces_pasted": pasted,
        })  # fmt: skip
        print(f"  {env.name} photos {name}: {rows[-1]['photos_per_s']} photos/s", flush=True)
    return rows


def classifier(env: Env, has_torch: bool, cwd: Path, seconds: float = 3.0) -> list[dict]:
    return [json.loads(output(env, [env.python, "-c", CLASSIFY, b, str(seconds)], cwd).stdout) for b in ["auto"] + (["torch"] if has_torch else [])]


def video(env: Env, frames: int, repeats: int, cwd: Path) -> dict:
    out = cwd / "video.json"
    cmd = [env.python, str(ROOT / "bench" / "video_fps.py"), "--only-default", "--frames", str(frames), "--repeats", str(repeats), "--out", str(out)]
    run = timed(env, cmd, cwd)
    row = json.loads(out.read_text())["results"][0]
    return {**row, "peak_rss_mb": run["peak_rss_mb"]}


def measure(env: Env, one: Path, folder: Optional[Path], pasted: int, args: argparse.Namespace) -> dict:
    t0, load0 = time.perf_counter(), round(os.getloadavg()[0], 2)
    if load0 > 0.5 * (os.cpu_count() or 1):
        print(f"note: load average {load0} on {os.cpu_count()} CPUs: other work on this machine slows the figures of {env.name}", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-{env.name}-") as tmp:
        cwd = Path(tmp)
        r = {"venv": str(env.venv), "install": install(env, cwd)}
        print(f"{env.name}: {json.dumps(r['install'])}", flush=True)
        has_torch = r["install"]["torch"]
        r.update(start_up(env, one, cwd))
        print(f"  {env.name} help {r['help']['wall_s']} s, predict one.png {r['predict_one']['cold_cache']['wall_s']} s cold", flush=True)
        r["photos"] = photos(env, has_torch, one, folder, pasted, cwd) if folder else None
        r["classifier"] = classifier(env, has_torch, cwd)
        r["video"] = video(env, args.video_frames, args.video_repeats, cwd) if args.video_frames else None
    r["seconds"] = round(time.perf_counter() - t0, 1)
    r["load_avg_1min"] = {"start": load0, "end": round(os.getloadavg()[0], 2)}  # other work on the machine slows every figure
    return r


# ---------------------------------------------------------------------- inputs
def make_one(path: Path) -> None:
    """The astronaut photo at 256x256: one face of 44 px."""
    from PIL import Image

    Image.open(ROOT / "examples" / "astronaut.png").convert("RGB").resize((PHOTO_PX, PHOTO_PX), Image.BOX).save(path)


def make_photos(folder: Path, n: int, seed: int, data: Path) -> int:
    """``n`` photos of 1-3 FER2013 PublicTest faces (24-64 px) on the demo wall; the faces pasted."""
    import numpy as np
    from PIL import Image

    d = np.load(data)
    faces = d["images"][d["usage"] == "PublicTest"]
    rng = np.random.default_rng(seed)
    wall = example_module("make_scene").backdrop().astype(np.int16)
    pasted = 0
    for i in range(n):
        y, x = (int(rng.integers(0, s - PHOTO_PX)) for s in wall.shape[:2])
        part = wall[y : y + PHOTO_PX, x : x + PHOTO_PX] + rng.integers(-40, 40, 3)
        canvas = Image.fromarray(np.clip(part[:, ::-1] if rng.random() < 0.5 else part, 0, 255).astype(np.uint8))
        placed: list[tuple[int, int, int, int]] = []
        for _ in range(int(rng.integers(FACES_PER_PHOTO[0], FACES_PER_PHOTO[1] + 1))):
            s = int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
            for _ in range(100):  # a free spot, a quarter of a face away from the others
                fx, fy, gap = int(rng.integers(0, PHOTO_PX - s)), int(rng.integers(0, PHOTO_PX - s)), s // 4
                if all(fx + s + gap <= a or c + gap <= fx or fy + s + gap <= b or e + gap <= fy for a, b, c, e in placed):
                    break
            else:
                continue  # no room left in this photo
            placed.append((fx, fy, fx + s, fy + s))
            canvas.paste(Image.fromarray(faces[int(rng.integers(len(faces)))]).resize((s, s), Image.BOX).convert("RGB"), (fx, fy))
        pasted += len(placed)
        canvas.save(folder / f"{i:04d}.png")
    return pasted


def build_runtime(venv: Path, python: str) -> None:
    """A fresh virtual environment with this checkout installed, no extras (``pip install lrfer``)."""
    print(f"building {venv}: python -m venv, pip install {ROOT}", flush=True)
    subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True)


# ---------------------------------------------------------------------- tables
def env_rows(before: Optional[dict], after: Optional[dict]) -> list[tuple[str, dict]]:
    """(label, environment results) for every environment of the before and after files."""
    return [(f"{state}: `{name}`", r) for state, res in (("before", before), ("after", after)) if res for name, r in res["envs"].items()]


def photo_rate(r: dict, setting: str) -> Optional[float]:
    return next((p["photos_per_s"] for p in r.get("photos") or [] if p["setting"] == setting), None)


def predict_peak(r: dict) -> float:
    p = r["predict_one"]
    return max(p["cold_cache"]["peak_rss_mb"], p["warm_cache"]["peak_rss_mb"])


def video_fps(r: dict) -> Optional[float]:
    return r["video"]["fps"] if r.get("video") else None


def fmt(x: Optional[float], spec: str) -> str:
    return "" if x is None else format(x, spec)


def reference(before: dict) -> dict:
    """The before file's environment the goals are relative to (the first)."""
    return next(iter(before["envs"].values()))


def main_table(before: Optional[dict], after: Optional[dict]) -> list[str]:
    head = ("| | install (MB) | `lrfer --help` (s) | `--help` peak (MB) | `predict one.png` cold / warm cache (s) | `predict` peak (MB) "
            "| photos/s | photos/s, `--upscale 1` | classifier faces/s, batch 1 / 64 | video frames/s |")  # fmt: skip
    lines = [head, "|---|" + "---:|" * 9]
    for label, r in env_rows(before, after):
        p, c = r["predict_one"], r["classifier"][0]
        lines.append(
            f"| {label} | {r['install']['core_install_mb']:.0f} | {r['help']['wall_s']:.2f} | {r['help']['peak_rss_mb']:.0f} "
            f"| {p['cold_cache']['wall_s']:.1f} / {p['warm_cache']['wall_s']:.1f} | {predict_peak(r):.0f} "
            f"| {fmt(photo_rate(r, 'default'), '.1f')} | {fmt(photo_rate(r, '--upscale 1'), '.1f')} "
            f"| {c['faces_per_s_batch1']:.0f} / {c['faces_per_s_batch64']:.0f} | {fmt(video_fps(r), '.1f')} |"
        )
    if before:
        ref = reference(before)
        photos_goal = f"≥ {GOALS['photos_x'] * photo_rate(ref, 'default'):.1f}" if photo_rate(ref, "default") else ""
        lines.append(
            f"| goal | ≤ {GOALS['install_mb']} | ≤ {GOALS['help_s']} | | ≤ {GOALS['predict_cold_s']} cold | ≤ {GOALS['predict_peak_mb']} "
            f"| {photos_goal} | | | ≥ {fmt(video_fps(ref), '.1f')} |"
        )
    return lines


def goal_checks(before: dict, after: Optional[dict]) -> list[tuple[str, float, Optional[float], str, float]]:
    """(goal, before, after, comparison, target) per goal of the issue; after from the ``runtime`` environment."""
    ref = reference(before)
    new = (after["envs"].get("runtime") or next(iter(after["envs"].values()))) if after else None
    get = lambda r, f: None if r is None else f(r)
    photos_before = photo_rate(ref, "default")
    return [
        ("`pip install lrfer` (MB)", ref["install"]["core_install_mb"], get(new, lambda r: r["install"]["core_install_mb"]), "≤", GOALS["install_mb"]),
        ("`lrfer --help` (s)", ref["help"]["wall_s"], get(new, lambda r: r["help"]["wall_s"]), "≤", GOALS["help_s"]),
        ("`lrfer predict one.png`, cold cache (s)", ref["predict_one"]["cold_cache"]["wall_s"], get(new, lambda r: r["predict_one"]["cold_cache"]["wall_s"]), "≤", GOALS["predict_cold_s"]),
        ("`lrfer predict one.png`, peak memory (MB)", predict_peak(ref), get(new, predict_peak), "≤", GOALS["predict_peak_mb"]),
        (f"photos/s, default settings ({GOALS['photos_x']:.0f}x before)", photos_before, get(new, lambda r: photo_rate(r, "default")), "≥", GOALS["photos_x"] * (photos_before or 0)),
        ("video frames/s (no lower than before)", video_fps(ref), get(new, video_fps), "≥", video_fps(ref)),
    ]  # fmt: skip


def goals_table(before: Optional[dict], after: Optional[dict]) -> list[str]:
    if not before:
        return ["No baseline yet: run `bench/runtime.py` on the code before the change and keep it as `bench/results/runtime_before.json`."]
    lines = ["| goal | target | before | after (`runtime`) | met |", "|---|---:|---:|---:|---|"]
    for name, old, new, op, target in goal_checks(before, after):
        if old is None or target is None:
            continue
        met = "" if new is None else ("yes" if (new <= target if op == "≤" else new >= target) else "**no**")
        spec = ".0f" if target >= 100 else ".2f"
        lines.append(f"| {name} | {op} {target:{spec}} | {old:{spec}} | {fmt(new, spec) or 'not measured yet'} | {met} |")
    return lines


def details_table(before: Optional[dict], after: Optional[dict]) -> list[str]:
    lines = ["| | site-packages (MB) | torch installed | `--help` imports | `predict` imports | photos/s end to end | photos/s, `--backend torch` | faces found / pasted | classifier faces/s on torch, batch 1 / 64 | load average at start / end |",
             "|---|---:|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for label, r in env_rows(before, after):
        ph = {p["setting"]: p for p in r.get("photos") or []}
        torch_clf = next((c for c in r["classifier"] if c["backend"] == "torch"), None)
        d, load = ph.get("default"), r["load_avg_1min"]
        found = f"{d['faces_found']} / {d['faces_pasted']}" if d else ""
        on_torch = f"{torch_clf['faces_per_s_batch1']:.0f} / {torch_clf['faces_per_s_batch64']:.0f}" if torch_clf else ""
        lines.append(
            f"| {label} | {r['install']['site_packages_mb']:.0f} | {'yes' if r['install']['torch'] else 'no'} "
            f"| {', '.join(r['help']['imports']) or 'none of them'} | {', '.join(r['predict_one']['imports']) or 'none of them'} "
            f"| {fmt(d and d['photos_per_s_end_to_end'], '.1f')} | {fmt(photo_rate(r, '--backend torch'), '.1f')} "
            f"| {found} | {on_torch} | {load['start']:.1f} / {load['end']:.1f} |"
        )
    return lines


def source_lines(before: Optional[dict], after: Optional[dict]) -> str:
    out = []
    for state, name, res in (("Before", BEFORE, before), ("After", AFTER, after)):
        if res:
            p, s = res["provenance"], res["settings"]
            srcs = [f"`{n}` from `{r['install']['src']['commit'][:7]}`" for n, r in res["envs"].items() if r["install"].get("src", {}).get("commit")]
            out.append(
                f"{state}: `bench/results/{name}`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`"
                + ("" if not srcs else f" (lrfer of {', '.join(srcs)})")
                + f"; {s['photos']} photos, video {s['video_frames']} frames."
            )
    return " ".join(out)


def write_tables(check: bool) -> None:
    before, after = load_result(BEFORE), load_result(AFTER)
    if not (before or after):
        raise SystemExit(f"no bench/results/{BEFORE} nor {AFTER}: run python bench/runtime.py first")
    table = ["\n".join(main_table(before, after)), source_lines(before, after)]
    write_blocks(README, {"runtime": table}, check=check)
    write_blocks(
        DOCS / "runtime.md",
        {"runtime": table, "runtime-goals": ["\n".join(goals_table(before, after))], "runtime-details": ["\n".join(details_table(before, after))]},
        check=check,
    )


# ---------------------------------------------------------------------- main
def parse_envs(args: argparse.Namespace, tmp: Path) -> list[Env]:
    pairs = lambda items, flag: dict(_pair(x, flag) for x in items)
    given, srcs = pairs(args.env, "--env"), pairs(args.src, "--src")
    if unknown := set(srcs) - set(given) - ({"runtime"} if not args.no_runtime else set()):
        raise SystemExit(f"--src names an environment not measured: {', '.join(sorted(unknown))}")
    venvs = {} if args.no_runtime else {"runtime": Path(args.runtime_venv) if args.runtime_venv else tmp / "runtime-venv"}
    venvs.update({k: Path(v) for k, v in given.items()})
    if not venvs:
        raise SystemExit("nothing to measure: give --env NAME=VENV, or leave out --no-runtime")
    for name, venv in venvs.items():
        if not (venv / "bin" / "lrfer").exists() and not (name == "runtime" and not args.skip_build):
            raise SystemExit(f"{venv} has no bin/lrfer: give a virtual environment with lrfer installed")
    envs = []
    for name, venv in venvs.items():
        (tmp / f"cache-{name}").mkdir()
        src = Path(srcs[name]).resolve() if name in srcs else None
        envs.append(Env(name, venv.absolute(), src, tmp / f"cache-{name}", (args.logs or tmp) / f"{name}.log"))
    return envs


def _pair(text: str, flag: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not (sep and name and value):
        raise SystemExit(f"{flag} {text}: give NAME=PATH")
    return name, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VENV", help="an environment to measure (repeatable)")
    ap.add_argument("--src", action="append", default=[], metavar="NAME=DIR", help="lrfer sources put first on that environment's path")
    ap.add_argument("--runtime-venv", help="where to build (or, with --skip-build, find) the runtime environment (default: a temporary folder)")
    ap.add_argument("--skip-build", action="store_true", help="reuse --runtime-venv as it is")
    ap.add_argument("--no-runtime", action="store_true", help="measure only the --env environments")
    ap.add_argument("--python", default=sys.executable, help="the interpreter the runtime environment is built from")
    ap.add_argument("--photos", type=int, default=200, help="photos for photos/s (0: skip)")
    ap.add_argument("--video-frames", type=int, default=300, help="frames of the bench/video_fps.py video (0: skip)")
    ap.add_argument("--video-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA, help=f"FER2013 archive for the photos (default: {DATA})")
    ap.add_argument("--logs", type=Path, help="keep each environment's command output in DIR/NAME.log (default: thrown away with the temporary folder)")
    ap.add_argument("--out", type=Path, default=RESULTS / AFTER)
    ap.add_argument("--table-only", action="store_true", help="rewrite the tables from the results files")
    ap.add_argument("--check", action="store_true", help="fail if README.md or docs/runtime.md differs from the results files; write nothing")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        run(args)
        if args.out.resolve() not in (RESULTS / BEFORE, RESULTS / AFTER):
            return  # a trial run: the documents show only the kept results
    write_tables(args.check)


def run(args: argparse.Namespace) -> None:
    machine = f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu_model()})"
    with tempfile.TemporaryDirectory(prefix="lrfer-bench-runtime-") as t:
        tmp = Path(t)
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
        envs = parse_envs(args, tmp)
        prov = provenance("bench/runtime.py", seed=args.seed, machine=machine)
        if not args.no_runtime and not args.skip_build:
            build_runtime(envs[0].venv, args.python)
        one, folder, pasted = tmp / "one.png", None, 0
        make_one(one)
        if args.photos and args.data.exists():
            folder = tmp / "photos"
            folder.mkdir()
            pasted = make_photos(folder, args.photos, args.seed, args.data)
        elif args.photos:
            print(f"photos/s skipped: no FER2013 archive at {args.data}", flush=True)
        results = {env.name: measure(env, one, folder, pasted, args) for env in envs}
    out = {
        "benchmark": "the inference runtime: install size, start-up time and memory, photos/s, classifier faces/s, video frames/s",
        "settings": {"photos": args.photos if folder else 0, "photo_px": PHOTO_PX, "faces_per_photo": FACES_PER_PHOTO, "face_px": FACE_PX,
                     "video_frames": args.video_frames, "video_repeats": args.video_repeats, "one_png": "examples/astronaut.png at 256x256 (one face, 44 px)"},
        "goals": GOALS,
        "envs": results,
        "provenance": prov,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
