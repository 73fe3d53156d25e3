"""``lrfer batch --ray`` on a real Ray cluster of two nodes on loopback, started here with ``ray start``.

The head node and a second node (``ray start --address``, its own process tree) have two CPUs
each; every Ray process gets one token (``RAY_AUTH_MODE=token``), as a real cluster should.
The batch runs as a user runs it: the ``lrfer`` command, connecting to the cluster's address.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lrfer.batch.analyze import BatchOptions
from lrfer.batch.run import run_batch
from lrfer.batch.table import read_results
from tests.serve._util import free_port

from .conftest import make_archive

RAY = str(Path(sys.executable).with_name("ray"))
LRFER = [sys.executable, "-m", "lrfer"]


class LoopbackCluster:
    """A head node here, and worker nodes that can be added and killed."""

    def __init__(self):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
        self.nodes: list[subprocess.Popen] = []
        subprocess.run(
            [RAY, "start", "--head", "--port", str(self.port), "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats"],
            env=self.env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.add_node()

    def add_node(self) -> subprocess.Popen:
        node = subprocess.Popen(
            [RAY, "start", "--address", self.address, "--num-cpus", "2", "--block"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.nodes.append(node)
        self.wait_for_nodes(len(self.nodes) + 1)
        return node

    def alive_nodes(self) -> int:
        out = subprocess.run([RAY, "status", "--address", self.address], env=self.env, capture_output=True, text=True, timeout=60).stdout
        active = out.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return active.count("node_")

    def wait_for_nodes(self, n: int, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while self.alive_nodes() != n:
            assert time.monotonic() < end, f"the cluster did not reach {n} nodes"
            time.sleep(1)

    def actors_on(self, node: subprocess.Popen) -> int:
        """The batch actors running on ``node`` (Ray names their processes after the actor)."""
        return sum("MapWorker" in _cmdline(pid) for pid in _tree(node.pid))

    def kill(self, node: subprocess.Popen) -> None:
        """The node dies at once, as a machine that loses power: its whole process tree, SIGKILL."""
        for pid in [node.pid, *_tree(node.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.wait()

    def batch(self, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen([*LRFER, "batch", *args, f"--ray={self.address}", "--no-progress"], env=self.env, text=True, **kw)

    def stop(self) -> None:
        for node in self.nodes:
            if node.poll() is None:
                self.kill(node)
        subprocess.run([RAY, "stop", "--force"], env=self.env, capture_output=True, timeout=120)


def _tree(root: int) -> list[int]:
    """The processes descended from ``root``, read from /proc."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, todo = [], [root]
    while todo:
        here = todo.pop()
        kids = [pid for pid, ppid in parent.items() if ppid == here]
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def cluster():
    c = LoopbackCluster()
    yield c
    c.stop()


def _same_rows(got, want) -> None:
    got, want = got.to_pylist(), want.to_pylist()
    assert len(got) == len(want)
    p_cols = [k for k in want[0] if k.startswith("p_")]
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k not in p_cols} == {k: v for k, v in w.items() if k not in p_cols}
        if w["status"] == "ok":
            assert np.allclose([g[k] for k in p_cols], [w[k] for k in p_cols], atol=1e-4)


def test_two_nodes_give_the_rows_of_the_in_process_run(cluster, archive, one_run, tmp_path):
    _, want, _ = one_run
    out = tmp_path / "out"
    proc = cluster.batch(str(archive.root), "--out", str(out), "--workers", "2", "--files-per-task", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    assert f"ray {cluster.address}" in stdout
    _same_rows(read_results(out), want)


def test_a_node_killed_mid_run_loses_no_file_and_repeats_none(cluster, tmp_path):
    """The node with an actor is killed while the batch runs; Ray starts that actor again on the
    head and runs its tasks again; the output has every file once."""
    big = make_archive(tmp_path / "archive", photos=12, video_frames=45)
    run_batch([big.root], tmp_path / "want", BatchOptions(sample_fps=15))
    want = read_results(tmp_path / "want")
    victim = cluster.nodes[-1]
    out = tmp_path / "out"
    proc = cluster.batch(str(big.root), "--out", str(out), "--workers", "2", "--files-per-task", "1", "--shard-files", "1", "--sample-fps", "15", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 240
    while not (cluster.actors_on(victim) and list(out.glob("part-*.parquet"))):  # its actor is at work, and results arrive
        assert proc.poll() is None and time.monotonic() < end, "the batch ended before the node could be killed"
        time.sleep(0.1)
    cluster.kill(victim)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    got = read_results(out)
    keys = list(zip(got["file"].to_pylist(), got["frame"].to_pylist(), got["face"].to_pylist()))
    assert len(keys) == len(set(keys))  # nothing twice
    assert set(got["file"].to_pylist()) == set(want["file"].to_pylist())  # nothing missing
    _same_rows(got, want)
