"""Training under faults (issue 28): whatever a kill leaves (a checkpoint without its metrics row,
a cut or doubled row, a deleted log, the temporary file of a checkpoint write) ``--resume`` puts
right: the log has every epoch once, the run folder holds no temporary file, at most the epoch in
progress is lost. Then the real thing: SIGKILL at random moments of a short run, 20 times and
more, at random delays and at the moments a checkpoint or a metrics row is being written."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from lrfer.cli import main
from lrfer.files import read_jsonl
from lrfer.models.checkpoint import load_checkpoint
from tests.conftest import make_faceset
from tests.hostile.test_cli_inputs import one_line

RECIPE = """model = "resnet18_fer_slim"
model_kwargs = {{ width = {width}, blocks = [1] }}
image_size = 24
batch_size = 8
val_split = "PublicTest"
epochs = {epochs}
"""


def _setup(tmp_path: Path, epochs: int, width: int = 4, n: int = 48) -> list[str]:
    faces = make_faceset(n, size=24)
    data = tmp_path / "faces.npz"
    np.savez(data, images=faces.images[:, 0].numpy(), labels=faces.labels.numpy(), class_names=np.array(faces.classes), usage=faces.split)
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE.format(width=width, epochs=epochs))
    return ["train", "--recipe", str(recipe), "--data", str(data), "--out", str(tmp_path / "run"), "--seed", "1", "--no-progress"]


def _epochs(log: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in log.read_text().splitlines()]


def _litter(run: Path) -> list[str]:
    return sorted(p.name for p in run.iterdir() if ".tmp" in p.name)


def _cut_last_row(log: Path) -> None:  # killed between the checkpoint and the row
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))


def _double_last_row(log: Path) -> None:
    log.write_text(log.read_text() + log.read_text().splitlines(keepends=True)[-1])


def _stale_temps(log: Path) -> None:  # killed inside atomic writes: full-size temporary files
    run = log.parent
    (run / "last.safetensors.k2x9_q7a.tmp").write_bytes((run / "last.safetensors").read_bytes()[:5000])
    (run / "curves.png.abcdefgh.tmp").write_bytes(b"\x89PNG half")
    (run / "metrics.jsonl.0123abcd.tmp").write_text('{"epoch": 1}\n')


DAMAGE = {
    "checkpoint-without-its-row": _cut_last_row,
    "row-cut-in-the-middle": lambda log: log.write_text(log.read_text()[:-9]),
    "row-doubled": _double_last_row,
    "log-deleted": lambda log: log.unlink(),
    "a-damaged-row-in-the-middle": lambda log: log.write_text('{"epo\n' + "".join(log.read_text().splitlines(keepends=True)[1:])),
    "temporary-files-of-killed-writes": _stale_temps,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resume_puts_right_what_a_kill_left(tmp_path, capsys, damage):
    argv = _setup(tmp_path, epochs=2)
    run = tmp_path / "run"
    assert main(argv) == 0
    log = run / "metrics.jsonl"
    rows = read_jsonl(log)
    assert _epochs(log) == [1, 2] and _litter(run) == []
    (run / "notes.tmp").write_text("the user's")  # not a name lrfer's writes leave: kept
    DAMAGE[damage](log)
    assert main([*argv[:-1], "--resume", "--epochs", "3", "--no-progress"]) == 0
    assert _epochs(log) == [1, 2, 3]  # every epoch once
    assert read_jsonl(log)[:2] == rows  # the rows of the epochs before the kill, as they were
    assert load_checkpoint(run / "last.safetensors").info["metrics"] == read_jsonl(log)[-1]
    assert _litter(run) == ["notes.tmp"]
    capsys.readouterr()


def test_a_cut_checkpoint_to_resume_from_is_one_line(tmp_path, capsys):
    """A last.safetensors cut short (a copy, not lrfer's write, which is atomic): named, not a traceback."""
    argv = _setup(tmp_path, epochs=1)
    assert main(argv) == 0
    last = tmp_path / "run" / "last.safetensors"
    last.write_bytes(last.read_bytes()[:3000])
    capsys.readouterr()
    code, line = one_line(capsys, *argv, "--resume", "--epochs", "2")
    assert code == 2 and str(last) in line, line


# ---------------------------------------------------------------------------- SIGKILL, many times
def _train_quietly(argv: list[str]) -> None:
    """A child process: ``lrfer train`` exactly as the command line runs it, output to /dev/null."""
    import torch

    torch.set_num_threads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os._exit(main(argv))


def _kill_at(proc, run: Path, how: str, rng: random.Random) -> None:
    """SIGKILL ``proc``: after a random delay (or the next checkpoint, if sooner: a run makes at
    most one epoch of progress per kill, on however fast a machine), or as soon as a temporary
    file of a checkpoint write shows (inside the write), or as soon as ``last.safetensors`` is
    replaced (between the checkpoint and its metrics row, or inside the append)."""
    last = run / "last.safetensors"
    before = last.stat().st_ino if last.exists() else None
    stale = set(os.listdir(run)) if run.is_dir() else set()  # a killed write's, until the resume removes them
    deadline = time.monotonic() + (rng.uniform(0.05, 1.0) if how == "random" else 20)
    while time.monotonic() < deadline and proc.is_alive():
        if how == "in-a-write" and run.is_dir() and any(".tmp" in name for name in set(os.listdir(run)) - stale):
            break
        if how != "in-a-write" and last.exists() and last.stat().st_ino != before:
            break
        time.sleep(0.0005 if how != "random" else 0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()


def test_sigkill_at_random_moments_then_resume(tmp_path, monkeypatch):
    """At least 20 kills, a third each at a random delay, inside a checkpoint write, and right
    after a checkpoint is replaced; after each kill the next process resumes. Each time: the
    checkpoint loads (never torn) and never goes back, the log claims no epoch the checkpoint
    lacks; at the end the log has every epoch once and the folder no temporary file."""
    epochs = 30  # 21 kills make at most 21 epochs (see _kill_at): the run is never over before they are
    argv = [*_setup(tmp_path, epochs=epochs, width=16, n=32), "--device", "cpu", "--resume"]
    run = tmp_path / "run"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for the fork server, which the first child starts
    ctx = multiprocessing.get_context("forkserver")
    # each child starts in a tenth of a second: torch._dynamo is what torch.optim imports on first use (2 s)
    ctx.set_forkserver_preload(["torch", "torch._dynamo", "lrfer.train.engine", "lrfer.cli", "lrfer.data.readers"])
    rng = random.Random(28)
    kills, done_before, seen = 0, 0, {"tmp files left": 0, "a row short": 0, "a row cut": 0}
    while kills < 21 or kills < 60 and not seen["tmp files left"]:
        proc = ctx.Process(target=_train_quietly, args=(argv,))
        proc.start()
        _kill_at(proc, run, ("random", "in-a-write", "after-a-checkpoint")[kills % 3], rng)
        kills += 1
        if not (run / "last.safetensors").exists():
            continue
        done = load_checkpoint(run / "last.safetensors").state["epoch"]  # loads: the write is atomic
        text = (run / "metrics.jsonl").read_text()
        logged = [json.loads(line)["epoch"] for line in text.splitlines(keepends=True) if line.endswith("\n")]
        assert done >= done_before and (not logged or max(logged) <= done), (done_before, done, logged)
        seen["tmp files left"] += bool(_litter(run))
        seen["a row short"] += len(logged) < done
        seen["a row cut"] += not text.endswith("\n") and bool(text)
        done_before = done
        if done == epochs:
            break
    print(f"{kills} kills, epoch {done_before} of {epochs} done: {seen}")
    assert kills >= 20 and done_before < epochs, "the run ended before 20 kills: make it longer"
    # a kill inside a checkpoint write was among them (the window between the checkpoint's rename
    # and its row is microseconds wide: a kill seldom lands there, so test_resume_puts_right_what_a_kill_left
    # makes that case, and the other leftovers, by hand)
    assert seen["tmp files left"] > 0, seen
    proc = ctx.Process(target=_train_quietly, args=(argv,))
    proc.start()
    proc.join(240)
    assert proc.exitcode == 0
    assert _epochs(run / "metrics.jsonl") == list(range(1, epochs + 1))
    assert load_checkpoint(run / "last.safetensors").state["epoch"] == epochs
    assert _litter(run) == []
