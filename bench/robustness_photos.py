"""End to end on whole photos built from CK+ faces: the robustness suite's photo set (bench/robustness.py).

Every CK+48 face of the held-out half of its subjects (492 faces of 59 subjects, 7 classes with
contempt: bench/suite.py's CK+ set, which the shipped model, trained with the other half mixed in,
never saw) is put into a photo of its own, at
each face size, when the suite runs (nothing is saved): a 256x256 window of the demo scene's wall
(``examples/make_scene.py``'s ``backdrop``: a soft gradient with mild texture) at a random place,
mirrored half of the time and made lighter or darker, turned gray as CK+'s faces are; the face is
shrunk to S px with area resampling (PIL BOX; at 48 px it is pasted as stored) and pasted at a
random place. Photos are drawn from ``--seed`` and the size, so every model sees the same photos.

Then each model reads every photo through lrfer's inference path: ``lrfer.Recognizer``'s YuNet
detector (``upscale="auto"``, what ``lrfer predict`` does: a 256 px photo is searched at 512 px),
its crop from the original frame (margin 0.1, not aligned) and the model. The frame is searched
once and its detections go to every model's :meth:`~lrfer.infer.pipeline.FacePipeline.recognize`
(``Recognizer.predict_batch`` is exactly ``recognize(frames, detect(frames))``), so the peers get
the same boxes and the same crop, at their own input size. A face is found when a detection's
centre lies in the pasted square and its side is 0.4 to 1.6 times the face's (the rule of
``bench/photos_vs_fer.py``); a face not found is scored as a wrong answer
(:func:`lrfer.evaluate.end_to_end.end_to_end_report`).

What this favours: CK+48's faces are TIGHT crops (brow to chin), so the pasted square is nearly
all face and YuNet's box comes out about the square's size: a framing close to FER2013's, kinder
than a camera's photo of a whole head, and the hard edge of the pasted square is no real scene.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from _common import example_module
from lrfer.data.readers import load_dataset
from lrfer.data.splits import held_out_subjects
from lrfer.data.transforms import predict_proba
from lrfer.evaluate.alerting import negative_read_shares
from lrfer.evaluate.end_to_end import end_to_end_report
from lrfer.infer.detect import DEFAULT_DETECTOR, create_detector
from lrfer.infer.photo_eval import match
from lrfer.infer.recognizer import Recognizer
from suite import CKPLUS_HELDOUT_FOLDS

PHOTO = 256  # side of each photo, px
CHUNK = 64  # photos held in memory at once
PROTOCOL = (
    "CK+48: the 492 faces of the held-out half of its subjects (59 subjects, fold 0 of 2 of lrfer.data.splits.held_out_subjects; "
    "the last 3 frames of each labelled sequence), one per 256x256 gray photo: a random "
    "window of the demo scene's textured wall (examples/make_scene.py backdrop), mirrored half the time, lightened or darkened, "
    "with the face shrunk to the size by area resampling (PIL BOX) and pasted at a random place; photos made at run time from "
    "--seed and the size, the same for every model. Each model reads every photo end to end: YuNet (upscale auto, min score "
    "0.5), the crop from the original frame (margin 0.1), the model at its own input size (the peers get the same boxes and "
    "crops through the same lrfer.Recognizer path). A face counts as found when a detection's centre lies in the pasted square "
    "and its side is 0.4-1.6 times the face's; a face not found is a WRONG answer. Scored over the classes each model knows "
    "(7-class models: the 24 contempt faces left out; the top class over all the model's outputs, so a neutral answer to a "
    "CK+ face, which is never neutral, is wrong). CK+48's crops are tight (brow to chin), so these photos favour tight framing: "
    "YuNet's box comes out about the size of the pasted square, close to FER2013's framing."
)


class NetClassifier:
    """A network the suite loaded (a peer) as the Recognizer's classifier: it takes the Recognizer's
    gray crops at its own input size and answers as the suite runs it on face sets."""

    train_prior = None  # no deployment prior is applied here

    def __init__(self, entry: Any, device: str, batch_size: int):
        self.net, self.classes, self.crop = entry.net, tuple(entry.classes), entry.crop
        self.image_size = int(entry.input_size)
        self.in_chans = int(getattr(entry.net, "in_chans", 1))
        self.name, self.device, self.batch_size = entry.name, device, batch_size

    def predict_proba(self, images: Any, *, tta: str = "none", degrade_to: Any = None, batch_size: Any = None) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(images))
        return predict_proba(self.net, x, batch_size=self.batch_size, device=self.device, tta=tta, crop=self.crop, input_size=self.image_size).numpy()


def ckplus_faces(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The faces uint8 ``(N, 48, 48)`` of CK+48's held-out subjects (the set bench/suite.py scores)
    and their class names (canonical: angry, contempt, ...)."""
    ck = held_out_subjects(load_dataset(path), CKPLUS_HELDOUT_FOLDS)[1]
    return ck.images[:, 0].numpy(), np.array(ck.classes)[ck.labels.numpy()]


def _wall() -> np.ndarray:
    rgb = example_module("make_scene").backdrop()
    return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.int16)


