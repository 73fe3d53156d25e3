"""An archive for the batch tests: photos and videos of real faces (the bundled far scene), and bad files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrfer.batch.run import run_batch
from lrfer.batch.table import read_results
from lrfer.infer.video import VideoWriter, open_video
from tests.conftest import ROOT_DIR

SCENE = ROOT_DIR / "examples" / "far_scene.png"
SCENE_VIDEO = ROOT_DIR / "examples" / "far_scene.mp4"


@dataclass
class Archive:
    root: Path
    photos: list[Path]
    videos: list[Path]
    bad: dict[Path, str]  # file -> a word its status row holds

    @property
    def files(self) -> list[Path]:
        return [*self.photos, *self.videos, *self.bad]


def make_archive(root: Path, photos: int = 6, video_frames: int = 30) -> Archive:
    """``photos`` views of the far scene (mirrored, cropped, scaled; some in a subfolder, some
    JPEG), two videos of its first ``video_frames`` frames (one mirrored), and three bad files."""
    scene = np.array(Image.open(SCENE).convert("RGB"))
    views = []
    for i in range(photos):
        v = scene[:, ::-1] if i % 2 else scene
        h, w = v.shape[:2]
        v = v[: h - 40 * (i // 2), (i // 2) * 60 :]
        views.append(Image.fromarray(np.ascontiguousarray(v)))
    out_photos = []
    for i, im in enumerate(views):
        path = root / ("photos/sub" if i % 3 == 2 else "photos") / f"p{i}.{'jpg' if i % 4 == 3 else 'png'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, quality=95)
        out_photos.append(path)
    with open_video(SCENE_VIDEO) as src:
        frames = [f.image for _, f in zip(range(video_frames), src)]
        fps = src.fps
    videos = [root / "videos" / "v0.mp4", root / "videos" / "v1.mp4"]
    for path, mirror in zip(videos, (False, True)):
        with VideoWriter(path, fps, frames[0].shape[1], frames[0].shape[0]) as out:
            for f in frames:
                out.write(np.ascontiguousarray(f[:, ::-1]) if mirror else f)
    bad = {root / "photos" / "broken.jpg": "not a readable image", root / "photos" / "empty.png": "empty", root / "videos" / "broken.mp4": "not a readable video"}
    for path in bad:
        path.write_bytes(b"" if path.name == "empty.png" else b"this is not what its name says\n")
    return Archive(root, out_photos, videos, bad)


@pytest.fixture(scope="session")
def archive(tmp_path_factory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="session")
def one_run(archive, tmp_path_factory):
    """The archive through ``run_batch`` in this process: (summary, rows, output folder)."""
    out = tmp_path_factory.mktemp("batch") / "out"
    summary = run_batch([archive.root], out, shard_files=3)
    return summary, read_results(out), out
