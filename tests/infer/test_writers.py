"""Streaming CSV / JSON / JSONL result files and the per-track summary."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from lrfer.errors import LrferError
from lrfer.infer.writers import RowWriter, TrackSummary, format_for, track_summary

CLASSES = ("angry", "happy", "neutral")


def face_row(i: int, label: str = "happy") -> dict:
    return {
        "frame": i,
        "time": np.float32(i / 15),
        "track_id": np.int64(1 + i % 2),
        "box": (10.0 + i, 20.0, 60.5, 80.0),
        "label": label,
        "confidence": 0.8,
        # Out of class order on purpose: columns follow `classes`, not the dict.
        "probabilities": {"neutral": 0.15, "angry": 0.05, "happy": 0.8},
    }


def test_csv_schema_and_values(tmp_path):
    path = tmp_path / "out.csv"
    with RowWriter(path, "csv", CLASSES) as w:
        for i in range(3):
            w.write(face_row(i))
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames
    assert header == ["frame", "time", "track_id", "box", "label", "confidence", "p_angry", "p_happy", "p_neutral"]
    assert len(rows) == 3
    assert [int(r["track_id"]) for r in rows] == [1, 2, 1]
    assert json.loads(rows[2]["box"]) == [12.0, 20.0, 60.5, 80.0]
    assert float(rows[1]["time"]) == pytest.approx(1 / 15, abs=1e-6)
    assert sum(float(rows[0][f"p_{c}"]) for c in CLASSES) == pytest.approx(1.0)
    assert float(rows[0]["p_happy"]) == 0.8


def test_csv_header_from_fields_and_missing_values(tmp_path):
    path = tmp_path / "out.csv"
    fields = ["frame", "time", "label", "confidence", "probabilities"]
    with RowWriter(path, "csv", CLASSES, fields=fields) as w:
        w.write({"frame": 0, "time": 0.0})  # a frame without a face: label and probabilities empty
        w.write({"frame": 1, "time": 0.1, "label": "sad", "confidence": 0.9, "probabilities": {"angry": 1.0}, "extra": 5})
    rows = list(csv.DictReader(open(path, newline="")))
    assert list(rows[0]) == ["frame", "time", "label", "confidence", "p_angry", "p_happy", "p_neutral"]
    assert rows[0]["label"] == "" and rows[0]["p_happy"] == ""
    assert rows[1]["p_angry"] == "1.0" and rows[1]["p_happy"] == ""
    assert w.extra_fields == {"extra"}


def test_empty_outputs_are_valid(tmp_path):
    with RowWriter(tmp_path / "e.json", "json", CLASSES):
        pass
    assert json.loads((tmp_path / "e.json").read_text()) == []
    with RowWriter(tmp_path / "e.jsonl", "jsonl", CLASSES):
        pass
    assert (tmp_path / "e.jsonl").read_text() == ""
    with RowWriter(tmp_path / "e.csv", "csv", CLASSES, fields=["frame", "probabilities"]):
        pass
    assert (tmp_path / "e.csv").read_text().strip() == "frame,p_angry,p_happy,p_neutral"
    with RowWriter(tmp_path / "e2.csv", "csv", CLASSES):
        pass
    assert (tmp_path / "e2.csv").read_text() == ""  # no rows, no fields: nothing to say


def test_json_and_jsonl_round_trip(tmp_path):
    rows = [face_row(i) for i in range(4)]
    rows[3]["confidence"] = float("nan")  # strict JSON has no NaN: written as null
    for fmt in ("json", "jsonl"):
        path = tmp_path / f"out.{fmt}"
        with RowWriter(path, None, CLASSES) as w:  # format from the file name
            for r in rows:
                w.write(r)
        text = path.read_text()
        back = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
        assert len(back) == 4
        assert back[1]["probabilities"] == {"neutral": 0.15, "angry": 0.05, "happy": 0.8}
        assert back[2]["box"] == [12.0, 20.0, 60.5, 80.0] and back[2]["track_id"] == 1
        assert back[3]["confidence"] is None
        assert "NaN" not in text


def test_rows_reach_the_file_before_close():
    buf = io.StringIO()
    w = RowWriter(buf, "json", CLASSES)
    w.write(face_row(0))
    w.flush()
    partial = buf.getvalue()
    assert partial.startswith("[") and '"frame": 0' in partial
    w.write(face_row(1))
    w.close()
    assert len(json.loads(buf.getvalue())) == 2


def test_format_and_path_errors(tmp_path):
    assert format_for("a/b.CSV") == "csv" and format_for("x.ndjson") == "jsonl"
    with pytest.raises(LrferError, match=".csv, .json or .jsonl"):
        format_for("out.txt")
    with pytest.raises(LrferError, match="did you mean 'csv'"):
        RowWriter(tmp_path / "x.csv", "cvs")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LrferError, match="cannot write"):
        RowWriter(blocker / "sub" / "out.csv", "csv")


def test_track_summary_shares():
    s = TrackSummary(CLASSES)
    labels_1 = ["happy", "happy", "neutral", "happy"]
    for i, lab in enumerate(labels_1):
        s.update(1, lab, 0.5 + i * 0.1)
    for i, lab in enumerate(["surprise", "angry", None]):  # a label outside `classes`, and an unclassified frame
        s.update(2, lab, 2.0 + i)
    rows = s.rows()
    assert [r["track_id"] for r in rows] == [1, 2]
    one, two = rows
    assert one["frames"] == 4 and one["first_time"] == 0.5 and one["last_time"] == pytest.approx(0.8)
    assert one["dominant"] == "happy" and one["share_happy"] == 0.75 and one["share_neutral"] == 0.25
    assert two["frames"] == 3 and two["share_surprise"] == 0.5 and two["share_angry"] == 0.5
    # Every track has every share column (a fixed CSV schema), and shares sum to 1.
    keys = {k for k in one if k.startswith("share_")}
    assert keys == {k for k in two if k.startswith("share_")} == {"share_angry", "share_happy", "share_neutral", "share_surprise"}
    for r in rows:
        assert sum(r[k] for k in keys) == pytest.approx(1.0)


def test_track_summary_from_rows_matches_incremental():
    rng = np.random.default_rng(0)
    rows = [{"track_id": int(rng.integers(1, 4)), "label": str(rng.choice(CLASSES)), "time": i / 10} for i in range(200)]
    rows.append({"track_id": None, "label": "happy", "time": 99.0})  # untracked faces are not summarised
    out = track_summary(rows, CLASSES)
    assert len(out) == 3 and max(r["last_time"] for r in out) < 99
    assert sum(r["frames"] for r in out) == 200
    for r in out:
        counts = [sum(1 for x in rows[:-1] if x["track_id"] == r["track_id"] and x["label"] == c) for c in CLASSES]
        assert [r[f"share_{c}"] for c in CLASSES] == pytest.approx([k / r["frames"] for k in counts])


def test_an_atomic_writer_replaces_the_file_only_when_kept(tmp_path):
    """atomic: rows stream into a temporary file beside the target; close() moves it over the
    target, close(keep=False) removes it and the target keeps its bytes; no temporary file stays."""
    path = tmp_path / "rows.csv"
    path.write_text("the user's rows\n")
    w = RowWriter(path, classes=("a",), fields=["file", "label"], atomic=True)
    w.write({"file": "x.png", "label": "a"})
    w.flush()
    assert path.read_text() == "the user's rows\n" and len(list(tmp_path.iterdir())) == 2
    w.close(keep=False)
    assert path.read_text() == "the user's rows\n" and [p.name for p in tmp_path.iterdir()] == ["rows.csv"]
    with RowWriter(path, classes=("a",), fields=["file", "label"], atomic=True) as w:
        w.write({"file": "y.png", "label": "a"})
    assert path.read_text().splitlines() == ["file,label", "y.png,a"] and [p.name for p in tmp_path.iterdir()] == ["rows.csv"]
    with pytest.raises(RuntimeError), RowWriter(path, "csv", atomic=True) as w:  # an error inside: the file stays
        w.write({"file": "z.png"})
        raise RuntimeError
    assert path.read_text().splitlines()[-1] == "y.png,a" and [p.name for p in tmp_path.iterdir()] == ["rows.csv"]
