"""Figures for reports: confusion matrix, resolution sweep, risk-coverage, training curves.

Figures are built as :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas, never
through ``pyplot``: no window can open, the process-wide backend is not switched under a notebook
or another library, and no figure is registered in pyplot's global list, so nothing stays
alive after the function returns (the figure is closed by dropping its only reference).
Every function writes a PNG at :data:`DPI` and returns its path.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator, PercentFormatter

from ..files import atomic_write

DPI = 120
SweepRows = Sequence[Mapping[str, Any]]
PathLike = Union[str, Path]


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # attach Agg explicitly: PNG rendering without any GUI backend
    return fig


def _save(fig: Figure, path: PathLike) -> Path:
    path = Path(path)
    # atomically: a run killed while drawing (curves.png, each epoch) leaves the earlier figure
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    fig.clear()  # free the artists now rather than at garbage collection
    return path


def plot_confusion(
    confusion_normalized: Union[np.ndarray, Sequence[Sequence[float]]],
    classes: Sequence[str],
    path: PathLike,
    title: str = "Confusion matrix",
) -> Path:
    """Annotated heat map of a row-normalised confusion matrix (rows = true class).

    Colours span the fixed range [0, 1] so that two matrices can be compared by eye; each cell
    shows its value with two decimals, in white on dark cells.
    """
    cm = np.asarray(confusion_normalized, dtype=np.float64)
    k = len(classes)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix is {cm.shape}, expected ({k}, {k}) for {k} classes")
    side = max(4.0, 0.75 * k + 2.0)  # ~8 classes -> 8 in: the two-decimal labels stay legible
    fig = _new_figure(side + 1.0, side)
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fontsize = 10 if k <= 8 else 8
    for i in range(k):
        for j in range(k):
            v = cm[i, j]
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if v > 0.5 else "black")  # fmt: skip
    return _save(fig, path)


def _as_series(results: Union[SweepRows, Mapping[str, SweepRows]]) -> dict[str, list[Mapping[str, Any]]]:
    if isinstance(results, Mapping):
        return {str(name): sorted(rows, key=lambda r: r["size"]) for name, rows in results.items()}
    return {"": sorted(results, key=lambda r: r["size"])}


def plot_sweep(
    results: Union[SweepRows, Mapping[str, SweepRows]],
    path: PathLike,
    title: str = "Accuracy against face size",
    metrics: Optional[Sequence[tuple[str, str]]] = None,
) -> Path:
    """Accuracy (left) and macro F1 (right, when present) against face size in pixels.

    ``results`` is one sweep (the list :func:`lrfer.evaluate.sweep.resolution_sweep` returns) or
    ``{model name: sweep}`` to compare models as one line each. The x axis is logarithmic (base 2)
    because sizes are roughly geometric (8, 12, 16, 24, 32, 48) and ticks sit at the sizes.
    ``metrics``: other fractions of the rows to plot instead, ``[(key, axis label), ...]``, one
    panel each; a row whose value is ``None`` (not measured) leaves a gap in its line.
    """
    series = _as_series(results)
    if not any(series.values()):
        raise ValueError("plot_sweep got no sweep results")
    all_rows = [r for rows in series.values() for r in rows]
    if metrics is None:
        metrics = [("accuracy", "accuracy")]
        if all(r.get("macro_f1") is not None for r in all_rows):
            metrics.append(("macro_f1", "macro F1"))
    sizes = sorted({int(r["size"]) for r in all_rows})
    single = len(series) == 1

    fig = _new_figure(5.0 * len(metrics), 4.2)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, (key, label) in zip(axes, metrics):
        for name, rows in series.items():
            xs = [r["size"] for r in rows]
            ys = [math.nan if r.get(key) is None else r[key] for r in rows]
            ax.plot(xs, ys, marker="o", label=name or None)
            if single:  # one line: print the values, the figure is then a table too
                for x, y in zip(xs, ys):
                    if math.isnan(y):
                        continue
                    ax.annotate(f"{100 * y:.1f}", (x, y), textcoords="offset points", xytext=(0, 6),
                                ha="center", fontsize=8)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, labels=[str(s) for s in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        if len(sizes) > 1:
            ax.set_xlim(sizes[0] / 1.15, sizes[-1] * 1.15)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        ax.margins(y=0.12)  # head room for the value labels above the points
        ax.set_xlabel("face size (px)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if not single:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def plot_risk_coverage(points: Sequence[Mapping[str, float]], path: PathLike, title: str = "Accuracy against coverage") -> Path:
    """Accuracy of the faces answered against the share answered (``points``: ``{coverage,
    accuracy}``), the least confident faces left out first; the dashed line is the accuracy when
    every face is answered, what a confidence that ranks nothing would give at every coverage."""
    if not points:
        raise ValueError("plot_risk_coverage got no points")
    pts = sorted(points, key=lambda r: r["coverage"])
    fig = _new_figure(5.0, 4.2)
    ax = fig.subplots()
    ax.plot([p["coverage"] for p in pts], [p["accuracy"] for p in pts], label="answered faces")
    ax.axhline(pts[-1]["accuracy"], linestyle="--", color="grey", label="all faces answered")
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("coverage (share of faces answered)")
    ax.set_ylabel("accuracy of the faces answered")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)  # model and set names are long; the figure is narrow
    return _save(fig, path)


_SCORE_SUFFIXES = ("acc", "accuracy", "f1")


def _curve(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epoch, value) pairs of the rows that have a finite ``key`` (val may not run every epoch)."""
    xs, ys = [], []
    for i, row in enumerate(rows):
        v = row.get(key)
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
            continue
        xs.append(row.get("epoch", i + 1))
        ys.append(float(v))
    return xs, ys


def plot_training_curves(
    metrics_rows: Sequence[Mapping[str, Any]],
    path: PathLike,
    title: Optional[str] = None,
) -> Path:
    """Loss and accuracy per epoch (and the learning rate, when the rows have ``lr``).

    Rows are per-epoch dicts like ``{epoch, train_loss, train_acc, val_loss, val_acc, lr}``;
    every key ending in ``loss`` goes to the loss panel and every key ending in ``acc``,
    ``accuracy`` or ``f1`` to the score panel, so extra metrics (``val_macro_f1``) show up too.
    """
    rows = list(metrics_rows)
    if not rows:
        raise ValueError("plot_training_curves got no rows")
    keys = list(dict.fromkeys(k for row in rows for k in row))  # first-seen order
    loss_keys = [k for k in keys if k.endswith("loss")]
    score_keys = [k for k in keys if k.endswith(_SCORE_SUFFIXES)]
    panels: list[tuple[str, list[str]]] = [("loss", loss_keys), ("accuracy", score_keys)]
    if "lr" in keys:
        panels.append(("learning rate", ["lr"]))

    fig = _new_figure(4.6 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, panel_keys) in zip(axes, panels):
        for key in panel_keys:
            xs, ys = _curve(rows, key)
            if xs:
                # markers only while they stay readable; decided per figure so train/val lines match
                ax.plot(xs, ys, marker="o" if len(rows) <= 30 else None, markersize=3, label=key)
        if label == "accuracy" and all(0 <= v <= 1 for k in panel_keys for v in _curve(rows, k)[1]):
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
        if label == "learning rate" and all(v > 0 for v in _curve(rows, "lr")[1]):
            ax.set_yscale("log")  # schedules (cosine, step) span decades
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if len(ax.get_legend_handles_labels()[0]) > 1:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
