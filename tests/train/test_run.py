"""train/run.py: the run folder every trainer shares."""

from __future__ import annotations

from lrfer.models import create_model
from lrfer.train.run import Run


def test_resume_without_a_checkpoint_says_so_and_starts_afresh(tmp_path):
    events = []
    model = create_model("cnn2x2", num_classes=7, in_chans=1)
    run, ckpt = Run.open(tmp_path / "run", model, {"model": "cnn2x2"}, resume=True, progress=events.append)
    assert ckpt is None and run.history == []
    # the CLI prints an event's info["message"]: the user must learn that --resume found nothing
    messages = [e.info.get("message", "") for e in events]
    assert any("starting from scratch" in m for m in messages), messages
    assert (tmp_path / "run" / "config.json").exists() and (tmp_path / "run" / "metrics.jsonl").read_text() == ""
