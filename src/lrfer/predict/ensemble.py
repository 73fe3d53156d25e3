"""Ensembles of trained checkpoints (after Liu, Zhang & Xin, 2019).

An ensemble is not one network, so it is not in the model registry: it combines any list of lrfer
checkpoints, each loaded as a :class:`~lrfer.predict.classifier.FaceClassifier` and fed the way it was
trained (its own channels, input size and centre crop), so members of different architectures and
resolutions (a 48 px grey CNN beside a 112 px RGB SE-ResNet) combine without any common
preprocessing. Members must share the class list (order may differ: columns are aligned on the
first member's order); a member with other classes is an :class:`~lrfer.errors.LrferError`.

Two combinations:

- :class:`ProbabilityEnsemble`: the (weighted) mean of the members' class probabilities;
- :class:`FeatureFusionEnsemble`: the paper's fusion: the members are frozen, their pre-logit
  embeddings (``forward_head(..., pre_logits=True)``) are concatenated, and a linear classifier (or a
  one-hidden-layer MLP) is trained on them with Adam (:func:`lrfer.train.fusion.fit_fusion`). The
  embeddings are computed once, batched, under ``torch.inference_mode``, then standardised (training
  mean and std, stored with the head) so that members with differently scaled features weigh alike
  at the start. The head is saved as a
  safetensors file whose metadata (JSON) lists the member checkpoints, so :meth:`FeatureFusionEnsemble.load`
  rebuilds the whole ensemble from that one file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from ..data.augment import luma, resize_faces
from ..data.faceset import FaceSet
from ..data.transforms import as_tensor, inference_setup, make_views, match_channels, size_hw
from ..errors import LrferError
from ..models.checkpoint import read_safetensors, write_safetensors
from .classifier import FaceClassifier

Member = Union[FaceClassifier, str, os.PathLike]
Images = Union[torch.Tensor, np.ndarray]
FUSION_FORMAT = "lrfer-fusion/1"
_META_KEY = "lrfer_fusion"


# ---------------------------------------------------------------------------- members
def _load_members(members: Sequence[Member], device) -> list[FaceClassifier]:
    if len(members) == 0:
        raise LrferError("an ensemble needs at least one member", "pass checkpoint paths or FaceClassifier objects")
    return [m if isinstance(m, FaceClassifier) else FaceClassifier.load(m, device=device) for m in members]


def _aligned_classes(members: Sequence[FaceClassifier]) -> tuple[tuple[str, ...], list[torch.Tensor]]:
    """The first member's class list, and per member the column order that maps onto it."""
    classes = tuple(members[0].classes)
    columns = []
    for m in members:
        if sorted(m.classes) != sorted(classes) or len(set(m.classes)) != len(m.classes):
            raise LrferError(
                f"ensemble members disagree on the classes: {members[0].checkpoint.path} has {', '.join(classes)}; "
                f"{m.checkpoint.path} has {', '.join(m.classes)}",
                "combine checkpoints trained on the same classes",
            )
        columns.append(torch.tensor([m.classes.index(c) for c in classes]))
    return classes, columns


def _member_images(member: FaceClassifier, images: Images) -> Images:
    """Colour faces for a grey member become luma (as FaceSet.to_grayscale); the member does the rest."""
    x = as_tensor(images)
    if member.in_chans == 1 and x.shape[1] == 3:
        x = luma(x)
    return x


def _faces_images(faces: Union[FaceSet, Images]) -> Images:
    return faces.images if isinstance(faces, FaceSet) else faces


