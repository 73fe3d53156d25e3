"""The Recognizer and the photo/video CLI on real photos: detection, crops, tracks, outputs, bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from lrfer.cli import main
from lrfer.errors import LrferError
from lrfer.infer.recognizer import PHOTO_FIELDS, VIDEO_FIELDS, Face, Recognizer
from lrfer.infer.video import Frame
from tests.conftest import ROOT_DIR

EXAMPLES = ROOT_DIR / "examples"
SCENE = EXAMPLES / "far_scene.png"  # three copies of the astronaut photo, faces ~48, 28 and 18 px wide
SCENE_VIDEO = EXAMPLES / "far_scene.mp4"  # the same copies drifting for 45 frames


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer(device="cpu")


def test_three_small_faces_found_and_read_in_a_far_scene(recognizer):
    faces = recognizer.predict(SCENE)
    assert len(faces) == 3
    sizes = sorted(f.size for f in faces)
    assert 14 <= sizes[0] <= 22 and 24 <= sizes[1] <= 34 and 42 <= sizes[2] <= 58
    for f in faces:
        assert abs(sum(f.probabilities.values()) - 1) < 1e-3
        assert f.label == max(f.probabilities, key=f.probabilities.get)
        assert len(f.landmarks) == 5
    # She smiles in the photo: the two larger copies must read as happy.
    assert [f.label for f in sorted(faces, key=lambda f: -f.size)][:2] == ["happy", "happy"]


def test_gray_array_and_path_give_the_same_faces(recognizer):
    rgb = np.asarray(Image.open(SCENE).convert("RGB"))
    from_array = recognizer.predict(rgb)
    from_path = recognizer.predict(SCENE)
    assert [f.box for f in from_array] == [f.box for f in from_path]
    gray = np.asarray(Image.open(SCENE).convert("L"))
    assert len(recognizer.predict(gray)) == 3


def test_without_detection_the_image_is_the_face():
    rec = Recognizer(detector=None, device="cpu")
    (face,) = rec.predict(EXAMPLES / "faces" / "astronaut_048px.png")
    assert face.box == (0.0, 0.0, 48.0, 48.0) and face.size == 48 and face.label == "happy"


def test_routes_send_small_faces_to_another_model(recognizer):
    class Constant:
        """A stand-in model answering 'surprise' for every face, to see which faces reach it."""

        classes = recognizer.classes

        def predict_proba(self, crops, tta="none"):
            p = np.zeros((len(crops), len(self.classes)), np.float32)
            p[:, self.classes.index("surprise")] = 1
            return p

    rec = Recognizer(device="cpu", routes=[(24, Constant())])
    faces = sorted(rec.predict(SCENE), key=lambda f: f.size)
    assert faces[0].size < 24 and faces[0].label == "surprise"
    assert all(f.label != "surprise" for f in faces[1:])


def test_stream_keeps_three_stable_tracks(recognizer):
    results = list(recognizer.stream(SCENE_VIDEO, batch_frames=8))
    assert [r.index for r in results] == list(range(45))
    ids = {f.track_id for r in results for f in r.faces}
    assert len(ids) == 3  # the three copies, each one id from first frame to last
    for tid in ids:
        xs = [f.box[0] for r in results for f in r.faces if f.track_id == tid]
        assert len(xs) >= 40
        assert max(abs(np.diff(xs))) < 5  # the same face frame to frame, no id swaps


def test_stream_smoothing_damps_a_flicker(recognizer):
    """A face whose raw label flips on one frame keeps its smoothed label."""
    frame = np.asarray(Image.open(SCENE).convert("RGB"))
    flipped = frame.copy()
    box = [f for f in recognizer.predict(frame) if f.size > 40][0].box
    x1, y1, x2, y2 = (int(v) for v in box)
    flipped[y1:y2, x1:x2] = 0  # one frame where the big face is blacked out
    frames = [Frame(i, i / 15, flipped if i == 3 else frame) for i in range(6)]
    smooth = list(recognizer.stream(frames, batch_frames=4, smoothing="ema", alpha=0.3))
    raw = list(recognizer.stream(frames, batch_frames=4, smoothing="none"))
    big = lambda r: max(r.faces, key=lambda f: f.size) if r.faces else None
    assert big(smooth[3]) is None or big(smooth[3]).label == "happy"
    assert all(big(r).label == "happy" for r in smooth if big(r) is not None)
    assert raw[2].faces and raw[2].faces[0].track_id is not None


def test_face_rows_have_the_documented_fields():
    face = Face((1, 2, 3, 4), 0.9, 2, {"happy": 1.0}, "happy", 1.0)
    assert tuple(face.to_row()) == PHOTO_FIELDS[5:] == VIDEO_FIELDS[3:]


def test_cli_predict_photos_csv_annotate_and_statuses(tmp_path, capsys):
    (tmp_path / "empty.jpg").write_bytes(b"")
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    out = tmp_path / "faces.csv"
    code = main(["predict", str(SCENE), str(tmp_path / "empty.jpg"), str(tmp_path / "wall.png"), "--csv", str(out), "--annotate", str(tmp_path / "ann"), "--upscale", "1"])
    assert code == 0
    err = capsys.readouterr().err
    assert "empty file" in err and "no face found" in err
    rows = list(csv.DictReader(out.open()))
    statuses = [r["status"] for r in rows]
    assert statuses.count("ok") == 3 and "empty file (0 bytes)" in statuses and "no face found" in statuses
    assert {"p_happy", "x1", "size", "label"} <= set(rows[0])
    annotated = np.asarray(Image.open(tmp_path / "ann" / "far_scene.png"))
    assert annotated.shape == (480, 640, 3) and not np.array_equal(annotated, np.asarray(Image.open(SCENE).convert("RGB")))
    # nothing readable at all: bad input, exit 2
    assert main(["predict", str(tmp_path / "empty.jpg")]) == 2  # nothing could be processed: bad input


def test_cli_video_writes_rows_summary_and_annotated_video(tmp_path, capsys):
    rows_path, summary, annotated = tmp_path / "rows.json", tmp_path / "summary.json", tmp_path / "out.mp4"
    code = main(["video", str(SCENE_VIDEO), "--json", str(rows_path), "--summary", str(summary), "--out", str(annotated), "--no-progress"])
    assert code == 0
    rows = json.loads(rows_path.read_text())
    assert len({r["track_id"] for r in rows}) == 3 and {r["frame"] for r in rows} == set(range(45))
    tracks = json.loads(summary.read_text())
    assert len(tracks) == 3 and all(abs(sum(v for k, v in t.items() if k.startswith("share_")) - 1) < 1e-6 for t in tracks)
    from lrfer.infer.video import open_video

    with open_video(annotated) as v:
        assert (v.width, v.height) == (640, 480) and sum(1 for _ in v) == 45
    assert "3 face tracks" in capsys.readouterr().out


def test_cli_video_bad_inputs(tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert main(["video", str(tmp_path / "empty.mp4"), "--no-progress"]) == 2
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    assert main(["video", str(tmp_path / "junk.mp4"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("lrfer: error:") for line in err)


def test_bad_arguments_are_clear():
    with pytest.raises(LrferError, match="detector"):
        Recognizer(detector="yolo9000", device="cpu")
    with pytest.raises(LrferError, match="batch_frames"):
        next(Recognizer(device="cpu").stream(SCENE_VIDEO, batch_frames=0))


def test_stream_reader_thread_stops_and_passes_errors(recognizer):
    import threading

    frame = np.asarray(Image.open(SCENE).convert("RGB"))

    def endless():
        i = 0
        while True:
            yield Frame(i, i / 15, frame)
            i += 1

    for n, _result in enumerate(recognizer.stream(endless(), batch_frames=2)):
        if n == 4:
            break  # the generator is closed here: its reader thread must end, not block on the queue
    assert not any(t.name == "lrfer-detect" and t.is_alive() for t in threading.enumerate())

    def broken():
        yield Frame(0, 0.0, frame)
        raise OSError("camera unplugged")

    with pytest.raises(OSError, match="camera unplugged"):
        list(recognizer.stream(broken(), batch_frames=1))


def test_recognizer_is_the_package_level_api():
    import lrfer

    assert lrfer.Recognizer is Recognizer
    with pytest.raises(AttributeError):
        lrfer.Recogniser  # noqa: B018
