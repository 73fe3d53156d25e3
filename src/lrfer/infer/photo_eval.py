"""Scoring the whole inference path on labelled whole photos: detect, crop, classify, and a face the
detector misses counts as a wrong answer (:func:`lrfer.evaluate.end_to_end.end_to_end_report`).

Face crops score the classifier alone. A user's camera gives whole photos. Two things then change
the answer: whether the detector finds the face, and how the crop frames it (the margin around the
detector's box, alignment). Neither can be measured on tight crops or on crops pasted back into
photos, since those give the framing the model was trained on. This module measures both on
photos a user or a checker holds: any dataset lrfer reads (JAFFE's 256 px photos, class folders of
a camera's stills), one labelled face per photo.

- **Which detection is the labelled face.** At the photo's own size, the detector's most confident
  face is the reference. At a smaller face size ``face_px``, the photo is shrunk with area
  resampling (PIL BOX) so that the reference box's shorter side is ``face_px``: lrfer's face size
  everywhere (:func:`lrfer.infer.crop.face_sizes`, ``Face.size``, the service's ``min_face_px``). A face there counts
  as found when a detection's centre lies in the shrunk reference box and its side is 0.4 to 1.6
  times the box's (:func:`match`, the rule of ``bench/photos_vs_fer.py`` and the robustness
  suite).
- **Missed faces.** A photo whose face is not found at its own size is missed at every size. A
  photo whose face is already at most ``face_px`` is scored as it is, not enlarged, and is
  counted in ``not_shrunk``.
- **Framing.** Each margin in ``margins`` runs over the same detections with the same classifier,
  so one run compares framings and nothing else.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from PIL import Image

from ..evaluate.alerting import negative_read_shares
from ..evaluate.end_to_end import end_to_end_report
from ..evaluate.plots import plot_sweep
from ..files import atomic_write_text
from ..progress import Progress, report
from .detect import Detections
from .pipeline import FacePipeline

#: A face size: pixels, or ``None`` for the photo as it is.
FacePx = Optional[int]


def match(pred_boxes: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, int]:
    """For each true box ``(k, 4)`` the index of the detection that found it (-1: missed), and the
    number of detections that found none: a detection's centre in the box, its side 0.4-1.6 times the box's."""
    found = np.full(len(truth), -1)
    used: set[int] = set()
    for j, (x1, y1, x2, y2) in enumerate(np.asarray(truth, dtype=np.float64).reshape(-1, 4)):
        side = max(x2 - x1, y2 - y1)
        for i, b in enumerate(np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)):
            if i in used:
                continue
            cx, cy, s = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, max(b[2] - b[0], b[3] - b[1])
            if x1 <= cx <= x2 and y1 <= cy <= y2 and 0.4 * side <= s <= 1.6 * side:
                found[j] = i
                used.add(i)
                break
    return found, len(pred_boxes) - len(used)


def reference_box(dets: Detections) -> Optional[np.ndarray]:
    """The labelled face of a one-face photo: the most confident detection, or None."""
    if len(dets) == 0:
        return None
    return np.asarray(dets.boxes[int(np.argmax(dets.scores))], dtype=np.float64)


def shrink(frame: np.ndarray, box: np.ndarray, face_px: FacePx) -> tuple[np.ndarray, np.ndarray, bool]:
    """``frame`` shrunk (area resampling) so that ``box``'s shorter side is ``face_px``, the box moved
    with it, and whether it was shrunk (never enlarged: a face already that small stays as it is)."""
    side = float(min(box[2] - box[0], box[3] - box[1]))
    if face_px is None or side <= face_px:
        return frame, box, False
    scale = face_px / side
    h, w = frame.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(frame).resize(size, Image.BOX))
    return small, box * np.array([size[0] / w, size[1] / h, size[0] / w, size[1] / h]), True


def with_margin(pipe: FacePipeline, margin: float) -> FacePipeline:
    """The same pipeline (same detector, classifier, prior, abstention) with another crop margin."""
    other = copy.copy(pipe)
    other.margin = float(margin)
    return other


def _answers(pipes: dict[float, FacePipeline], frames: list[np.ndarray], boxes: list[Optional[np.ndarray]],
             dets: Optional[list[Detections]] = None) -> dict[float, list]:  # fmt: skip
    """Each margin's answer for each photo: ``(label, confidence, face px)`` or None (missed);
    ``dets``: the frames' detections when already made."""
    dets = dets if dets is not None else next(iter(pipes.values())).detect(frames)
    hits = [-1 if b is None else int(match(d.boxes, b[None])[0][0]) for d, b in zip(dets, boxes)]
    out: dict[float, list] = {}
    for m, pipe in pipes.items():
        faces = pipe.recognize(frames, dets)
        out[m] = [None if h < 0 else (fs[h].label, fs[h].confidence, fs[h].size) for fs, h in zip(faces, hits)]
    return out