@torch.no_grad()
def member_embeddings(member: FaceClassifier, images: Images, *, tta: str = "none", batch_size: int = 256) -> torch.Tensor:
    """Pre-logit embeddings ``(N, num_features)`` (float32, CPU) of one member, its preprocessing applied.

    The same steps as :func:`lrfer.data.transforms.predict_proba` (scale, channels, resize to the
    member's size, centre crop / TTA views), with the views' embeddings averaged.
    """
    model, device = member.model, member.device
    x_all = as_tensor(_member_images(member, images))
    target = size_hw(member.image_size)
    out: list[torch.Tensor] = []
    with inference_setup(model, device), torch.inference_mode():
        for start in range(0, len(x_all), batch_size):
            xb = x_all[start : start + batch_size].to(device)
            xb = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb.float()
            xb = match_channels(xb, model)
            xb = resize_faces(xb, target)
            views = make_views(xb, tta, member.crop)
            batch = torch.cat(views) if len(views) > 1 else views[0]
            emb = model.forward_head(model.forward_features(model.normalize(batch)), pre_logits=True).float()
            out.append(emb.reshape(len(views), len(xb), -1).mean(0).cpu())
    if not out:
        return torch.empty(0, member.model.num_features)
    return torch.cat(out).clone()  # a normal tensor (not an inference tensor): usable in training


# ---------------------------------------------------------------------------- probability averaging
class ProbabilityEnsemble:
    """Weighted mean of the members' probabilities; ``weights=None`` is the plain mean."""

    def __init__(self, members: Sequence[Member], weights: Optional[Sequence[float]] = None, device=None):
        self.members = _load_members(members, device)
        self.classes, self._columns = _aligned_classes(self.members)
        if weights is None:
            weights = [1.0] * len(self.members)
        w = torch.tensor([float(v) for v in weights], dtype=torch.float32)
        if len(w) != len(self.members) or (w < 0).any() or float(w.sum()) <= 0:
            raise LrferError(
                f"ensemble weights {list(weights)} do not fit {len(self.members)} members",
                "give one non-negative weight per member, not all zero",
            )
        self.weights = w / w.sum()

    def prepare(self, faces: FaceSet) -> FaceSet:
        """Labels re-indexed onto the ensemble's classes; the images stay as they are, since each
        member brings them to its own channels and size (as FaceClassifier.prepare does for one)."""
        return faces.with_classes(self.classes)

    def member_probas(self, images: Images, *, tta: str = "none", degrade_to: Optional[int] = None, batch_size: Optional[int] = None) -> list[torch.Tensor]:
        """Each member's probabilities ``(N, K)``, columns in :attr:`classes` order (to score members and ensemble from one pass)."""
        return [member.predict_proba(_member_images(member, images), tta=tta, degrade_to=degrade_to, batch_size=batch_size)[:, cols]
                for member, cols in zip(self.members, self._columns)]  # fmt: skip

    def combine(self, probas: Sequence[torch.Tensor]) -> torch.Tensor:
        """The weighted mean of :meth:`member_probas`' output."""
        return sum(w * p for w, p in zip(self.weights.tolist(), probas))

    def predict_proba(self, images: Images, *, tta: str = "none", degrade_to: Optional[int] = None, batch_size: Optional[int] = None) -> torch.Tensor:
        """Probabilities ``(N, K)`` (columns in :attr:`classes` order) for uint8 faces ``(N, C, H, W)`` of any size."""
        return self.combine(self.member_probas(images, tta=tta, degrade_to=degrade_to, batch_size=batch_size))