def photos(faces: np.ndarray, size: int, seed: int, chunk: int = CHUNK) -> Iterator[tuple[list[np.ndarray], np.ndarray]]:
    """Photos ``(PHOTO, PHOTO, 3)`` uint8 of one face each, ``chunk`` at a time, with the pasted boxes ``(k, 4)``."""
    rng = np.random.default_rng([seed, size])
    wall = _wall()
    h, w = wall.shape
    for start in range(0, len(faces), chunk):
        frames, boxes = [], []
        for img in faces[start : start + chunk]:
            y0, x0 = int(rng.integers(0, h - PHOTO + 1)), int(rng.integers(0, w - PHOTO + 1))
            bg = wall[y0 : y0 + PHOTO, x0 : x0 + PHOTO]
            bg = bg[:, ::-1] if rng.random() < 0.5 else bg
            canvas = Image.fromarray(np.clip(bg + int(rng.integers(-40, 41)), 0, 255).astype(np.uint8))
            face = Image.fromarray(img) if img.shape[0] == size else Image.fromarray(img).resize((size, size), Image.BOX)
            x, y = int(rng.integers(4, PHOTO - size - 4)), int(rng.integers(4, PHOTO - size - 4))
            canvas.paste(face, (x, y))
            frames.append(np.repeat(np.asarray(canvas)[:, :, None], 3, axis=2))
            boxes.append((x, y, x + size, y + size))
        yield frames, np.array(boxes, np.float32)


def pipelines(entries: Sequence[Any], args: Any) -> dict[str, Recognizer]:
    """One Recognizer per model, all sharing one detector: lrfer's models as ``lrfer predict`` loads
    them (the shipped default from its ONNX file), the peers through :class:`NetClassifier`."""
    detector = create_detector(DEFAULT_DETECTOR, min_score=0.5, upscale="auto")
    out = {}
    for e in entries:
        model = e.checkpoint if e.lrfer else NetClassifier(e, args.device, args.batch_size)
        out[e.name] = Recognizer(model, detector, device=args.device, threads=args.threads, reading=e.reading if e.lrfer else None)
    return out


def read_photos(pipes: dict[str, Recognizer], faces: np.ndarray, size: int, seed: int) -> tuple[dict[str, list], dict[str, Any]]:
    """Each model's answer per face (a class name, or None when the face was not found) and what
    the detector did (shared by all models)."""
    answers: dict[str, list] = {name: [] for name in pipes}
    first = next(iter(pipes.values()))
    found = false = 0
    ratio: list[float] = []
    for frames, truth in photos(faces, size, seed):
        dets = first.detect(frames)
        for d, box in zip(dets, truth):
            hit, extra = match(d.boxes, box[None])
            found, false = found + int(hit[0] >= 0), false + extra
            if hit[0] >= 0:
                b = d.boxes[hit[0]]
                ratio.append(float(max(b[2] - b[0], b[3] - b[1]) / size))
        for name, pipe in pipes.items():
            for faces_in, d, box in zip(pipe.recognize(frames, dets), dets, truth):
                hit, _ = match(d.boxes, box[None])
                answers[name].append(faces_in[hit[0]].label if hit[0] >= 0 else None)
    detection = {
        "size": size, "photos": len(faces), "found": found / len(faces), "false_per_photo": false / len(faces),
        "box_side_over_face_median": float(np.median(ratio)) if ratio else None,
    }  # fmt: skip
    return answers, detection


def score_photos(classes: Sequence[str], true: np.ndarray, answers: Sequence[Any], size: int) -> dict[str, Any]:
    """One model at one size: the end-to-end report and the alerting errors, over the faces of the
    classes it knows."""
    keep = np.isin(true, list(classes))
    t, p = true[keep], [a for a, k in zip(answers, keep) if k]
    rep = end_to_end_report(t, p, classes)
    return {
        "size": size, "n": rep["n"], "found": rep["found"], "accuracy": rep["accuracy"], "accuracy_found": rep["accuracy_found"],
        "macro_f1": rep["macro_f1"], **negative_read_shares(t, p), "recall": {c: v["recall"] for c, v in rep["per_class"].items() if v["support"]},
    }  # fmt: skip


def run_photos(entries: Sequence[Any], path: Path, sizes: Sequence[int], args: Any, log=print) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``({model: {classes, n, dropped_label_classes, sweep}}, detection per size)``."""
    faces, true = ckplus_faces(path)
    pipes = pipelines(entries, args)
    results: dict[str, Any] = {
        e.name: {"classes": list(e.classes), "n": int(np.isin(true, list(e.classes)).sum()),
                 "dropped_label_classes": sorted(set(true.tolist()) - set(e.classes)), "sweep": []}
        for e in entries
    }  # fmt: skip
    detection = []
    for size in sorted(sizes, reverse=True):
        answers, det = read_photos(pipes, faces, size, args.seed)
        detection.append(det)
        for e in entries:
            row = score_photos(e.classes, true, answers[e.name], size)
            results[e.name]["sweep"].append(row)
            log(f"{e.name:24s} photos {size:3d}px  found {100 * row['found']:.1f}  accuracy {100 * row['accuracy']:.1f}  macro F1 {100 * row['macro_f1']:.1f}")
    for r in results.values():
        r["sweep"].sort(key=lambda row: row["size"])
    return results, detection
