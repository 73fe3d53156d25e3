"""Hostile photos and videos (issue 28): a file that cannot be read is one line naming it and
saying what to do, exit 2 when nothing else could be processed, and the user's earlier output
files keep their bytes; odd but valid images (CMYK, 16-bit, palette, alpha, animated GIF, a JPEG
named .png) are processed; a batch reports its bad files and processes the good ones."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.cli import main
from tests.hostile.test_cli_inputs import SCENE, VIDEO, one_line


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG that claims ``width x height`` pixels and holds almost none (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def _truncated(fmt: str):
    def make(path: Path) -> None:
        Image.open(SCENE).convert("RGB").save(path, format=fmt)
        path.write_bytes(path.read_bytes()[:700])

    return make


BAD_IMAGES = {
    "zero-bytes.png": lambda p: p.write_bytes(b""),
    "truncated.png": _truncated("PNG"),
    "truncated.jpg": _truncated("JPEG"),
    "text-renamed.png": lambda p: p.write_text("not an image\n"),
    "huge-header.png": lambda p: _png_header(p, 9000, 9000),
    "bomb-header.png": lambda p: _png_header(p, 100_000, 100_000),
}


def _mode(mode: str, **save):
    def make(path: Path) -> None:
        im = Image.open(SCENE).convert("RGB")
        if mode == "I;16":
            im = Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257)
        else:
            im = im.convert(mode)
        im.save(path, **save)

    return make


def _animated_gif(path: Path) -> None:
    first = Image.open(SCENE).convert("RGB")
    first.save(path, save_all=True, append_images=[first.rotate(15)], duration=100)


GOOD_ODD_IMAGES = {
    "cmyk.jpg": _mode("CMYK"),
    "sixteen-bit.png": _mode("I;16"),
    "palette.png": _mode("P"),
    "alpha.png": _mode("RGBA"),
    "animated.gif": _animated_gif,
    "jpeg-named.png": _mode("RGB", format="JPEG"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_an_unreadable_photo_alone(tmp_path, capsys, name):
    photo = tmp_path / name
    BAD_IMAGES[name](photo)
    rows = tmp_path / "rows.csv"
    rows.write_text("the user's earlier results\n")
    code, line = one_line(capsys, "predict", photo, "--csv", rows)
    assert code == 2 and str(photo) in line, line
    assert line.endswith(")") and "(" in line.split(f"{photo}:", 1)[1], line  # what is wrong, then (what to do)
    assert rows.read_text() == "the user's earlier results\n"  # nothing processed: the old file stays
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "rows.csv"])  # and no temporary file


@pytest.mark.parametrize("name", sorted(GOOD_ODD_IMAGES))
def test_an_odd_but_valid_photo_is_processed(tmp_path, capsys, name):
    photo = tmp_path / name
    GOOD_ODD_IMAGES[name](photo)
    out = tmp_path / "rows.json"
    assert main(["predict", str(photo), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "lrfer: error" not in err, err
    rows = json.loads(out.read_text())
    assert rows and {r["status"] for r in rows} <= {"ok", "no face found"}
    assert rows[0]["width"] == 640 and rows[0]["height"] == 480


def test_a_batch_of_bad_photos_processes_the_good_one_and_replaces_the_output(tmp_path, capsys):
    for name, make in BAD_IMAGES.items():
        make(tmp_path / name)
    Image.open(SCENE).save(tmp_path / "good.png")
    out = tmp_path / "out" / "rows.json"
    out.parent.mkdir()
    out.write_text("old")
    assert main(["predict", str(tmp_path), "--json", str(out)]) == 0
    err_lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err_lines) == len(BAD_IMAGES) and not any("Traceback" in ln for ln in err_lines)
    status = {Path(r["file"]).name: r["status"] for r in json.loads(out.read_text())}
    assert status.pop("good.png") == "ok" and set(status) == set(BAD_IMAGES)
    assert all(s != "ok" for s in status.values())
    assert [p.name for p in out.parent.iterdir()] == ["rows.json"]  # replaced whole, no temporary file left


def test_a_missing_photo_leaves_an_existing_csv_as_it_was(tmp_path, capsys):
    """The issue's data loss: `lrfer predict missing.png --csv existing.csv` emptied the csv."""
    csv = tmp_path / "existing.csv"
    csv.write_bytes(b"file,label\nold.png,happy\n")
    code, line = one_line(capsys, "predict", tmp_path / "missing.png", "--csv", csv)
    assert code == 2 and "missing.png" in line and "check the path" in line
    assert csv.read_bytes() == b"file,label\nold.png,happy\n"


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as box:
        stream = box.add_stream("aac", rate=8000)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)


BAD_VIDEOS = {
    "zero-bytes.mp4": lambda p: p.write_bytes(b""),
    "text-renamed.mp4": lambda p: p.write_text("not a video\n"),
    "truncated.mp4": lambda p: p.write_bytes(VIDEO.read_bytes()[:5000]),
    "audio-only.mp4": _audio_only,
    "missing.mp4": lambda p: None,
}


@pytest.mark.parametrize("name", sorted(BAD_VIDEOS))
def test_an_unreadable_video_leaves_every_output_as_it_was(tmp_path, capsys, name):
    video = tmp_path / name
    BAD_VIDEOS[name](video)
    outputs = {f: tmp_path / f for f in ("rows.csv", "clip.mp4", "summary.json")}
    for f, path in outputs.items():
        path.write_bytes(f"the user's {f}".encode())
    code, line = one_line(capsys, "video", video, "--csv", outputs["rows.csv"], "--out", outputs["clip.mp4"],
                          "--summary", outputs["summary.json"], "--no-progress")  # fmt: skip
    assert code == 2 and str(video) in line, line
    assert "give" in line or "check" in line, line  # says what to do
    for f, path in outputs.items():
        assert path.read_bytes() == f"the user's {f}".encode()
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_finished_video_replaces_the_outputs_whole(tmp_path, capsys):
    csv, clip = tmp_path / "rows.csv", tmp_path / "clip.mp4"
    csv.write_text("old")
    clip.write_text("old")
    assert main(["video", str(VIDEO), "--csv", str(csv), "--out", str(clip), "--max-frames", "3", "--no-progress"]) == 0
    assert csv.read_text().startswith("frame,time,track_id") and clip.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "rows.csv"]


def test_max_frames_is_the_number_of_frames(tmp_path, capsys):
    """`--max-frames 10` reported 11 frames once: the count, the rows and the summary agree."""
    csv = tmp_path / "rows.csv"
    assert main(["video", str(VIDEO), "--max-frames", "10", "--csv", str(csv), "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("10 frames")
    frames = {int(line.split(",")[0]) for line in csv.read_text().splitlines()[1:]}
    assert frames and max(frames) == 9


def test_a_gpu_asked_for_where_there_is_none(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, line = one_line(capsys, "predict", SCENE, "--device", "cuda")
    assert code == 2 and "cuda" in line and "--device cpu" in line, line
