"""Training after a kill (issue 28, a first slice): a metrics line cut short by the kill does not
stop --resume, and --resume with --overwrite is refused rather than half-obeyed."""

from __future__ import annotations

import json

import pytest

from lrfer.cli import main
from lrfer.errors import LrferError
from lrfer.files import read_jsonl
from tests.cli.test_cli import fer_csv  # noqa: F401  (a fixture: a tiny FER2013 csv)
from tests.hostile.test_cli_inputs import one_line


def test_a_cut_last_line_is_left_out_and_damage_elsewhere_is_named(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "train_lo')
    assert read_jsonl(log) == [{"epoch": 1}, {"epoch": 2}]
    log.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(LrferError, match="line 2 is not JSON"):
        read_jsonl(log)


def test_resume_after_a_kill_during_the_metrics_append(tmp_path, capsys, fer_csv):  # noqa: F811
    recipe = tmp_path / "r.toml"
    recipe.write_text('model = "resnet18_fer_slim"\nmodel_kwargs = { width = 4, blocks = [1] }\nbatch_size = 4\nval_split = "none"\n')
    argv = ["train", "--recipe", str(recipe), "--data", str(fer_csv), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--epochs", "2"]) == 0
    log = tmp_path / "run" / "metrics.jsonl"
    with open(log, "a") as f:
        f.write('{"epoch": 3, "train_lo')  # the kill came in the middle of this write
    capsys.readouterr()
    assert main([*argv, "--epochs", "3", "--resume"]) == 0
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == [1, 2, 3]
    capsys.readouterr()
    code, line = one_line(capsys, *argv, "--resume", "--overwrite")
    assert code == 2 and "--overwrite" in line and "--resume" in line
