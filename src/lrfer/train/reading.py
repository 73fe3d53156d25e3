"""Readings: another head on a trained network, fitted in seconds on its frozen embeddings, that
reads the same faces by another labelling convention (docs/trust.md, "Readings").

Why a head and not a new network: on the shipped model, fitting only its last layer to FER2013's
labels blended with the FERPlus crowd's votes gives the same trade as fine-tuning every layer on
them for two epochs (calm faces read as neutral against FER2013 accuracy, docs/trust.md section 8):
the embedding already tells a calm face from a distressed one as well as the crowd does; what
differs is where the last layer draws the line. A head is 7 x 257 numbers, so one checkpoint (and
its ONNX export) carries several readings, and a site picks one with ``--reading``.

The fit: multinomial logistic regression (L-BFGS) on the embeddings of the training split's faces
at each of ``sizes`` (degraded as in the resolution sweep, so the head is fitted across the sizes
it will see), targets ``(1 - w) * label + w * votes``, starting from the model's own head and
pulled towards it (``l2``). Then, on the validation split at full size and by the reading's own
labels (the top class of its targets): its temperature, its abstention threshold (the same
coverage as the model's) and its training class shares with EM's bias correction, so that
``--abstain`` and ``--prior`` mean for a reading what they mean for the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ..data.faceset import FaceSet
from ..errors import LrferError
from ..evaluate.abstain import choose_rule
from ..evaluate.bias_calibration import em_calibration_record
from ..evaluate.calibration import fit_temperature
from ..models.checkpoint import add_reading
from ..predict.classifier import FaceClassifier
from ..progress import Progress
from ..runtime.prior import prior_record
from .config import TrainConfig
from .engine import label_targets
from .prior import training_faces

#: The face sizes a reading's head is fitted at: full size and the service's small faces.
DEFAULT_SIZES = (48, 24, 16)


def reading_targets(faces: FaceSet, vote_weight: float) -> torch.Tensor:
    """``(N, K)`` class distributions: each face's label blended with its votes at ``vote_weight``."""
    targets = label_targets(faces, TrainConfig(soft_label_weight=float(vote_weight)).validate())
    return targets if targets.ndim == 2 else nn.functional.one_hot(targets, faces.num_classes).float()


def fit_head(emb: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, *, l2: float = 1e-3, steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """The linear head minimising the cross-entropy of ``targets`` on embeddings ``emb``, from
    (and held near, by ``l2`` times the squared distance) the head ``weight``, ``bias``."""
    x, t = emb.float(), targets.float()
    w0, b0 = weight.detach().float().clone(), bias.detach().float().clone()
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = -(t * torch.log_softmax(x @ w.T + b, 1)).sum(1).mean() + l2 * ((w - w0) ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def _head(clf: FaceClassifier) -> nn.Linear:
    head = getattr(clf.model, "classifier", None)
    if not isinstance(head, nn.Linear):
        raise LrferError(f"'{clf.name}' has no linear classifier head to fit a reading for", "use a model of lrfer's families (the shipped one has one)")
    return head


def fit_reading(
    clf: FaceClassifier,
    data: FaceSet,
    *,
    vote_weight: float,
    train_split: str = "Training",
    val_split: str = "PublicTest",
    sizes: Sequence[int] = DEFAULT_SIZES,
    coverage: Optional[float] = None,
    min_face: Optional[int] = None,
    l2: float = 1e-3,
    mix_extra: bool = True,
    progress: Optional[Progress] = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the head's tensors by their names in the model, the reading's record) for ``clf`` on
    ``data``'s ``train_split`` (its soft labels are the votes: FERPlus's in the FER2013 archive).
    ``mix_extra``: mix in the set the model mixed into its training, as often as it did (when
    ``data`` is what it trained on; ``False`` for a site's own faces). ``coverage`` and
    ``min_face`` of the abstention rule default to those of the model's own rule (0.8 and 0
    without one)."""
    for split in (train_split, val_split):
        if split not in data.splits:
            raise LrferError(f"the data has no split '{split}'", f"choose one of {', '.join(data.splits)}")
    train, source = training_faces(clf, data, train_split) if mix_extra else (clf.prepare(data.select_split(train_split)), f"{data.name} {train_split}")
    val = clf.prepare(data.select_split(val_split))
    head = _head(clf)
    targets = reading_targets(train, vote_weight)
    emb = torch.cat([clf.embed(train.images, degrade_to=s, progress=progress) for s in sizes])
    weight, bias = fit_head(emb, targets.repeat(len(sizes), 1), head.weight, head.bias, l2=l2)

    val_emb = clf.embed(val.images, progress=progress)
    logits = val_emb @ weight.T + bias
    labels = reading_targets(val, vote_weight).argmax(1)
    temperature = fit_temperature(logits, labels)
    probs = (logits / temperature).softmax(1).numpy()
    own = clf.checkpoint.spec.get("abstain") or {}
    where = f"{data.name} {val_split}"
    coverage = coverage or ((own.get("chosen") or {}).get("target") or {}).get("coverage") or 0.8
    min_face = int(own.get("min_face", 0)) if min_face is None else min_face
    rule = choose_rule(probs, labels.numpy(), coverage=coverage, min_face=min_face, split=where)
    shares = targets.double().mean(0).numpy()
    prior = prior_record(clf.classes, shares / shares.sum(), f"{source}: the reading's targets (labels blended with votes at {vote_weight})")
    prior["em_calibration"] = em_calibration_record(probs, labels.numpy(), clf.classes, where)
    record = {
        "vote_weight": float(vote_weight), "temperature": temperature, "abstain": rule, "class_prior": prior,
        "fitted": {"data": source, "train_split": train_split, "val_split": val_split, "sizes": [int(s) for s in sizes],
                   "faces": len(train), "l2": l2, "val_accuracy": float((probs.argmax(1) == labels.numpy()).mean()),
                   "labels": f"each face's label blended with its votes (soft labels) at {vote_weight}; validation by the top class of that blend"},
    }  # fmt: skip
    prefix = next(name for name, module in clf.model.named_modules() if module is head)
    return {f"{prefix}.weight": weight, f"{prefix}.bias": bias}, record


def add_fitted_reading(checkpoint: Path, data: FaceSet, name: str, out: Optional[Path] = None, **options: Any) -> tuple[Path, dict[str, Any]]:
    """Fit a reading (:func:`fit_reading`, ``options``) on the checkpoint's own head and store it
    under ``name``; returns (the written path, the record)."""
    clf = FaceClassifier.load(checkpoint, "cpu")  # its own head: a reading is fitted from it
    head, record = fit_reading(clf, data, **options)
    return add_reading(checkpoint, name, head, record, out), record
