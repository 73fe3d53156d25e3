"""Scene videos for the alert benchmark, made at run time from FER2013 PublicTest faces (never committed).

    python bench/serve_scenes.py --out /tmp/scenes [--calm 4] [--distressed 6] [--minutes 12] [--seed 0]

A scene is a 640x480 room (a wall, a window, a sofa, a table) with 2-5 seated people. Each person
is a torso and a FER2013 face pasted at 16-48 px (its own size, breathing +-6 %), drifting slowly,
with focus blur, lighting jitter and sensor noise; the face is swapped every 15-45 s for another
image of the person's current expression, so a track sees several images of one class. Now and
then a person looks away for 3-12 s (no face drawn), which may split their track, and some people
arrive or leave mid-scene. "calm" scenes hold neutral and happy faces only; in "distressed" scenes
some people have an episode of 4-6 min of sad, angry or fear faces (some arrive already upset).
30 % of the people have a resting face that looks a little sad (neutral faces some FERPlus
taggers read as negative; see :func:`face_pools`): the case a rule relative to the person's own
baseline is for.

Only the sampled frames are made: the video is written at the analysis rate (2 fps), not at 25 fps,
since the camera worker would sample 2 fps out of it anyway. Each scene is ``<name>.mp4`` and
``<name>.json``, its ground truth: per person the face size, presence, mood segments, distressed
intervals and the face box at every frame where the face is visible.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from _common import DATA, add_data_arg, example_module
from lrfer.data.readers import load_dataset
from lrfer.infer.video import VideoWriter

W, H = 640, 480
FPS = 2.0
CALM = ("neutral", "happy")
DISTRESS = ("sad", "angry", "fear")
FACE_PX = (16, 48)
SAD_LOOKING = "neutral, sad-looking"
#: the share of people whose resting face looks a little sad (the case the own baseline is for)
SAD_LOOKING_SHARE = 0.3
CRF = 26  # a camera's stream is compressed too; and a lower CRF spends its time encoding the noise

backdrop = example_module("make_scene").backdrop  # the demo scene's wall


def face_pools(data: str) -> dict[str, np.ndarray]:
    """PublicTest images (48x48 uint8) by class name, plus ``SAD_LOOKING``: neutral faces that look a little sad.

    FERPlus's ten taggers per image choose them: an image joins its FER2013 class's pool when at
    least half of the taggers agree with the label (for sad, angry and fear: with a negative
    expression), so an episode shows what people would call distress. A neutral image whose
    taggers mostly say neutral but some (>= 2 of 10) say sad, angry, fear or disgust is a
    "sad-looking" resting face; plain neutral ones have no such vote. Blank images are left out.
    """
    fs = load_dataset(data).select_split("PublicTest")
    images = fs.images[:, 0].numpy()
    labels = fs.labels.numpy()
    votes = fs.soft_labels.numpy()  # FERPlus votes over the 7 FER2013 classes, rows summing to 1
    col = {c: k for k, c in enumerate(fs.classes)}
    negative = votes[:, [col[c] for c in ("sad", "angry", "fear", "disgust")]].sum(axis=1)
    ok = images.reshape(len(images), -1).std(axis=1) > 10  # FER2013 holds a few blank frames
    pools = {c: images[ok & (labels == col[c]) & (votes[:, col[c]] >= 0.5)] for c in CALM}
    pools["neutral"] = images[ok & (labels == col["neutral"]) & (votes[:, col["neutral"]] >= 0.5) & (negative == 0)]
    pools[SAD_LOOKING] = images[ok & (labels == col["neutral"]) & (votes[:, col["neutral"]] >= 0.4) & (negative >= 0.2)]
    for c in DISTRESS:
        pools[c] = images[ok & (labels == col[c]) & (negative >= 0.5)]
    return pools


# ---------------------------------------------------------------------- the plan (ground truth)
@dataclass
class Person:
    id: int
    x: float  # face centre
    y: float
    size: int  # face side, px
    t_in: float
    t_out: float
    moods: list = field(default_factory=list)  # [t0, t1, class]
    away: list = field(default_factory=list)  # [t0, t1]: face turned away, not drawn
    tint: tuple = (1.0, 1.0, 1.0)
    shirt: tuple = (90, 90, 90)
    drift: tuple = ()  # (amp x, period x, phase x, amp y, period y, phase y)
    swap: float = 30.0  # seconds between face images
    blur: float = 0.5
    resting: str = "neutral"  # the pool of their neutral faces: "neutral" or SAD_LOOKING

    def mood(self, t: float) -> str:
        return next((c for a, b, c in self.moods if a <= t < b), self.moods[-1][2])

    def distressed(self) -> list[list[float]]:
        return [[a, b] for a, b, c in self.moods if c in DISTRESS]


def calm_moods(rng: np.random.Generator, t0: float, t1: float) -> list:
    """Neutral stretches of 2-6 min with happy ones of 0.5-2 min between them."""
    out, t, mood = [], t0, "neutral" if rng.random() < 0.7 else "happy"
    while t < t1:
        d = 60 * (rng.uniform(2, 6) if mood == "neutral" else rng.uniform(0.5, 2))
        out.append([t, min(t + d, t1), mood])
        t, mood = t + d, "happy" if mood == "neutral" else "neutral"
    return out


def plan_person(rng: np.random.Generator, pid: int, x: float, duration: float, upset: bool) -> Person:
    size = int(rng.integers(FACE_PX[0], FACE_PX[1] + 1))
    y = rng.uniform(150, 330)
    t_in = 0.0 if rng.random() < 0.7 else rng.uniform(0, 0.5 * duration)
    t_out = duration if rng.random() < 0.7 else rng.uniform(t_in + 0.4 * duration, duration)
    if upset:
        t_out = duration
        length = 60 * rng.uniform(4, 6)
        if rng.random() < 0.25:  # arrives already upset: no history of their own to compare with
            a = t_in = rng.uniform(0, duration - length - 60)
        else:
            t_in = min(t_in, 0.3 * duration)
            a = rng.uniform(t_in + 180, max(t_in + 181, duration - length - 60))
        b = min(a + length, duration)
        moods = calm_moods(rng, t_in, a) + [[a, b, str(rng.choice(DISTRESS))]] + calm_moods(rng, b, duration)
        moods = [m for m in moods if m[1] > m[0]]
    else:
        moods = calm_moods(rng, t_in, t_out)
    away, t = [], t_in + rng.exponential(180)
    while t < t_out:
        d = rng.uniform(3, 12)
        away.append([t, t + d])
        t += d + rng.exponential(180)
    skin = rng.uniform(0.75, 1.0)
    return Person(
        pid, x, y, size, t_in, t_out, moods, away,
        tint=(1.0, 0.9 * skin + 0.05, 0.8 * skin),
        shirt=tuple(int(v) for v in rng.integers(30, 220, 3)),
        drift=(rng.uniform(5, 25), rng.uniform(60, 300), rng.uniform(0, 6.3), rng.uniform(2, 10), rng.uniform(60, 300), rng.uniform(0, 6.3)),
        swap=rng.uniform(15, 45), blur=rng.uniform(0.0, 1.0),
        resting=SAD_LOOKING if rng.random() < SAD_LOOKING_SHARE else "neutral",
    )


def plan_scene(rng: np.random.Generator, name: str, kind: str, minutes: float) -> list[Person]:
    duration = 60 * minutes
    if kind == "distressed" and minutes < 10:
        raise SystemExit(f"{name}: a distressed scene needs at least 10 minutes (calm, then an episode of 4-6 min, then time to alert)")
    n = int(rng.integers(2, 6))
    slots = np.linspace(70, W - 70, n) + rng.uniform(-20, 20, n)
    upset = np.zeros(n, bool)
    if kind == "distressed":
        upset = rng.random(n) < 0.6
        upset[rng.integers(n)] = True
    return [plan_person(rng, i, float(x), duration, bool(u)) for i, (x, u) in enumerate(zip(slots, upset))]


# ---------------------------------------------------------------------- rendering
def room(rng: np.random.Generator) -> Image.Image:
    """The demo's wall with a window, a sofa and a table, in colours of its own."""
    im = Image.fromarray(backdrop())
    d = ImageDraw.Draw(im)
    wx = int(rng.integers(40, 400))
    d.rectangle([wx, 40, wx + 180, 150], fill=tuple(int(v) for v in rng.integers(170, 230, 3)), outline=(90, 80, 70), width=5)
    sofa = tuple(int(v) for v in rng.integers(40, 160, 3))
    d.rounded_rectangle([20, 300, W - 20, 420], 25, fill=sofa)
    d.rectangle([0, 420, W, H], fill=tuple(int(v) for v in rng.integers(60, 120, 3)))
    d.ellipse([220, 410, 420, 470], fill=(110, 80, 55))
    return im