def evaluate_photos(
    pipe: FacePipeline,
    photos: Sequence[np.ndarray],
    true: Sequence[str],
    *,
    face_px: Sequence[FacePx] = (None,),
    margins: Sequence[float] = (),
    ids: Optional[Sequence[str]] = None,
    batch: int = 16,
    progress: Optional[Progress] = None,
) -> dict[str, Any]:
    """Score ``pipe`` on whole ``photos`` (RGB or gray uint8, one labelled face each, its class name
    in ``true``) at each face size and crop margin (``margins`` empty: the pipeline's own).

    Returns ``{"rows": [...], "answers": [...]}``: one row per (face_px, margin) with ``n``,
    ``found``, ``accuracy`` (over all faces), ``accuracy_found``, ``macro_f1``, the alerting shares
    (:func:`lrfer.evaluate.alerting.negative_read_shares`), per-class recall, ``not_shrunk`` and the
    median face size; and per photo (named by ``ids``) its class, reference box and each setting's
    answer ``(label, confidence, face px)`` or None (missed). Faces of classes
    the classifier does not know must be left out before (it cannot be right about them).
    """
    classes = list(pipe.classifier.classes)
    unknown = sorted(set(true) - set(classes))
    if unknown:
        raise ValueError(f"classes {unknown} are not the classifier's ({', '.join(classes)}): leave those photos out")
    pipes = {float(m): with_margin(pipe, m) for m in (margins or [pipe.margin])}
    settings = [(px, m) for px in face_px for m in pipes]
    answers: dict[tuple, list] = {s: [] for s in settings}
    refs: list[Optional[list[float]]] = []
    not_shrunk = dict.fromkeys(face_px, 0)
    total = len(photos)
    for start in range(0, total, batch):
        frames = [np.ascontiguousarray(p) for p in photos[start : start + batch]]
        native = next(iter(pipes.values())).detect(frames)
        ref = [reference_box(d) for d in native]
        refs += [None if b is None else [round(float(v), 1) for v in b] for b in ref]
        for px in face_px:
            small = [(f, None, False) if b is None else shrink(f, b, px) for f, b in zip(frames, ref)]
            not_shrunk[px] += sum(1 for (_, b, s) in small if b is not None and not s and px is not None)
            same = px is None or not any(s for _, _, s in small)  # nothing shrunk: the native detections stand
            got = _answers(pipes, [f for f, _, _ in small], [b for _, b, _ in small], native if same else None)
            for m, a in got.items():
                answers[(px, m)] += a
        report(progress, "photos", min(start + batch, total), total)
    rows = [_row(px, m, list(true), answers[(px, m)], classes, not_shrunk[px]) for px, m in settings]
    names = list(ids) if ids is not None else [str(i) for i in range(total)]
    per_photo = [{"id": names[i], "true": true[i], "reference_box": r, **{_key(px, m): answers[(px, m)][i] for px, m in settings}}
                 for i, r in enumerate(refs)]  # fmt: skip
    return {"settings": [_key(px, m) for px, m in settings], "rows": rows, "answers": per_photo}


def _key(px: FacePx, margin: float) -> str:
    return f"{'native' if px is None else f'{px}px'}@margin{margin:g}"


def _row(px: FacePx, margin: float, true: list[str], answers: list, classes: list[str], not_shrunk: int) -> dict[str, Any]:
    labels = [None if a is None else a[0] for a in answers]
    rep = end_to_end_report(true, labels, classes)
    sizes = [a[2] for a in answers if a is not None]
    return {
        "face_px": px, "margin": margin, "n": rep["n"], "found": rep["found"], "accuracy": rep["accuracy"],
        "accuracy_found": rep["accuracy_found"], "macro_f1": rep["macro_f1"], **negative_read_shares(true, labels),
        "recall": {c: v["recall"] for c, v in rep["per_class"].items() if v["support"]},
        "median_face_px": float(np.median(sizes)) if sizes else None, "not_shrunk": not_shrunk,
    }  # fmt: skip


def photo_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as a flat table (percentages as fractions): face size, margin, found, accuracy, macro F1, alert shares."""
    keys = ("n", "found", "accuracy", "accuracy_found", "macro_f1", "neutral_read_negative", "negative_read_negative")
    return [{"face px": "native" if r["face_px"] is None else r["face_px"], "margin": r["margin"], **{k: r.get(k) for k in keys}} for r in rows]


def write_photo_report(result: dict[str, Any], out_dir: Union[str, Path], title: str = "Whole photos, end to end") -> dict[str, Path]:
    """``photos.json`` (everything), ``photos.csv`` (one row per photo, each setting's answer) and
    ``photos.png`` (accuracy and macro F1 against face size, one line per margin; the photos as
    they are sit at their median face size) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": atomic_write_text(out / "photos.json", json.dumps(result, indent=1) + "\n")}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "true", "x1", "y1", "x2", "y2", *(f"{k}_{c}" for k in result["settings"] for c in ("label", "confidence", "face_px"))])
    for a in result["answers"]:
        cells = [a["id"], a["true"], *(a["reference_box"] or [""] * 4)]
        for k in result["settings"]:
            cells += list(a[k]) if a[k] is not None else ["", "", ""]
        w.writerow(cells)
    paths["csv"] = atomic_write_text(out / "photos.csv", buf.getvalue())
    series: dict[str, list[dict[str, Any]]] = {}
    for r in result["rows"]:
        size = r["face_px"] if r["face_px"] is not None else r["median_face_px"]
        if size:
            series.setdefault(f"margin {r['margin']:g}", []).append({"size": int(round(size)), "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]})
    if series:
        paths["plot"] = plot_sweep({k: sorted(v, key=lambda r: r["size"]) for k, v in series.items()}, out / "photos.png", title)
    return paths
