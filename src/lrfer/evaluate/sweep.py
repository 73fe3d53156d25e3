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
from ..data.transforms import TTA, Size, predict_proba, size_hw
from ..errors import LrferError
from ..predict.classifier import FaceClassifier
from ..predict.ensemble import ProbabilityEnsemble
from ..progress import Progress, report
from .metrics import classification_report

DEFAULT_SIZES: tuple[int, ...] = (8, 12, 16, 24, 32, 48)


def native_size(faceset: FaceSet) -> int:
    """The faces' own size (longer side, px): the largest size a sweep can show them at."""
    return max(faceset.image_size)


def sweep_sizes(faceset: FaceSet, sizes: Sequence[int]) -> list[int]:
    """``sizes`` sorted, without those above the faces' native size; an error when none is left."""
    native = native_size(faceset)
    wanted = sorted({int(s) for s in sizes})
    if any(s < 1 for s in wanted):
        raise LrferError(f"sweep sizes must be positive, got {wanted}", "use sizes such as 8,12,16,24,32,48")
    kept = [s for s in wanted if s <= native]
    if not kept:
        raise LrferError(
            f"every sweep size ({', '.join(map(str, wanted))}) is above the faces' native {native} px",
            f"use sizes up to {native}",
        )
    return kept


def _row(size: int, labels, probs: torch.Tensor, classes) -> dict[str, Any]:
    rep = classification_report(labels, probs.argmax(1), classes)
    return {"size": size, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "n": rep["n"]}


def resolution_sweep(
    model: nn.Module,
    faceset: FaceSet,
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    batch_size: Optional[int] = None,
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
    :func:`lrfer.data.transforms.predict_proba`.
    """
    native = native_size(faceset)
    # Degradation happens after the resize to the model's input: below that input it simulates the
    # smaller capture; at or above it there is nothing to remove.
    limit = min(native, max(size_hw(input_size))) if input_size is not None else native
    kept = sweep_sizes(faceset, sizes)
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
        row = _row(size, labels, probs, faceset.classes)
        results.append(row)
        report(progress, "sweep", i + 1, len(kept), size=size, accuracy=row["accuracy"], macro_f1=row["macro_f1"])
    return results


def classifier_sweep(
    clf: FaceClassifier, faces: FaceSet, sizes: Sequence[int] = DEFAULT_SIZES, *, tta: TTA = "none", progress: Optional[Progress] = None
) -> list[dict[str, Any]]:
    """:func:`resolution_sweep` of a loaded checkpoint, fed as it was trained, on faces already
    prepared for it (:meth:`FaceClassifier.prepare`)."""
    return resolution_sweep(
        clf.model, faces, sizes, tta=tta, crop=clf.crop, input_size=clf.image_size, device=clf.device, progress=progress
    )


def ensemble_sweep(
    ensemble: ProbabilityEnsemble,
    faceset: FaceSet,
    sizes: Sequence[int] = DEFAULT_SIZES,
    *,
    tta: TTA = "none",
    batch_size: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> dict[str, list[dict[str, Any]]]:
    """:func:`resolution_sweep` of a :class:`~lrfer.predict.ensemble.ProbabilityEnsemble` and of each member.

    Returns ``{"member0": rows, "member1": rows, ..., "ensemble": rows}`` with rows as
    :func:`resolution_sweep`'s. Each member sees the faces its own way (its input size, crop and
    channels) and each member's probabilities are computed once per size and reused for the
    ensemble, so the sweep costs one pass per member and size. ``faceset`` must be in the
    ensemble's class order (``faceset.with_classes(ensemble.classes)``). As in
    :func:`resolution_sweep`, a size at or above a member's input only resizes the faces to it.
    """
    if tuple(faceset.classes) != tuple(ensemble.classes):
        raise LrferError(
            f"the faces' classes ({', '.join(faceset.classes)}) are not in the ensemble's order ({', '.join(ensemble.classes)})",
            "map them first with FaceSet.with_classes(ensemble.classes)",
        )
    kept = sweep_sizes(faceset, sizes)
    native = native_size(faceset)
    names = [f"member{i}" for i in range(len(ensemble.members))]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in [*names, "ensemble"]}
    for i, size in enumerate(kept):
        probs = ensemble.member_probas(faceset.images, tta=tta, degrade_to=None if size >= native else size, batch_size=batch_size)
        for name, p in [*zip(names, probs), ("ensemble", ensemble.combine(probs))]:
            results[name].append(_row(size, faceset.labels, p, faceset.classes))
        row = results["ensemble"][-1]
        report(progress, "sweep", i + 1, len(kept), size=size, accuracy=row["accuracy"], macro_f1=row["macro_f1"])
    return results
