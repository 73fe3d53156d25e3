"""``lrfer batch`` in this process: the rows, the bad files, resuming, the output folder's rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lrfer.batch.analyze import BatchOptions
from lrfer.batch.run import InProcess, run_batch
from lrfer.batch.table import read_results, schema
from lrfer.cli import main
from lrfer.errors import LrferError
from lrfer.infer.io import predict_files
from lrfer.infer.recognizer import Recognizer
from lrfer.infer.video import Frame, FrameSampler, open_video, sample_frames


def test_every_file_has_its_rows_and_bad_files_their_status(archive, one_run):
    summary, table, out = one_run
    rows = table.to_pylist()
    by_file = {str(f): [r for r in rows if r["file"] == str(f)] for f in archive.files}
    assert set(table["file"].to_pylist()) == set(by_file)  # absolute paths, each file once
    for f in archive.photos + archive.videos:
        assert by_file[str(f)] and all(r["status"] == "ok" for r in by_file[str(f)]), f
    for f, word in archive.bad.items():
        (row,) = by_file[str(f)]
        assert word in row["status"] and row["hint"] and row["label"] is None  # what went wrong, and what to do
    assert (summary.files, summary.analysed, summary.read, summary.problems, summary.skipped) == (11, 11, 8, 3, 0)
    assert summary.faces == sum(r["status"] == "ok" for r in rows)
    assert summary.shards == len(list(out.glob("part-*.parquet"))) >= 2  # shard_files=3: several shards
    assert json.loads((out / "_summary.json").read_text())["faces"] == summary.faces
    assert pq.read_table(out).num_rows == table.num_rows  # the folder reads as one dataset


def test_photo_rows_are_lrfer_predict_rows(archive, one_run):
    _, table, _ = one_run
    rec = Recognizer(upscale="auto")
    want = list(predict_files(rec, [str(p) for p in archive.photos]))
    got = {(r["file"], r["face"]): r for r in table.to_pylist() if r["kind"] == "photo" and r["status"] == "ok"}
    assert len(got) == len(want)
    for w in want:
        g = got[(w["file"], w["face"])]
        assert (g["x1"], g["y1"], g["x2"], g["y2"], g["size"], g["label"]) == (w["x1"], w["y1"], w["x2"], w["y2"], w["size"], w["label"])
        assert np.allclose([g[f"p_{c}"] for c in rec.classes], [w["probabilities"][c] for c in rec.classes], atol=1e-4)


def test_video_rows_are_the_sampled_frames_of_lrfer_video(archive, one_run):
    _, table, _ = one_run
    rec = Recognizer(upscale=1.0)
    video = archive.videos[1]
    with open_video(video) as src:
        fps = src.fps
        want = [(r.index, f.track_id, f.label) for r in rec.stream(sample_frames(iter(src), 2.0)) for f in r.faces]
    rows = [r for r in table.to_pylist() if r["file"] == str(video)]
    assert [(r["frame"], r["track_id"], r["label"]) for r in rows] == want
    times = sorted({r["time"] for r in rows})
    assert np.allclose(times, [0, 0.5, 1.0, 1.5], atol=1 / fps)  # 2 frames per second of its 2 s


def test_frame_sampler_keeps_the_rate_and_every_frame_when_asked_for_more():
    times = np.arange(60) / 30.0  # 2 s at 30 fps
    s = FrameSampler(2)
    assert np.allclose([t for t in times if s.take(t)], [0, 0.5, 1.0, 1.5])
    s = FrameSampler(60)
    assert sum(s.take(t) for t in times) == 60
    frames = [Frame(i, t, np.zeros((1, 1, 3), np.uint8)) for i, t in enumerate([0, 0.1, 3.0, 3.1, 3.6])]  # a gap: no catch-up burst
    assert [f.index for f in sample_frames(iter(frames), 2)] == [0, 2, 4]
    with pytest.raises(LrferError, match="positive"):
        FrameSampler(0)


def test_an_interrupted_run_resumes_to_the_rows_of_one_run(archive, one_run, tmp_path):
    _, whole, _ = one_run
    out = tmp_path / "out"

    def stop_after_four(event):
        if event.done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch([archive.root], out, engine=InProcess(2), shard_files=1, progress=stop_after_four)
    kept = set(pq.read_table(out, columns=["file"])["file"].to_pylist())
    assert len(kept) >= 4  # what was collected when it stopped was written
    (out / "part-x.parquet.abc.tmp").write_bytes(b"half a shard")  # as a kill while writing leaves it
    again = run_batch([archive.root], out, shard_files=1)
    assert again.skipped == len(kept) and again.analysed == 11 - len(kept)
    assert read_results(out).to_pylist() == whole.to_pylist()
    assert not list(out.glob("*.tmp"))
    third = run_batch([archive.root], out)
    assert (third.analysed, third.shards, third.skipped) == (0, 0, 11)


def test_a_folder_of_another_model_s_results_is_refused(archive, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(schema(["calm", "upset"]).empty_table(), out / "part-old-00001.parquet")
    with pytest.raises(LrferError, match="another --out folder"):
        run_batch([archive.photos[0]], out)
    assert [p.name for p in out.iterdir()] == ["part-old-00001.parquet"]  # nothing added


def test_a_missing_path_is_a_status_row_and_the_rest_goes_on(archive, tmp_path):
    out = tmp_path / "out"
    s = run_batch([archive.photos[0], tmp_path / "gone"], out)
    rows = read_results(out).to_pylist()
    assert {r["status"] for r in rows if r["file"] == str(tmp_path / "gone")} == {f"no such file or folder: {tmp_path / 'gone'}"}
    assert s.read == 1 and s.problems == 1
    with pytest.raises(LrferError, match="nothing to analyse"):
        run_batch([tmp_path / "gone"], tmp_path / "out2")
    with pytest.raises(LrferError, match="sample_fps"):
        BatchOptions(sample_fps=0)


def test_cli_batch(archive, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["batch", str(archive.photos[0]), str(archive.videos[0]), "--out", str(out), "--no-progress", "--sample-fps", "1"]) == 0
    said = capsys.readouterr()
    assert "2 files" in said.out and "in-process" in said.out and said.err == ""
    assert main(["batch", str(archive.photos[0]), "--out", str(out), "--no-progress"]) == 0
    assert "already in" in capsys.readouterr().out
    assert main(["batch", str(next(iter(archive.bad))), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be read" in err[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--ray", "{photos}"], "put --ray after the sources"),
        (["--ray=not an address"], "not a Ray cluster address"),
        (["--sample-fps", "0"], "--sample-fps"),
        (["--workers", "0"], "--workers"),
        (["--workers", "2"], "need --ray"),
        (["--out", "{photo}"], "is a file, not a folder"),
    ],
)
def test_cli_batch_bad_arguments_are_one_line(archive, tmp_path, capsys, argv, says):
    argv = [a.format(photos=archive.root / "photos", photo=archive.photos[0]) for a in argv]
    base = ["batch", *argv, str(archive.photos[0])]
    if "--out" not in argv:
        base += ["--out", str(tmp_path / "o")]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]


def test_empty_table_keeps_the_columns():
    t = schema(["a", "b"]).empty_table()
    assert t.column_names[-2:] == ["p_a", "p_b"] and isinstance(t, pa.Table)


def test_a_table_delivered_twice_is_kept_once(one_run, tmp_path):
    """Ray may hand the driver a retried task's output as well as the first: each file is written once."""
    _, table, _ = one_run
    files = sorted(set(table["file"].to_pylist()))
    first = table.filter(pc.is_in(table["file"], pa.array(files[:3])))
    second = table.filter(pc.is_in(table["file"], pa.array(files[1:5])))  # two files again, two new

    def engine(todo, options):
        yield first
        yield second

    s = run_batch([p for p in files if Path(p).exists()], tmp_path / "out", engine=engine)
    got = read_results(tmp_path / "out")
    assert sorted(set(got["file"].to_pylist())) == files[:5] and s.analysed == 5
    assert got.num_rows == table.filter(pc.is_in(table["file"], pa.array(files[:5]))).num_rows