def position(p: Person, t: float) -> tuple[float, float, int]:
    ax, px, fx, ay, py, fy = p.drift
    x = p.x + ax * math.sin(2 * math.pi * t / px + fx)
    y = p.y + ay * math.sin(2 * math.pi * t / py + fy)
    return x, y, max(8, round(p.size * (1 + 0.06 * math.sin(2 * math.pi * t / 97 + fx))))


class FacePicker:
    """Which image a person shows at time t: a new one of their current mood every ``swap`` seconds."""

    def __init__(self, pools: dict[str, np.ndarray], seed: int):
        self.pools = pools
        self.rng = np.random.default_rng(seed)
        self.current: dict[int, tuple[int, str, np.ndarray]] = {}

    def face(self, p: Person, t: float) -> np.ndarray:
        slot, mood = int(t // p.swap), p.mood(t)
        cur = self.current.get(p.id)
        if cur is None or cur[0] != slot or cur[1] != mood:
            pool = self.pools[p.resting if mood == "neutral" else mood]
            cur = self.current[p.id] = (slot, mood, pool[self.rng.integers(len(pool))])
        return cur[2]


def draw_person(canvas: Image.Image, p: Person, face: np.ndarray, t: float, rng: np.random.Generator) -> list[int]:
    x, y, s = position(p, t)
    d = ImageDraw.Draw(canvas)
    d.ellipse([x - 1.3 * s, y + 0.45 * s, x + 1.3 * s, y + 3.2 * s], fill=p.shirt)  # shoulders and chest
    gain = 1 + 0.1 * math.sin(2 * math.pi * t / 41 + p.x) + rng.normal(0, 0.03)
    rgb = np.clip(face[..., None].astype(np.float32) * np.array(p.tint, np.float32) * gain, 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb).resize((s, s), Image.BILINEAR)
    sigma = p.blur * (0.6 + 0.4 * math.sin(2 * math.pi * t / 53 + p.y))
    if sigma > 0.15:
        im = im.filter(ImageFilter.GaussianBlur(sigma))
    box = [round(x - s / 2), round(y - s / 2)]
    canvas.paste(im, tuple(box))
    return [box[0], box[1], box[0] + s, box[1] + s]


def render(people: list[Person], pools: dict[str, np.ndarray], path: Path, minutes: float, seed: int, fps: float = FPS) -> dict[int, list]:
    """Write the scene's frames to ``path``; the face boxes per person: [[t, x1, y1, x2, y2], ...]."""
    rng = np.random.default_rng(seed)
    base = room(rng)
    picker = FacePicker(pools, seed + 1)
    boxes: dict[int, list] = {p.id: [] for p in people}
    # sensor noise from a small bank (drawing it fresh each frame costs more than the rest of the frame)
    noise = rng.normal(0, 1.5, (8, H, W, 1)).round().astype(np.int16)
    levels = np.arange(256, dtype=np.float32)
    with VideoWriter(path, fps, W, H, crf=CRF) as out:
        for k in range(int(minutes * 60 * fps)):
            t = k / fps
            canvas = base.copy()
            for p in people:
                if p.t_in <= t < p.t_out and not any(a <= t < b for a, b in p.away):
                    boxes[p.id].append([round(t, 2), *draw_person(canvas, p, picker.face(p, t), t, rng)])
            light = 1 + 0.08 * math.sin(2 * math.pi * t / 300) + rng.normal(0, 0.015)
            frame = np.clip(levels * light, 0, 255).astype(np.int16)[np.asarray(canvas)] + noise[k % len(noise)]
            out.write(np.clip(frame, 0, 255).astype(np.uint8))
    return boxes


def build_scene(pools: dict[str, np.ndarray], out: Path, name: str, kind: str, minutes: float, seed: int) -> dict:
    """Make one scene: ``out/<name>.mp4`` and ``out/<name>.json``; returns the ground truth."""
    rng = np.random.default_rng(seed)
    people = plan_scene(rng, name, kind, minutes)
    video = out / f"{name}.mp4"
    boxes = render(people, pools, video, minutes, seed)
    truth = {
        "name": name, "kind": kind, "minutes": minutes, "fps": FPS, "width": W, "height": H, "seed": seed, "video": video.name,
        "people": [
            {"id": p.id, "face_px": p.size, "resting": p.resting, "t_in": round(p.t_in, 2), "t_out": round(p.t_out, 2), "moods": [[round(a, 2), round(b, 2), c] for a, b, c in p.moods],
             "distressed": [[round(a, 2), round(b, 2)] for a, b in p.distressed()], "away": [[round(a, 2), round(b, 2)] for a, b in p.away],
             "boxes": boxes[p.id]}
            for p in people
        ],
    }
    (out / f"{name}.json").write_text(json.dumps(truth))
    return truth


def scene_names(calm: int, distressed: int, seed: int) -> list[tuple[str, str, int]]:
    """(name, kind, seed) of each scene; the seeds differ per scene and per ``seed``."""
    return [(f"calm{i:02d}", "calm", seed * 1000 + i) for i in range(calm)] + [(f"distressed{i:02d}", "distressed", seed * 1000 + 500 + i) for i in range(distressed)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for the videos and their ground truth (never commit them)")
    ap.add_argument("--calm", type=int, default=4)
    ap.add_argument("--distressed", type=int, default=6)
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=0)
    add_data_arg(ap, DATA)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pools = face_pools(args.data)
    for name, kind, seed in scene_names(args.calm, args.distressed, args.seed):
        truth = build_scene(pools, out, name, kind, args.minutes, seed)
        upset = sum(bool(p["distressed"]) for p in truth["people"])
        print(f"{out / truth['video']}: {len(truth['people'])} people, {upset} distressed")


if __name__ == "__main__":
    main()
