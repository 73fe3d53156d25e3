"""Training the head of a :class:`~lrfer.predict.ensemble.FeatureFusionEnsemble` (after Liu, Zhang & Xin, 2019).

The members stay frozen: their pre-logit embeddings are computed once, batched, and the head (a
linear layer or a one-hidden-layer MLP on the standardised concatenation) is trained on them with
Adam. Like every trainer here, epoch ``k`` is seeded by ``(seed, k)`` alone
(:mod:`lrfer.train.run`); the caller's global RNG is left as it was. The ensemble keeps inference,
``save`` and ``load``; this module only fits.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..data.faceset import FaceSet
from ..errors import LrferError
from ..predict.ensemble import FeatureFusionEnsemble, FusionHead
from ..progress import Progress, report
from .run import epoch_order, seed_epoch


def _features(ensemble: FeatureFusionEnsemble, faces: FaceSet, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(concatenated member embeddings, labels) of ``faces``, on the ensemble's device."""
    return ensemble.features(faces, batch_size=batch_size).to(ensemble.device), faces.labels.to(ensemble.device)


def _new_head(ensemble: FeatureFusionEnsemble, feats: torch.Tensor, seed: int) -> FusionHead:
    """A head initialised from ``seed``, standardising with the training features' mean and std."""
    torch.manual_seed(seed)
    head = FusionHead(ensemble.num_features, len(ensemble.classes), ensemble.hidden, ensemble.dropout).to(ensemble.device)
    head.feat_mean.copy_(feats.mean(0))
    head.feat_std.copy_(feats.std(0, unbiased=False).clamp_min(1e-6) if len(feats) > 1 else torch.ones_like(feats[0]))
    return head


def _train_epoch(head: FusionHead, opt: torch.optim.Optimizer, feats: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, epoch: int) -> dict:
    """One epoch of cross-entropy on the frozen features: its metrics row."""
    head.train()
    seed_epoch(seed, epoch)  # dropout's draws
    order = epoch_order(seed, epoch, len(feats)).to(feats.device)
    loss_sum, correct = 0.0, 0
    for start in range(0, len(feats), batch_size):
        idx = order[start : start + batch_size]
        logits = head(feats[idx])
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == labels[idx]).sum())
    return {"epoch": epoch, "train_loss": loss_sum / len(feats), "train_acc": correct / len(feats)}


@torch.no_grad()
def _accuracy(head: FusionHead, feats: torch.Tensor, labels: torch.Tensor) -> float:
    head.eval()
    return float((head(feats).argmax(1) == labels).float().mean())


def fit_fusion(
    ensemble: FeatureFusionEnsemble,
    train_faces: FaceSet,
    val_faces: Optional[FaceSet] = None,
    *,
    epochs: int = 50,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 256,
    seed: int = 0,
    feature_batch_size: int = 256,
    progress: Optional[Progress] = None,
) -> list[dict]:
    """Train ``ensemble``'s fusion head with Adam on the members' frozen features; returns the per-epoch history.

    Features are computed once. With ``val_faces`` the head of the best validation accuracy is
    kept; otherwise the last one. The ensemble is fitted in place (``ensemble.head``,
    ``ensemble.history``, ready to ``predict_proba`` and ``save``).
    """
    train = train_faces.with_classes(ensemble.classes)
    if len(train) == 0:
        raise LrferError("no training faces of the ensemble's classes", f"the members know {', '.join(ensemble.classes)}")
    feats, labels = _features(ensemble, train, feature_batch_size)
    val = None
    if val_faces is not None and len(v := val_faces.with_classes(ensemble.classes)):
        val = _features(ensemble, v, feature_batch_size)
    history: list[dict] = []
    best_acc, best_state = -1.0, None
    device = torch.device(ensemble.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the seeding below is the fit's own
        head = _new_head(ensemble, feats, seed)
        opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
        for epoch in range(1, epochs + 1):
            row = _train_epoch(head, opt, feats, labels, max(1, min(batch_size, len(feats))), seed, epoch)
            if val is not None:
                row["val_acc"] = _accuracy(head, *val)
                if row["val_acc"] > best_acc:
                    best_acc, best_state = row["val_acc"], {k: t.detach().clone() for k, t in head.state_dict().items()}
            history.append(row)
            report(progress, "fusion", epoch, epochs, **row)
    if best_state is not None:
        head.load_state_dict(best_state)
    ensemble.head, ensemble.history, ensemble.fitted = head.eval(), history, True
    return history
