"""The evaluation report: metrics, calibration, model size and CPU latency, written to disk.

:func:`evaluate_model` returns a JSON-ready dict; :func:`write_report` saves it with its
confusion-matrix figure; :func:`write_sweep` does the same for a resolution sweep and returns a
markdown table for READMEs and benchmark pages.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from ..data.faceset import FaceSet
from ..data.transforms import TTA, Size, model_device, predict_proba, resolve_batch_size, size_hw, tta_views
from ..errors import LrferError
from ..files import atomic_write_text
from ..predict.classifier import FaceClassifier
from ..progress import Progress, report
from . import risk_coverage
from .metrics import classification_report, expected_calibration_error, nll
from .plots import plot_confusion, plot_risk_coverage, plot_sweep
from .risk_coverage import COVERAGES

LATENCY_BATCHES: tuple[int, ...] = (1, 64)


def model_size(model: nn.Module) -> dict[str, Any]:
    """Parameter count and the size of those parameters stored as fp32, in MB (10^6 bytes).

    Buffers (BatchNorm statistics) are left out: they are a rounding error for these models and
    papers count parameters.
    """
    params = sum(p.numel() for p in model.parameters())
    return {"params": int(params), "size_mb": params * 4 / 1e6}


def measure_cpu_latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_sizes: Sequence[int] = LATENCY_BATCHES,
    *,
    runs: int = 5,
    warmup: int = 2,
) -> dict[str, Any]:
    """Milliseconds per face of one plain forward pass on the CPU, per batch size.

    ``input_shape`` is ``(C, H, W)``. Each batch size is timed ``runs`` times after ``warmup``
    untimed runs (first calls allocate and pick kernels), and the median is kept because the
    first timed runs and background load only ever add time. Runs in fp32 under
    ``torch.inference_mode`` with the current thread count (recorded in the result). A model not
    on the CPU is copied there, so the caller's model stays where it is.
    """
    on_cpu = all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()])
    # A float copy if the caller's model is on an accelerator or in half precision.
    needs_copy = not on_cpu or any(p.dtype != torch.float32 for p in model.parameters())
    cpu_model = copy.deepcopy(model).cpu().float() if needs_copy else model
    was_training = cpu_model.training
    cpu_model.eval()
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "runs": runs, "input_shape": [int(s) for s in input_shape]}
    try:
        with torch.inference_mode():
            for bs in batch_sizes:
                x = torch.rand(int(bs), *input_shape)
                for _ in range(warmup):
                    cpu_model(x)
                times = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    cpu_model(x)
                    times.append(time.perf_counter() - t0)
                out[f"ms_per_face_batch{bs}"] = 1000.0 * statistics.median(times) / bs
    finally:
        cpu_model.train(was_training)
    return out


def _model_name(model: nn.Module) -> str:
    return str(getattr(model, "model_name", type(model).__name__))


def evaluate_model(
    model: nn.Module,
    faceset: FaceSet,
    classes: Optional[Sequence[str]] = None,
    *,
    tta: TTA = "none",
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    batch_size: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    measure_latency: bool = True,
    progress: Optional[Progress] = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``faceset`` and describe the model; returns a JSON-ready dict.

    ``classes`` names the model's outputs in order (default: the set's classes). The faces are
    mapped onto them by name with :meth:`FaceSet.with_classes`: rows of classes the model does
    not know are dropped (listed under ``dataset.dropped_classes``).

    Top-level keys: everything :func:`lrfer.evaluate.metrics.classification_report` returns
    (``accuracy``, ``macro_f1``, ``per_class``, ``confusion``, ...), ``ece`` and ``nll`` of the
    predicted probabilities, ``classes``, ``dataset``, ``settings`` and ``model``
    (``name``, ``params``, ``size_mb``, ``tta_views`` and, if ``measure_latency``, ``cpu_latency``
    in ms per face for batches of 1 and 64; the forward pass only, multiply by ``tta_views`` for
    the cost with test-time augmentation).
    """
    classes = tuple(classes) if classes is not None else faceset.classes
    batch_size = resolve_batch_size(batch_size, device if device is not None else model_device(model))
    fs = faceset.with_classes(classes)
    if len(fs) == 0:
        raise LrferError(
            f"no face of {faceset.name} belongs to the model's classes ({', '.join(classes)})",
            "check that the model and the dataset use the same label space",
        )
    probs = predict_proba(
        model, fs.images, batch_size=batch_size, device=device, tta=tta, crop=crop,
        input_size=input_size, progress=progress, task="evaluate",
    )  # fmt: skip
    if probs.shape[1] != len(classes):
        raise LrferError(
            f"the model predicts {probs.shape[1]} classes, but {len(classes)} class names were given",
            "pass the model's class names in output order",
        )
    result: dict[str, Any] = {}
    result.update(classification_report(fs.labels, probs.argmax(1), classes))
    result["ece"] = expected_calibration_error(probs, fs.labels)
    result["risk_coverage"] = risk_coverage_record(probs, fs.labels)
    result["nll"] = nll(probs, fs.labels)
    result["classes"] = list(classes)
    result["dataset"] = {
        "name": fs.name,
        "n": len(fs),
        "image_size": list(fs.image_size),
        "channels": fs.in_chans,
        "splits": list(fs.splits),
        "dropped_classes": list(fs.meta.get("dropped_classes", [])) if fs is not faceset else [],
    }
    result["settings"] = {
        "tta": tta,
        "crop": list(size_hw(crop)) if crop is not None else None,
        "input_size": list(size_hw(input_size)) if input_size is not None else None,
        "batch_size": batch_size,
        "device": str(device) if device is not None else None,
    }
    info: dict[str, Any] = {"name": _model_name(model), **model_size(model), "tta_views": tta_views(tta, crop)}
    if measure_latency:
        report(progress, "latency", 0, 1)
        if crop is not None:
            hw = size_hw(crop)
        elif input_size is not None:
            hw = size_hw(input_size)
        else:
            hw = fs.image_size
        chans = getattr(model, "in_chans", fs.in_chans)
        info["cpu_latency"] = measure_cpu_latency(model, (int(chans), *hw))
        report(progress, "latency", 1, 1)
    result["model"] = info
    return result


