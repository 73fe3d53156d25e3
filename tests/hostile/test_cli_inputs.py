"""Hostile input at the command line (issue 28, a first slice): every bad argument or path is one
line on stderr that names it, exit code 2, no traceback; a batch reports a bad file and goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.cli import main
from lrfer.files import decode_image

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "examples" / "far_scene.png"
VIDEO = ROOT / "examples" / "far_scene.mp4"


def one_line(capsys, *argv) -> tuple[int, str]:
    """Exit code and the single stderr line of ``lrfer ARGV`` (asserts there is exactly one)."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lrfer: ") and "Traceback" not in err, err
    return code, lines[0]


@pytest.mark.parametrize(
    "argv, name",
    [
        (["predict", SCENE, "--margin", "-5"], "--margin"),
        (["predict", SCENE, "--min-score", "2"], "--min-score"),
        (["predict", SCENE, "--min-face", "-1"], "--min-face"),
        (["predict", SCENE, "--upscale", "nan"], "upscale"),
        (["video", VIDEO, "--max-frames", "-1"], "--max-frames"),
        (["video", VIDEO, "--max-frames", "0"], "--max-frames"),
        (["video", VIDEO, "--batch-frames", "0"], "--batch-frames"),
        (["video", VIDEO, "--window", "0"], "--window"),
        (["video", VIDEO, "--alpha", "1.5"], "--alpha"),
        (["train", "--data", "x.npz", "--batch-size", "0"], "--batch-size"),
        (["train", "--data", "x.npz", "--lr", "nan"], "--lr"),
        (["train", "--data", "x.npz", "--lr", "-0.1"], "--lr"),
        (["train", "--data", "x.npz", "--epochs", "0"], "--epochs"),
        (["train", "--data", "x.npz", "--epochs", "-1"], "--epochs"),
        (["train", "--data", "x.npz", "--degrade-p", "2"], "--degrade-p"),
        (["train", "--data", "x.npz", "--time-budget", "inf"], "--time-budget"),
        (["train-sr", "--data", "x.npz", "--batch-size", "x"], "--batch-size"),
        (["predict", SCENE, "--device", "tpu9"], "tpu9"),
        (["predictt", SCENE], "predictt"),
    ],
)
def test_bad_arguments_are_one_line_naming_them(capsys, argv, name):
    code, line = one_line(capsys, *argv)
    assert code == 2 and name in line, line


def test_a_missing_file_alone_is_bad_input(capsys):
    code, line = one_line(capsys, "predict", "no-such-photo.png")
    assert code == 2 and "no-such-photo.png" in line and "no such file" in line


def test_a_batch_reports_bad_paths_and_processes_the_rest(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    loop = tmp_path / "photos"
    loop.mkdir()
    Image.open(SCENE).save(loop / "good.png")
    os.symlink(loop / "bad.png", loop / "bad.png")  # a symlink loop inside a folder
    out = tmp_path / "rows.json"
    code = main(["predict", str(tmp_path / "missing.png"), str(tmp_path / "empty"), str(loop), "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    rows = __import__("json").loads(out.read_text())
    status = {Path(r["file"]).name: r["status"] for r in rows}
    assert "no such file" in status["missing.png"] and "no image files" in status["empty"]
    assert status["good.png"] == "ok" and status["bad.png"] != "ok"


def test_an_unexpected_error_is_one_line_asking_for_a_report(capsys, monkeypatch):
    from lrfer.cli import info

    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(info, "cmd_models", broken)
    code, line = one_line(capsys, "models")
    assert code == 1 and "internal error" in line and "RuntimeError: boom" in line and "--debug" in line
    with pytest.raises(RuntimeError):
        main(["--debug", "models"])


def test_a_phone_photo_is_read_upright(tmp_path):
    """EXIF orientation 6 ("rotate 90 clockwise to view"): pixels stored sideways, shown upright."""
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :10] = 255  # a bright band on the stored image's left edge
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    upright = np.asarray(decode_image(tmp_path / "phone.jpg", "L"))
    assert upright.shape == (60, 40)  # width and height swapped, as a viewer shows it
    assert upright[:10].mean() > 200 and upright[-10:].mean() < 50  # the stored left edge is now on top


def test_the_entry_point_never_shows_a_traceback(tmp_path):
    """The same through a real process: a broken npz for `data info`."""
    bad = tmp_path / "faces.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    r = subprocess.run([sys.executable, "-m", "lrfer", "data", "info", str(bad), "--no-progress"], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode in (1, 2) and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["video", VIDEO, "--out", "{tmp}/clip.txt"], "--out"),
        (["video", VIDEO, "--out", "{file}/clip.mp4"], "--out"),
        (["video", VIDEO, "--summary", "{file}/s.json"], "--summary"),
        (["video", VIDEO, "--csv", "{tmp}"], "--csv"),
        (["predict", SCENE, "--annotate", "{file}"], "--annotate"),
        (["predict", SCENE, "--json", "{file}/rows.json"], "--json"),
        (["evaluate", "--data", "faces.npz", "--out", "{file}"], "--out"),
        (["sweep", "--data", "faces.npz", "--out", "{file}"], "--out"),
        (["train", "--data", "faces.npz", "--out", "{file}"], "--out"),
    ],
)
def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, capsys, argv, flag):
    """An output under a file, a folder given for a file or the reverse, a video name without a
    video type: one line before anything runs, and the file in the way is left as it was."""
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me")
    argv = [str(a).format(tmp=tmp_path, file=blocker) for a in argv]
    code, line = one_line(capsys, *argv)
    assert code == 2 and flag in line, line
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize(
    "extra, code",
    [(["--max-frames", "10"], 0), (["--out", "{tmp}/o.txt"], 2), (["--summary", "{tmp}/a-file/s.json"], 2)],
    ids=["stops-early", "wrong-video-type", "summary-under-a-file"],
)
def test_video_exits_cleanly_in_a_real_process(tmp_path, extra, code):
    """No segmentation fault or abort at exit (PyAV's writer and reader closed on every path), run
    five times since a crash at exit came in about one run in three."""
    (tmp_path / "a-file").write_text("keep me")
    argv = [sys.executable, "-m", "lrfer", "video", str(VIDEO), "--out", str(tmp_path / "o.mp4"), "--csv", str(tmp_path / "c.csv"), "--no-progress"]
    argv += [a.format(tmp=tmp_path) for a in extra]
    for _ in range(5):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert r.returncode == code and "Traceback" not in r.stderr, (r.returncode, r.stderr[-500:])
