"""Training across nodes: the same ``lrfer train`` command as two torchrun "nodes" on loopback.

Each node runs in its own folder, with its own copy of the recipe and the data, and names them by
relative paths: the two nodes share no files, as two machines would not. The commands are the
ones ``docs/scale.md`` shows (checked below), with 127.0.0.1 as the master's address.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import lrfer
from lrfer.models.checkpoint import load_checkpoint
from tests.train.test_engine import tiny_config, train_two_processes, write_npz

DOCS = Path(__file__).resolve().parents[2] / "docs" / "scale.md"
TRAIN = ["-m", "lrfer", "train", "--recipe", "recipe.toml", "--data", "faces.npz", "--out", "run", "--device", "cpu", "--no-progress"]


def node_args(node_rank: int, master: str, port: str) -> list[str]:
    """torchrun's arguments on node ``node_rank`` of two, one process each, static rendezvous at ``master:port``."""
    return ["--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(node_rank), "--master_addr", master, "--master_port", port, *TRAIN]


def free_port() -> str:
    with socket.socket() as s:  # a port free now: a fixed one can still be held by an earlier run
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def torch_env() -> dict:
    """The environment of a torchrun: the code under test from any working folder (PYTHONPATH=src
    is relative to the checkout), one thread per process (the CI machine has few cores)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(lrfer.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


def make_node(folder: Path, recipe: Path, data: Path) -> Path:
    """A node's working folder, with its own copy of the files the command names."""
    folder.mkdir(parents=True)
    shutil.copy(recipe, folder / "recipe.toml")
    shutil.copy(data, folder / "faces.npz")
    return folder


def run_two_nodes(nodes: list[Path], *extra: str, timeout: float = 240, check: bool = True) -> list[subprocess.CompletedProcess]:
    """Start both nodes' torchrun at once (each waits for the other at the rendezvous); their results.

    Their output goes to files beside the node folders, not pipes: a node blocked on a full pipe
    while the test waits on the other would stall both in a collective."""
    port = free_port()
    logs = [(node.with_suffix(".out"), node.with_suffix(".err")) for node in nodes]
    procs = []
    for rank, (node, (out, err)) in enumerate(zip(nodes, logs)):
        with out.open("w") as o, err.open("w") as e:
            procs.append(subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *node_args(rank, "127.0.0.1", port), *extra],
                                          cwd=node, env=torch_env(), stdout=o, stderr=e, start_new_session=True))  # fmt: skip
    try:
        for p in procs:
            p.wait(timeout=timeout)
    finally:
        for p in procs:  # a node left waiting for one that failed: end it, its workers with it
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    results = [subprocess.CompletedProcess(p.args, p.returncode, out.read_text(), err.read_text()) for p, (out, err) in zip(procs, logs)]
    for r in results:
        assert r.returncode == 0 or not check, r.stderr[-3000:]
    return results


def metrics_epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """A 2-epoch run on two nodes of one process each: (the nodes' folders, their results, the recipe, the data)."""
    tmp = tmp_path_factory.mktemp("multinode")
    data = write_npz(tmp / "faces.npz", n=256)
    _, recipe = tiny_config(tmp, epochs=2)
    nodes = [make_node(tmp / f"node{r}", recipe, data) for r in (0, 1)]
    return nodes, run_two_nodes(nodes), recipe, data


def test_two_nodes_train_as_one_node_of_two_processes(two_nodes, tmp_path):
    nodes, results, recipe, data = two_nodes
    run = nodes[0] / "run"
    check = json.loads((run / "ddp_check.json").read_text())
    assert check["world_size"] == 2
    assert check["fingerprints"][0] == check["fingerprints"][1]
    assert load_checkpoint(run / "last.safetensors").info["epoch"] == 2
    assert metrics_epochs(run) == [1, 2]
    # global rank 0 writes the run folder and prints the summary; node 1's process is LOCAL_RANK 0
    # too, and neither writes nor prints
    assert not (nodes[1] / "run").exists()
    assert "checkpoint:" in results[0].stdout and "checkpoint:" not in results[1].stdout
    # ranks seed and shard by global rank, so the split into nodes changes nothing, to the bit
    one_node = train_two_processes(recipe, data, tmp_path / "one_node")
    assert one_node["fingerprints"] == check["fingerprints"]