def risk_coverage_record(probs: Any, labels: Any, points: int = 50) -> dict[str, Any]:
    """The report's ``risk_coverage``: AURC, the thresholds of :data:`COVERAGES` and what they
    answer, and ``curve``: about ``points`` points of the curve (for the plot)."""
    p = np.asarray(probs.cpu() if isinstance(probs, torch.Tensor) else probs, np.float64)
    conf, correct = p.max(1), p.argmax(1) == np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    pts = risk_coverage.curve(conf, correct)
    keep = np.unique(np.linspace(0, len(pts["coverage"]) - 1, points).round().astype(int))
    curve = [{"coverage": float(pts["coverage"][i]), "accuracy": float(pts["accuracy"][i]), "threshold": float(pts["threshold"][i])} for i in keep]
    return {**risk_coverage.summary(conf, correct, COVERAGES), "curve": curve}


def evaluate_classifier(
    clf: FaceClassifier, faces: FaceSet, *, tta: TTA = "none", measure_latency: bool = True, progress: Optional[Progress] = None
) -> dict[str, Any]:
    """:func:`evaluate_model` of a loaded checkpoint, fed as it was trained, on faces already
    prepared for it (:meth:`FaceClassifier.prepare`)."""
    return evaluate_model(
        clf.model, faces, clf.classes, tta=tta, crop=clf.crop, input_size=clf.image_size,
        device=clf.device, measure_latency=measure_latency, progress=progress,
    )  # fmt: skip


def _json_default(o: Any) -> Any:
    """Numpy / torch scalars and arrays and paths, which json cannot write by itself."""
    if isinstance(o, (np.generic,)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _write_json(obj: Any, path: Path) -> Path:
    # atomically: a failed run leaves the earlier report, not a torn one
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_report(result: Mapping[str, Any], out_dir: Union[str, Path]) -> dict[str, Path]:
    """Write ``report.json`` (indented), ``confusion.png`` and, when the report has a risk-coverage
    curve, ``risk_coverage.png`` into ``out_dir``; returns their paths as ``{"json": ...,
    "confusion": ..., "risk_coverage": ...}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": _write_json(dict(result), out / "report.json")}
    name = result.get("model", {}).get("name", "model")
    dataset = result.get("dataset", {}).get("name", "")
    title = f"{name} on {dataset}" if dataset else str(name)
    if "accuracy" in result:
        title += f"  (acc {100 * result['accuracy']:.1f}%, macro F1 {100 * result['macro_f1']:.1f}%)"
    paths["confusion"] = plot_confusion(result["confusion_normalized"], result["classes"], out / "confusion.png", title)
    if result.get("risk_coverage", {}).get("curve"):
        paths["risk_coverage"] = plot_risk_coverage(result["risk_coverage"]["curve"], out / "risk_coverage.png", f"{name} on {dataset}")
    return paths


SweepRows = Sequence[Mapping[str, Any]]


def _clean_rows(rows: SweepRows) -> list[dict[str, Any]]:
    return [
        {"size": int(r["size"]), "accuracy": float(r["accuracy"]), "macro_f1": float(r["macro_f1"]), "n": int(r["n"])}
        for r in sorted(rows, key=lambda r: r["size"])
    ]


def sweep_table(results: Union[SweepRows, Mapping[str, SweepRows]]) -> str:
    """Markdown table of one sweep (rows: size | accuracy | macro F1 | n, values in %), or of
    ``{model: sweep}`` (rows: size, then accuracy and macro F1 columns per model)."""
    if isinstance(results, Mapping):
        series = {name: {r["size"]: r for r in _clean_rows(rows)} for name, rows in results.items()}
        sizes = sorted({s for rows in series.values() for s in rows})
        head = ["size (px)"] + [f"{name} {m}" for name in series for m in ("acc (%)", "macro F1 (%)")]
        lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
        for s in sizes:
            cells = [str(s)]
            for rows in series.values():
                r = rows.get(s)
                cells += [f"{100 * r['accuracy']:.1f}", f"{100 * r['macro_f1']:.1f}"] if r else ["-", "-"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    lines = ["| size (px) | accuracy (%) | macro F1 (%) | n |", "|---:|---:|---:|---:|"]
    for r in _clean_rows(results):
        lines.append(f"| {r['size']} | {100 * r['accuracy']:.1f} | {100 * r['macro_f1']:.1f} | {r['n']} |")
    return "\n".join(lines) + "\n"


def write_sweep(
    results: Union[SweepRows, Mapping[str, SweepRows]],
    out_dir: Union[str, Path],
    title: str = "Accuracy against face size",
) -> str:
    """Write ``sweep.json`` and ``sweep.png`` into ``out_dir``; return the markdown table.

    One sweep is written as a JSON list of ``{size, accuracy, macro_f1, n}``; a
    ``{model: sweep}`` comparison as a JSON object of such lists (and one line per model).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(results, Mapping):
        data: Any = {str(name): _clean_rows(rows) for name, rows in results.items()}
    else:
        data = _clean_rows(results)
    _write_json(data, out / "sweep.json")
    plot_sweep(data, out / "sweep.png", title)
    return sweep_table(data)
