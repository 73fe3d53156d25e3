"""``.npz`` archives: the shared FER2013 and CK+48 archives, and any archive with ``images``,
``labels`` and ``class_names``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ...errors import LrferError
from ...progress import Progress
from ..faceset import FaceSet
from ..labels import canonical_name
from ._common import PathLike, existing, finish, open_npz, require_keys, same_rows, source
from .ferplus import FERPLUS_COLUMNS, fer2013_images, ferplus_faceset, ferplus_votes, votes_as_soft_labels


def _gray_or_color(images: np.ndarray) -> torch.Tensor:
    """(N,H,W) or (N,H,W,C) or (N,C,H,W) uint8 array -> (N,C,H,W) tensor."""
    if images.ndim == 3:
        return torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1)
    if images.ndim == 4:
        if images.shape[1] in (1, 3):
            return torch.from_numpy(np.ascontiguousarray(images))
        if images.shape[3] in (1, 3):
            return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    raise ValueError(f"images of shape {images.shape} are not (N,H,W), (N,H,W,C) or (N,C,H,W) with C in 1, 3")


def npz(
    path: PathLike,
    *,
    labels: Optional[str] = None,
    mode: str = "majority",
    ties: str = "drop",
    min_votes: int = 1,
    progress: Optional[Progress] = None,
) -> FaceSet:
    """The ``.npz`` archives of ``shared/data`` and any npz with ``images``, ``labels``, ``class_names``.

    Recognised by their arrays: ``row_index``+``usage`` is the FER2013 archive (split from ``usage``,
    ``dup_group`` from ``dup_group_id``, ids ``fer2013.csv:row K``); ``labels="ferplus"`` switches it
    to its FERPlus votes (8 classes, ``mode``/``ties``/``min_votes`` as in :func:`ferplus_labels`).
    ``subject`` is the CK+48 archive (groups = subject, ids = file name, split ``"all"``). A generic
    archive may add ``split`` or ``usage``, ``groups``, ``ids``, ``dup_group`` and ``soft_labels``;
    the FER2013 archive's ``soft_labels`` are its FERPlus votes over its own 7 classes
    (:func:`votes_as_soft_labels`), for training with ``soft_label_weight``. ``labels`` defaults
    to the archive's own labels (``"fer2013"`` is accepted as a synonym).
    """
    del progress  # an npz loads in one read; nothing to report
    p = existing(path)
    with open_npz(p) as z:
        keys = set(z.files)
        if labels not in (None, "fer2013", "native", "ferplus"):
            raise LrferError(f"unknown labels='{labels}' for an npz archive",
                             "use labels='ferplus' for FERPlus votes, or leave it out for the archive's labels")
        if "ferplus_columns" in keys:
            columns = tuple(str(c) for c in z.column("ferplus_columns", str))
            if columns != FERPLUS_COLUMNS:
                raise LrferError(f"{p}: ferplus_columns are {', '.join(columns)}",
                                 f"expected {', '.join(FERPLUS_COLUMNS)} (fer2013new.csv order)")
        if labels == "ferplus":
            require_keys(p, z, ("images", "usage", "row_index", "ferplus_votes", "ferplus_columns"))
            images = fer2013_images(p, z)
            votes = ferplus_votes(p, z, len(images))
            split, row_index = z.column("usage", str), z.column("row_index", np.int64)
            dup_group = z.column("dup_group_id", np.int64) if "dup_group_id" in keys else None
            same_rows(p, len(images), usage=split, row_index=row_index, dup_group_id=dup_group)
            return ferplus_faceset(
                path=p, fmt="npz", source_opts={"labels": "ferplus"}, images=images, votes=votes,
                split=split, row_index=row_index, dup_group=dup_group, mode=mode, ties=ties, min_votes=min_votes,
            )
        require_keys(p, z, ("images", "labels", "class_names"))
        images = _archive_images(p, z["images"])
        y = z.column("labels", np.int64)
        classes = _archive_classes(p, [str(c) for c in z.column("class_names", str)], y)
        n = len(y)
        split = next((z.column(k, str) for k in ("split", "usage") if k in keys), np.full(n, "all"))
        groups = next((z.column(k, str) for k in ("groups", "subject") if k in keys), None)
        dup = next((z.column(k, np.int64) for k in ("dup_group", "dup_group_id") if k in keys), None)
        soft = torch.from_numpy(_soft_labels(p, z.column("soft_labels", np.float32, ndim=2), len(classes))) if "soft_labels" in keys else None
        if soft is None and "ferplus_votes" in keys:
            soft = torch.from_numpy(votes_as_soft_labels(ferplus_votes(p, z, n), classes, y))
        if "row_index" in keys:
            ids = np.char.add("fer2013.csv:row ", z.column("row_index", np.int64).astype(str))
            name = "fer2013"
        else:
            ids = next((z.column(k, str) for k in ("ids", "filename") if k in keys), None)
            name = "ckplus" if "subject" in keys else p.stem
        for key, value in (("split", split), ("groups", groups), ("ids", ids), ("dup_group", dup), ("soft_labels", soft)):
            if value is not None and len(value) != n:
                raise LrferError(f"{p}: {key} has {len(value)} rows, labels have {n}", "all arrays need one row per image")
        if len(images) != n:
            raise LrferError(f"{p}: images has {len(images)} rows, labels have {n}", "all arrays need one row per image")
        return finish(
            path=p, name=name, source=source("npz", p, labels=labels), images=images, labels=y, classes=classes,
            split=split, groups=groups, ids=ids, dup_group=dup, soft_labels=soft,
        )




def _archive_images(p: Path, images: np.ndarray) -> torch.Tensor:
    """An archive's uint8 images as (N,C,H,W), or an LrferError saying how to store them."""
    if images.dtype != np.uint8:
        raise LrferError(f"{p}: images are {images.dtype}, not uint8",
                         "store pixels as uint8 0-255 (np.clip(x, 0, 255).astype(np.uint8))")
    try:
        return _gray_or_color(images)
    except ValueError as err:
        raise LrferError(f"{p}: {err}", "store images as (N,H,W) grayscale or (N,H,W,3) colour") from None


def _soft_labels(p: Path, soft: np.ndarray, k: int) -> np.ndarray:
    """An archive's soft labels: one finite row of ``k`` class weights per image."""
    if soft.shape[1] != k or not np.isfinite(soft).all():
        raise LrferError(f"{p}: soft_labels of shape {soft.shape} are not finite rows of {k} class weights",
                         "save soft_labels as (N, len(class_names)) float probabilities")
    return soft


def _archive_classes(p: Path, native: list[str], y: np.ndarray) -> tuple[str, ...]:
    """An archive's ``class_names`` as canonical names, checked against its labels."""
    try:
        classes = tuple(canonical_name(c) for c in native)
    except LrferError as err:
        raise LrferError(f"{p}: class_names: {err.what}", err.hint) from None
    if len(set(classes)) != len(classes):
        raise LrferError(f"{p}: class_names {', '.join(native)} name one class twice",
                         "give each class once")
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        bad = int(np.flatnonzero((y < 0) | (y >= len(classes)))[0])
        raise LrferError(f"{p}: labels[{bad}] = {y[bad]} is not an index into the {len(classes)} class_names",
                         "labels must be 0..len(class_names)-1")
    return classes
