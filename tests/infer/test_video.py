"""Video reading (frames, times, errors, broken streams, memory), writing, and frame annotation."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lrfer.errors import LrferError
from lrfer.infer.annotate import colour_for, draw_faces
from lrfer.infer.crop import crop_faces
from lrfer.infer.video import Frame, VideoWriter, open_video, open_webcam
from tests.infer.conftest import EYE, render_clip_frame, truncate, write_non_video, write_video, write_zero_frame_video


def test_reads_the_moving_faces_clip(moving_faces_video):
    clip = moving_faces_video
    with open_video(clip.path) as video:
        assert (video.width, video.height, video.fps, video.frame_count) == (640, 480, 15.0, 60)
        n = 0
        for frame in video:
            assert isinstance(frame, Frame) and frame.index == n
            assert frame.time == pytest.approx(n / 15, abs=1e-6)
            assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
            if n in (5, 30, 55):
                # Decoded in order and in RGB: the eye dots sit where frame n drew them.
                for (lx, ly), (rx, ry) in clip.eyes[n]:
                    for x, y in ((lx, ly), (rx, ry)):
                        assert frame.image[int(round(y)), int(round(x))].max() < EYE[0] + 50
                big = clip.boxes[n][0].astype(int)
                cheek = frame.image[big[1] + 110, (big[0] + big[2]) // 2]
                assert cheek[0] > cheek[2] + 30  # skin is red-heavy: channels are not BGR
            n += 1
        assert n == 60 and video.status == "ok" and video.frames_read == 60


def test_crops_from_decoded_frames_find_the_eyes(moving_faces_video):
    clip = moving_faces_video
    with open_video(clip.path) as video:
        frame = next(f for f in video if f.index == 12)
    crops = crop_faces(frame.image, clip.boxes[12], size=48, margin=0.0)
    for crop, (x1, y1, x2, y2) in zip(crops[:, 0], clip.boxes[12]):
        dark = crop < 80
        ys, xs = np.nonzero(dark)
        # Eyes 0.22 w either side of the centre and 0.12 h above it (conftest.draw_face), in a
        # square crop of side max(w, h).
        side = max(x2 - x1, y2 - y1)
        dx, dy = 0.22 * (x2 - x1) / side, 0.12 * (y2 - y1) / side
        assert abs(ys.mean() / 48 - (0.5 - dy)) < 0.03
        assert abs(xs[xs < 24].mean() / 48 - (0.5 - dx)) < 0.03 and abs(xs[xs >= 24].mean() / 48 - (0.5 + dx)) < 0.03


def test_input_errors(tmp_path):
    with pytest.raises(LrferError, match="no such video file"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(LrferError, match="is a folder"):
        open_video(tmp_path)
    with pytest.raises(LrferError, match="not a readable video"):
        open_video(write_non_video(tmp_path / "notes.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(LrferError, match="empty"):
        open_video(tmp_path / "empty.mp4")
    with pytest.raises(LrferError, match="video has no frames"):
        open_video(write_zero_frame_video(tmp_path / "zero.avi"))


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with pytest.raises(LrferError, match="no video stream"):
        open_video(path)


def _clip_frames(n: int, w: int = 320, h: int = 240):
    return (render_clip_frame(i, n, w, h) for i in range(n))


@pytest.mark.parametrize("suffix,options", [(".mp4", {"movflags": "faststart"}), (".mkv", None)])
def test_stream_broken_midway_stops_with_a_status(tmp_path, suffix, options):
    # MP4 with its index up front states 60 frames; MKV states only a duration.
    full = write_video(tmp_path / f"full{suffix}", _clip_frames(60), 15, container_options=options)
    cut = truncate(full, tmp_path / f"cut{suffix}", 0.5)
    with open_video(cut) as video:
        frames = [f.index for f in video]  # must not raise
    assert 0 < len(frames) < 60 and frames == list(range(len(frames)))
    assert video.status != "ok" and ("truncated" in video.status or "broken" in video.status)
    # The intact file reads to its end with status ok.
    with open_video(full) as video:
        assert sum(1 for _ in video) == 60 and video.status == "ok"


def test_mp4_cut_before_its_index_is_a_user_error(tmp_path):
    # A default MP4 keeps its index at the end: half a file cannot be opened at all.
    full = write_video(tmp_path / "full.mp4", _clip_frames(20), 15)
    with pytest.raises(LrferError, match="not a readable video"):
        open_video(truncate(full, tmp_path / "cut.mp4", 0.5))


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def test_long_video_streams_in_constant_memory(tmp_path):
    n = 3000  # 100 s at 30 fps; holding its frames would take 3000 * 57.6 kB = 173 MB
    bg = np.zeros((120, 160, 3), np.uint8)

    def frames():
        for i in range(n):
            f = bg.copy()
            x = (i * 3) % 140
            f[40:60, x : x + 20] = (200, 100, 50)
            yield f

    path = write_video(tmp_path / "long.mp4", frames(), 30)
    count, rss_early = 0, None
    with open_video(path) as video:
        for frame in video:
            if frame.index == 300:
                rss_early = _rss_mb()
            count += 1
        rss_end = _rss_mb()
    assert count == n and video.status == "ok"
    assert frame.time == pytest.approx((n - 1) / 30, abs=1e-3)
    assert rss_end - rss_early < 30, f"memory grew by {rss_end - rss_early:.1f} MB"


def test_times_stay_increasing_in_avi_with_b_frames(tmp_path):
    # AVI has no presentation times; FFmpeg labels H.264 B-frames there out of order.
    path = write_video(tmp_path / "b.avi", _clip_frames(20), 10, options={"preset": "medium"})
    with open_video(path) as video:
        times = [f.time for f in video]
    assert times == pytest.approx([i / 10 for i in range(20)])


def test_rotation_metadata_is_applied(tmp_path):
    import av

    path = tmp_path / "portrait.mp4"
    img = np.zeros((48, 64, 3), np.uint8)
    img[:8, :8] = 255  # a marker in the top-left corner
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(-90)  # what phones store: show it turned 90 degrees clockwise
        for _ in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with open_video(path) as video:
        assert (video.width, video.height) == (48, 64)
        image = next(iter(video)).image
    # Turned clockwise, the top-left corner ends up top-right.
    assert image.shape == (64, 48, 3)
    assert image[:8, -8:].mean() > 200 and image[:8, :8].mean() < 50


def test_writer_round_trip_with_odd_size(tmp_path):
    h, w = 121, 161
    frames = [render_clip_frame(i, 10, w, h) for i in range(10)]
    for codec in (None, "mpeg4"):
        path = tmp_path / f"out_{codec}.mp4"
        with VideoWriter(path, 12.5, w, h, codec=codec) as writer:
            for f in frames:
                writer.write(f)
        assert writer.frames_written == 10 and writer.codec == (codec or writer.codec) and writer.codec in ("libx264", "mpeg4")
        with open_video(path) as video:
            back = [f.image for f in video]
            assert video.fps == 12.5 and (video.width, video.height) == (162, 122)  # padded to even
        assert len(back) == 10
        err = np.abs(back[7][:h, :w].astype(int) - frames[7].astype(int)).mean()
        assert err < 6, (codec, err)
    with VideoWriter(tmp_path / "g.mkv", 5, 32, 24) as writer:
        writer.write(np.full((24, 32), 128, np.uint8))  # gray frames are accepted
        with pytest.raises(ValueError):
            writer.write(np.zeros((10, 10, 3), np.uint8))


def test_writer_errors(tmp_path):
    with pytest.raises(LrferError, match="unknown file type"):
        VideoWriter(tmp_path / "out.notavideo", 10, 32, 32)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="device paths are /dev/videoN on Linux only")
def test_missing_webcam_is_a_user_error():
    n = next(i for i in range(60, 100) if not Path(f"/dev/video{i}").exists())
    with pytest.raises(LrferError, match=f"no camera at /dev/video{n}"):
        open_webcam(n)
    with pytest.raises(LrferError, match="no camera at /dev/nonexistent-cam"):
        open_webcam("/dev/nonexistent-cam")


# --- annotation --------------------------------------------------------------------------------


@dataclass
class FakeFace:
    box: tuple
    label: str | None
    confidence: float | None
    track_id: int | None = None


def test_draw_faces_boxes_and_tags():
    frame = np.full((240, 320, 3), 40, np.uint8)
    faces = [FakeFace((50, 80, 130, 180), "happy", 0.87, 3), FakeFace((200, 5, 260, 70), "sad", 0.51)]
    out = draw_faces(frame, faces)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (frame == 40).all()  # the input is left alone
    # Box outlines in the expression's colour.
    assert tuple(out[130, 50]) == colour_for("happy") and tuple(out[40, 260]) == colour_for("sad")
    assert colour_for("happy") != colour_for("sad")
    # The tag of the first face sits above its box; the second, at the top of the frame, inside its box.
    above = out[60:80, 50:130]
    assert (np.abs(above.astype(int) - 40).sum(axis=2) > 0).mean() > 0.3
    inside = out[6:20, 201:259]
    assert (np.abs(inside.astype(int) - 40).sum(axis=2) > 0).mean() > 0.3


def test_draw_faces_scales_with_the_frame_and_takes_gray():
    def tag_height(h: int, w: int) -> int:
        frame = np.zeros((h, w), np.uint8)
        out = draw_faces(frame, [FakeFace((w * 0.4, h * 0.5, w * 0.6, h * 0.8), "neutral", 0.9, 12)])
        assert out.shape == (h, w, 3)
        rows = np.flatnonzero((out[: int(h * 0.5)] != 0).any(axis=(1, 2)))
        return len(rows)

    small, large = tag_height(240, 320), tag_height(960, 1280)
    assert large > 2.5 * small > 0
    unlabeled = draw_faces(np.zeros((100, 100, 3), np.uint8), [FakeFace((10, 10, 50, 50), None, None)])
    assert unlabeled[10, 30].any() and not unlabeled[20:40, 20:40].any()  # just the box


def test_a_video_replaces_the_file_only_when_finished(tmp_path):
    """Frames go to a temporary file beside the target (its suffix kept, for the container):
    close() puts it in place, close(keep=False) or an error inside removes it and the old file stays."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"the user's clip")
    frame = np.zeros((24, 32, 3), np.uint8)
    writer = VideoWriter(path, 5, 32, 24)
    writer.write(frame)
    assert [p.suffix for p in tmp_path.iterdir() if p != path] == [".mp4"]
    writer.close(keep=False)
    assert path.read_bytes() == b"the user's clip" and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    with pytest.raises(RuntimeError), VideoWriter(path, 5, 32, 24) as writer:
        writer.write(frame)
        raise RuntimeError
    assert path.read_bytes() == b"the user's clip" and [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    with VideoWriter(path, 5, 32, 24) as writer:
        writer.write(frame)
    with open_video(path) as src:
        assert sum(1 for _ in src) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