# ---------------------------------------------------------------------------- feature fusion
class FusionHead(nn.Module):
    """Standardise the concatenated embeddings, then a linear layer (``hidden=0``) or a small MLP."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        self.register_buffer("feat_mean", torch.zeros(in_features))
        self.register_buffer("feat_std", torch.ones(in_features))
        if hidden > 0:
            self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes))
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net((f - self.feat_mean) / self.feat_std)


class FeatureFusionEnsemble:
    """Frozen members' concatenated pre-logit embeddings + a trained classifier.

    ``hidden=0`` is a linear classifier, ``hidden>0`` a one-hidden-layer MLP with ``dropout``.
    ``tta`` ("none" / "flip" / "tencrop") averages each member's embeddings over its test-time views.
    """

    def __init__(self, members: Sequence[Member], *, hidden: int = 0, dropout: float = 0.0, tta: str = "none", device=None):
        self.members = _load_members(members, device)
        self.classes, self._columns = _aligned_classes(self.members)
        self.dims = [int(m.model.num_features) for m in self.members]
        self.hidden, self.dropout, self.tta = int(hidden), float(dropout), tta
        self.device = self.members[0].device
        self.head = FusionHead(sum(self.dims), len(self.classes), self.hidden, self.dropout).to(self.device)
        self.fitted = False
        self.history: list[dict] = []

    @property
    def num_features(self) -> int:
        return sum(self.dims)

    def features(self, images: Union[FaceSet, Images], *, batch_size: int = 256) -> torch.Tensor:
        """Concatenated embeddings ``(N, sum(dims))`` (float32, CPU, before standardisation)."""
        x = _faces_images(images)
        return torch.cat([member_embeddings(m, x, tta=self.tta, batch_size=batch_size) for m in self.members], dim=1)

    def predict_proba(self, images: Union[FaceSet, Images], *, batch_size: int = 256) -> torch.Tensor:
        """Probabilities ``(N, K)`` (columns in :attr:`classes` order) for faces of any size and channels."""
        if not self.fitted:
            raise LrferError("the fusion head is not trained", "train it with lrfer.train.fusion.fit_fusion(ensemble, train_faces), or FeatureFusionEnsemble.load(path)")
        feats = self.features(images, batch_size=batch_size).to(self.device)
        self.head.eval()
        with torch.no_grad():
            return self.head(feats).softmax(-1).cpu()

    # ------------------------------------------------------------------------ files
    def save(self, path: Union[str, os.PathLike], info: Optional[dict] = None) -> Path:
        """Write the head (safetensors) with the member checkpoints and settings in its metadata."""
        if not self.fitted:
            raise LrferError("the fusion head is not trained", "train it with lrfer.train.fusion.fit_fusion(ensemble, train_faces) before save()")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        members = [Path(m.checkpoint.path).resolve() for m in self.members]
        meta = {
            "format": FUSION_FORMAT,
            "members": [str(p) for p in members],
            "members_relative": [os.path.relpath(p, path.parent.resolve()) for p in members],
            "classes": list(self.classes),
            "dims": self.dims,
            "hidden": self.hidden,
            "dropout": self.dropout,
            "tta": self.tta,
            "history": self.history,
            "info": info or {},
        }
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
        return write_safetensors(path, tensors, _META_KEY, meta)

    @classmethod
    def load(cls, path: Union[str, os.PathLike], device=None) -> "FeatureFusionEnsemble":
        """Rebuild the ensemble (members from the paths in the metadata) and its trained head."""
        path = Path(path)
        hint = "give a file written by FeatureFusionEnsemble.save (or re-fit the fusion head)"
        if not path.is_file():
            raise LrferError(f"no such fusion head file: {path}", hint)
        tensors, meta = read_safetensors(path, _META_KEY, FUSION_FORMAT, "fusion head", hint)
        members = []
        for absolute, relative in zip(meta["members"], meta["members_relative"]):
            candidates = [Path(absolute), path.parent / relative]
            found = next((p for p in candidates if p.is_file()), None)
            if found is None:
                raise LrferError(f"{path}: member checkpoint {absolute} is missing", f"put it back (or at {path.parent / relative})")
            members.append(found)
        ens = cls(members, hidden=meta["hidden"], dropout=meta["dropout"], tta=meta["tta"], device=device)
        if ens.dims != list(meta["dims"]) or list(ens.classes) != list(meta["classes"]):
            raise LrferError(
                f"{path}: the member checkpoints changed since the head was trained "
                f"(embedding sizes {ens.dims} vs {meta['dims']}, classes {list(ens.classes)} vs {meta['classes']})",
                "re-fit the fusion head on the current members",
            )
        ens.head.load_state_dict(tensors)
        ens.head.eval()
        ens.history = meta.get("history", [])
        ens.fitted = True
        return ens
