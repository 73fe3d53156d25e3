"""Resolution sweep: how accuracy falls as faces get smaller.

Each size ``s`` runs the whole set through :func:`lrfer.data.augment.degrade` (area down to ``s``
px, back up to the model's input) and the model, so a sweep point means "the model seeing faces
captured at ``s`` pixels". Training's multi-resolution augmentation and the benchmarks use the
same function, so their numbers are comparable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import torch
from torch import nn

from ..data.faceset import FaceSet
from ..errors import LrferError
from ..progress import Progress, report
from .metrics import classification_report
from .predict import TTA, Size, predict_proba, size_hw

DEFAULT_SIZES: tuple[int, ...] = (8, 12, 16, 24, 32, 48)


def native_size(faceset: FaceSet) -> int:
    """The faces' own size (longer side, px): the largest size a sweep can show them at."""
    return max(faceset.image_size)


def resolution_sweep(
    model: nn.Module,
    faceset: FaceSet,
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    batch_size: int = 512,
    device: Optional[Union[str, torch.device]] = None,
    tta: TTA = "none",
    crop: Optional[Size] = None,
    input_size: Optional[Size] = None,
    degrade_mode: str = "bilinear",
    progress: Optional[Progress] = None,
) -> list[dict[str, Any]]:
    """Accuracy and macro F1 of ``model`` on ``faceset`` degraded to each of ``sizes`` pixels.

    Returns one ``{"size", "accuracy", "macro_f1", "n"}`` dict per size, smallest first.

    Sizes are in the faces' own pixels. Sizes above the faces' native size are **skipped** (left
    out of the result), since a face cannot be shown at more pixels than it has; a sweep on 48 px
    FER2013 with sizes up to 64 therefore stops at 48. At sizes at or above the model's input
    (``input_size``) the faces are only resized to that input, so a 32 px model swept on 48 px
    faces reports the same accuracy at 32 and 48 px (``bench/suite.py`` follows the same rule).

    The model's outputs are taken to be in ``faceset.classes`` order; map the set first (e.g.
    ``faceset.with_classes(model_classes)``) when they differ. The other arguments are those of
    :func:`lrfer.evaluate.predict.predict_proba`.
    """
    native = native_size(faceset)
    # Degradation happens after the resize to the model's input: below that input it simulates the
    # smaller capture; at or above it there is nothing to remove.
    limit = min(native, max(size_hw(input_size))) if input_size is not None else native
    wanted = sorted({int(s) for s in sizes})
    if any(s < 1 for s in wanted):
        raise LrferError(f"sweep sizes must be positive, got {wanted}", "use sizes such as 8,12,16,24,32,48")
    kept = [s for s in wanted if s <= native]
    if not kept:
        raise LrferError(
            f"every sweep size ({', '.join(map(str, wanted))}) is above the faces' native {native} px",
            f"use sizes up to {native}",
        )
    labels = faceset.labels
    results: list[dict[str, Any]] = []
    for i, size in enumerate(kept):
        probs = predict_proba(
            model,
            faceset.images,
            batch_size=batch_size,
            device=device,
            tta=tta,
            crop=crop,
            input_size=input_size,
            degrade_to=None if size >= limit else size,
            degrade_mode=degrade_mode,
            progress=progress,
            task=f"sweep {size}px",
        )
        if probs.shape[1] != faceset.num_classes:
            raise LrferError(
                f"the model predicts {probs.shape[1]} classes, {faceset.name} has {faceset.num_classes}",
                "map the faces onto the model's classes with FaceSet.with_classes(...)",
            )
        rep = classification_report(labels, probs.argmax(1), faceset.classes)
        row = {"size": size, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n": rep["n"]}
        results.append(row)
        report(progress, "sweep", i + 1, len(kept), size=size, accuracy=row["accuracy"], macro_f1=row["macro_f1"])
    return results