def test_the_prior_and_the_abstention_rule_reach_the_rows(archive, one_run, tmp_path):
    """--prior and --abstain (docs/trust.md) as lrfer predict applies them: the same faces, uncertain
    by the rule, probabilities moved by the prior."""
    _, plain, _ = one_run
    out = tmp_path / "out"
    assert main(["batch", str(archive.photos[0]), "--out", str(out), "--no-progress", "--prior", "neutral=0.5,happy=0.25", "--min-confidence", "0.9"]) == 0
    rows = [r for r in read_results(out).to_pylist() if r["status"] == "ok"]
    want = Recognizer(upscale="auto", prior="neutral=0.5,happy=0.25", abstain={"min_confidence": 0.9}).predict(archive.photos[0])
    assert [(r["label"], r["confidence"], r["uncertain"]) for r in rows] == [(f.label, f.confidence, f.uncertain) for f in want]
    assert rows and all(r["uncertain"] == (r["confidence"] < 0.9) for r in rows)
    before = {r["face"]: r["p_neutral"] for r in plain.to_pylist() if r["file"] == str(archive.photos[0])}
    assert all(r["p_neutral"] > before[r["face"]] for r in rows)  # a calm room's prior raises neutral
    assert not any(r["uncertain"] for r in plain.to_pylist() if r["status"] == "ok")  # abstention is off unless asked


def test_a_ray_pool_larger_than_the_machine_is_one_line(archive, tmp_path, capsys):
    """Ray started here has this machine's CPUs: a pool that cannot fit is refused, not waited for."""
    cpus = os.cpu_count() or 1
    assert main(["batch", str(archive.photos[0]), "--out", str(tmp_path / "o"), "--ray", "--workers", str(cpus + 1), "--no-progress"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lrfer:")]
    assert len(err) == 1 and f"need {cpus + 1} CPUs" in err[0] and "fewer --workers" in err[0]
    assert not list((tmp_path / "o").glob("part-*"))


def test_a_damaged_shard_is_one_line_naming_it(archive, tmp_path):
    out = tmp_path / "out"
    run_batch([archive.photos[0]], out)
    (out / "part-zz-00001.parquet").write_bytes(b"not parquet")
    with pytest.raises(LrferError, match="part-zz-00001.parquet.*delete the damaged shard"):
        run_batch([archive.photos[0]], out)
