"""Build the far-camera examples from the public-domain astronaut photo.

    python examples/make_scene.py

Writes ``examples/far_scene.png`` (a 640x480 frame with three copies of the photo, faces about
48, 28 and 18 px wide, as a camera across a room would see them) and ``examples/far_scene.mp4``
(3 s at 15 fps of the same copies drifting, for ``lrfer video``), and the looping camera of
``lrfer serve --demo`` (``src/lrfer/assets/demo/lounge.mp4``). Deterministic: rerunning gives
the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
FACE_WIDTH_IN_PHOTO = 89  # yuface's box on the 512 px photo
#: (face width px, left x, bottom y, mirrored, drift px per frame)
COPIES = [(48, 10, 470, False, 1.5), (28, 300, 400, True, -1.0), (18, 470, 330, False, 0.8)]
W, H = 640, 480
DEMO = HERE.parent / "src" / "lrfer" / "assets" / "demo" / "lounge.mp4"


def backdrop() -> np.ndarray:
    """A soft gradient wall with mild texture, so the frame is not flat grey."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    wall = 150 + 40 * (x / W) - 30 * (y / H)
    texture = rng.normal(0, 6, (H // 8, W // 8)).astype(np.float32)
    texture = np.asarray(Image.fromarray(texture).resize((W, H), Image.BICUBIC))
    rgb = np.stack([wall * 0.95, wall, wall * 1.05], axis=-1) + texture[..., None]
    return rgb.clip(0, 255).astype(np.uint8)


def scene(photo: Image.Image, t: int = 0) -> np.ndarray:
    canvas = Image.fromarray(backdrop())
    for face_px, x, bottom, mirror, drift in COPIES:
        side = round(photo.width * face_px / FACE_WIDTH_IN_PHOTO)
        im = photo.resize((side, side), Image.BOX)
        if mirror:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        canvas.paste(im, (round(x + drift * t), bottom - side))
    return np.asarray(canvas)


def main() -> None:
    photo = Image.open(HERE / "astronaut.png").convert("RGB")
    Image.fromarray(scene(photo)).save(HERE / "far_scene.png", optimize=True)
    from lrfer.infer.video import VideoWriter

    with VideoWriter(HERE / "far_scene.mp4", 15.0, W, H) as out:
        for t in range(45):
            out.write(scene(photo, t))
    # The camera of `lrfer serve --demo`: 20 s at 10 fps, the copies drifting out and back, so the
    # loop is seamless and each face stays one track across loops.
    with VideoWriter(DEMO, 10.0, W, H) as out:
        for t in list(range(100)) + list(range(100, 0, -1)):
            out.write(scene(photo, t * 0.3))
    print(f"wrote {HERE / 'far_scene.png'}, {HERE / 'far_scene.mp4'} and {DEMO}")


if __name__ == "__main__":
    main()