def test_resume_across_nodes_from_node_0s_run_folder(two_nodes, tmp_path):
    """--resume on every node, each with node 0's run folder (copied, as without a shared filesystem)."""
    nodes = []
    for r, node in enumerate(two_nodes[0]):
        nodes.append(tmp_path / f"node{r}")
        shutil.copytree(node, nodes[-1], ignore=shutil.ignore_patterns("run"))
        shutil.copytree(two_nodes[0][0] / "run", nodes[-1] / "run")
    run_two_nodes(nodes, "--resume", "--epochs", "3")
    run = nodes[0] / "run"
    check = json.loads((run / "ddp_check.json").read_text())
    assert check["world_size"] == 2 and check["fingerprints"][0] == check["fingerprints"][1]
    assert load_checkpoint(run / "last.safetensors").info["epoch"] == 3
    assert metrics_epochs(run) == [1, 2, 3]  # epochs 1-2 kept, one more trained
    assert metrics_epochs(nodes[1] / "run") == [1, 2]  # node 1 read its copy and wrote nothing


def test_resume_with_a_node_that_lacks_the_run_folder_stops_before_training(two_nodes, tmp_path):
    """Node 1 has no run folder: it would start afresh while node 0 resumes. Both stop, with one line."""
    nodes = [tmp_path / "node0", tmp_path / "node1"]
    shutil.copytree(two_nodes[0][0], nodes[0])
    shutil.copytree(two_nodes[0][1], nodes[1], ignore=shutil.ignore_patterns("run"))
    before = (nodes[0] / "run" / "last.safetensors").read_bytes()
    results = run_two_nodes(nodes, "--resume", "--epochs", "3", check=False)
    assert all(r.returncode != 0 for r in results)
    said = [line for line in results[0].stderr.splitlines() if line.startswith("lrfer: error:")]
    assert len(said) == 1 and "do not resume from the same epoch (rank 0 at epoch 3, rank 1 at epoch 1)" in said[0], results[0].stderr[-2000:]
    assert (nodes[0] / "run" / "last.safetensors").read_bytes() == before  # nothing trained, nothing written
    assert not (nodes[1] / "run" / "last.safetensors").exists()


AGREE = """
import sys
from pathlib import Path
import torch.distributed as dist
from lrfer.errors import LrferError
from lrfer.train.ddp import check_same_start
dist.init_process_group("gloo")
rank = dist.get_rank()
check_same_start(3, Path("run"))  # every rank resuming after epoch 2: no complaint
try:
    check_same_start(3 if rank == 0 else 1, Path("run"))  # rank 1 without the checkpoint
except LrferError as e:
    Path(f"refused{rank}.txt").write_text(str(e))  # a file per rank: two ranks printing at once interleave on one line
dist.destroy_process_group()
"""


def test_ranks_that_would_start_at_different_epochs_are_refused_on_every_rank(tmp_path):
    """What a node without node 0's run folder does under --resume: caught before training, on every rank."""
    script = tmp_path / "agree.py"
    script.write_text(AGREE)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", free_port(), str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=torch_env(), timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    refusals = [(tmp_path / f"refused{r}.txt").read_text() for r in (0, 1) if (tmp_path / f"refused{r}.txt").exists()]
    assert len(refusals) == 2  # both ranks stop, so none is left waiting in a collective
    assert all("rank 0 at epoch 3, rank 1 at epoch 1" in r and "run/last.safetensors" in r and "copy node 0's run folder" in r for r in refusals)


def test_docs_show_the_commands_this_test_runs():
    """docs/scale.md's two-node commands are these tests' (MASTER and PORT for the address and port)."""
    text = re.sub(r"\s*\\\n\s*", " ", DOCS.read_text())  # shell line continuations joined
    for rank in (0, 1):
        assert "torchrun " + " ".join(node_args(rank, "$MASTER", "$PORT")) in text
