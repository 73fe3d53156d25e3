"""FaceSet: the one in-memory form of a face-expression dataset.

Readers turn every foreign format (csv, folders, vote files, npz) into a FaceSet at the edge;
nothing downstream knows where the faces came from. A FaceSet is a handful of aligned arrays:

- ``images``: ``torch.uint8`` tensor ``(N, C, H, W)`` (C = 1 for grayscale, 3 for colour);
- ``labels``: ``torch.int64`` tensor ``(N,)``, indices into ``classes``;
- ``classes``: canonical class names (see :mod:`lrfer.data.labels`), in label order;
- ``split``: numpy string array ``(N,)``, the dataset's own split name per sample
  (``Training``/``PublicTest``/``PrivateTest`` for FER2013, ``train``/``test`` for RAF-DB, ...);
- ``soft_labels``: optional ``float32`` tensor ``(N, len(classes))``, e.g. FERPlus votes
  normalised to sum to 1 (used for probability-mode training and distillation);
- ``groups``: optional numpy array ``(N,)``, the id that must not be split across folds
  (subject for CK+/JAFFE, video for Aff-Wild2);
- ``dup_group``: optional int64 numpy array ``(N,)``, id of the exact-duplicate image group, -1 if
  unique (FER2013 has 568 test rows that repeat a training image);
- ``ids``: optional numpy string array ``(N,)``, where each sample came from (file name or csv row)
  so that an error or a prediction can point back to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import torch

from ..errors import LrferError, closest
from .augment import luma, resize_faces


@dataclass
class FaceSet:
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    split: np.ndarray
    soft_labels: Optional[torch.Tensor] = None
    groups: Optional[np.ndarray] = None
    dup_group: Optional[np.ndarray] = None
    ids: Optional[np.ndarray] = None
    name: str = "faces"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"FaceSet.images must be uint8 (N,C,H,W), got {self.images.dtype} {tuple(self.images.shape)}")
        self.classes = tuple(self.classes)
        self.split = np.asarray(self.split)
        for name in ("labels", "split", "soft_labels", "groups", "dup_group", "ids"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"FaceSet.{name} has {len(value)} rows, images have {n}")

    # ----------------------------------------------------------------- shape
    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in order of first appearance."""
        _, first = np.unique(self.split, return_index=True)
        return tuple(str(self.split[i]) for i in sorted(first))

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels.numpy(), minlength=self.num_classes)

    # ------------------------------------------------------------- selection
    def subset(self, index) -> "FaceSet":
        """Rows selected by a boolean mask or an index array (numpy or torch)."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        t = torch.from_numpy(index.astype(np.int64))

        def pick(value):
            if value is None:
                return None
            return value[t] if isinstance(value, torch.Tensor) else value[index]

        return replace(
            self,
            images=self.images[t],
            labels=self.labels[t],
            split=self.split[index],
            soft_labels=pick(self.soft_labels),
            groups=pick(self.groups),
            dup_group=pick(self.dup_group),
            ids=pick(self.ids),
        )

    def select_split(self, *names: str) -> "FaceSet":
        """The rows of one or more named splits; an unknown name is a clear error."""
        available = self.splits
        for name in names:
            if name not in available:
                raise LrferError(
                    f"split '{name}' is not in {self.name} (it has {', '.join(available) or 'no splits'})",
                    closest(name, available) if available else "check the dataset path",
                )
        return self.subset(np.isin(self.split, names))

    def with_classes(self, classes: tuple[str, ...]) -> "FaceSet":
        """Re-index labels onto another class list (by canonical name); rows of absent classes are dropped."""
        classes = tuple(classes)
        if classes == self.classes:
            return self
        missing = [c for c in self.classes if c not in classes]
        lookup = torch.tensor([classes.index(c) if c in classes else -1 for c in self.classes], dtype=torch.int64)
        new_labels = lookup[self.labels]
        keep = (new_labels >= 0).numpy()
        out = self.subset(keep)
        soft = None
        if out.soft_labels is not None:
            soft = torch.zeros(len(out), len(classes), dtype=out.soft_labels.dtype)
            for i, c in enumerate(self.classes):
                if c in classes:
                    soft[:, classes.index(c)] = out.soft_labels[:, i]
        out = replace(out, labels=new_labels[torch.from_numpy(keep)], classes=classes, soft_labels=soft)
        if missing:
            out.meta = {**out.meta, "dropped_classes": missing}
        return out

    def to_grayscale(self) -> "FaceSet":
        """Luma (ITU-R 601) of colour images; grayscale sets are returned as they are."""
        if self.in_chans == 1:
            return self
        return replace(self, images=luma(self.images))

    def resized(self, size: int) -> "FaceSet":
        """Images resized to ``size`` x ``size`` by :func:`~lrfer.data.augment.resize_faces`, the
        resize inference uses (bilinear, antialiased when shrinking)."""
        if self.image_size == (size, size):
            return self

        chunks = []
        for start in range(0, len(self), 4096):  # bounded memory for large sets
            x = resize_faces(self.images[start : start + 4096].float(), (size, size))
            chunks.append(x.round_().clamp_(0, 255).to(torch.uint8))
        return replace(self, images=torch.cat(chunks) if chunks else self.images[:, :, :size, :size])

    def describe(self) -> dict:
        """A JSON-able summary (used by ``lrfer data info``)."""
        per_split = {}
        for s in self.splits:
            mask = torch.from_numpy(self.split == s)
            counts = np.bincount(self.labels[mask].numpy(), minlength=self.num_classes)
            per_split[s] = {"n": int(mask.sum()), **{c: int(k) for c, k in zip(self.classes, counts)}}
        return {
            "name": self.name,
            "n": len(self),
            "image_size": list(self.image_size),
            "channels": self.in_chans,
            "classes": list(self.classes),
            "splits": per_split,
            "soft_labels": self.soft_labels is not None,
            "groups": None if self.groups is None else int(len(np.unique(self.groups))),
            "duplicate_rows": None if self.dup_group is None else int((self.dup_group >= 0).sum()),
            **self.meta,
        }
