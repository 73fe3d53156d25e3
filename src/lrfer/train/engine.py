"""The training loop: the whole dataset as tensors on the device, batched augmentation, AMP, EMA,
DDP, atomic per-epoch checkpoints and exact resume.

Why it looks like this (airbench's lessons): a 48x48 dataset is tens of MB as uint8, so it lives on
the training device and each batch is an index into it; augmentation runs on the whole batch there;
no DataLoader workers, no host-device copies per step.

Shape (as timm's train.py): :func:`fit` sets up once, then per epoch :func:`train_one_epoch`,
:func:`validate`, the score and plateau bookkeeping, and :func:`save_epoch`. The run folder, resume
and per-epoch seeding are :mod:`lrfer.train.run`'s, shared with the SR trainers: each epoch
re-seeds the global RNG from (seed, epoch, rank) and draws its order from (seed, epoch), so a run
resumed from the checkpoint of epoch k replays epochs k+1... exactly as the uninterrupted run
would have, without storing RNG states.

Distillation (``cfg.teacher``): a frozen teacher sees each batch as augmented but before the
resolution degradation, the student the degraded version of the same batch; the student learns
from the labels, the teacher's softened logits and (optionally) its pooled features. With
``cfg.distill_offline`` the teacher instead scores the clean training faces once, before they are
resized for the student, and its softened probabilities become part of the targets: one teacher
pass per run instead of one per step, for CPUs.

Distributed: launched under ``torchrun`` (WORLD_SIZE > 1) the same command trains with
DistributedDataParallel (nccl on GPU, gloo on CPU); every rank sees a disjoint shard of the same
epoch order, and rank 0 writes checkpoints and metrics.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.augment import augment_batch, mix_batch
from ..data.faceset import FaceSet
from ..data.readers import load_dataset
from ..data.splits import held_out_subjects, mix_in
from ..data.transforms import predict_proba
from ..device import resolve_device
from ..errors import LrferError
from ..evaluate.metrics import classification_report
from ..evaluate.plots import plot_training_curves
from ..models import create_model
from ..models.checkpoint import Checkpoint, load_weights, model_spec
from ..models.init_weights import load_init_weights
from ..progress import Progress, report
from .config import TrainConfig, channels_last_on, eval_layout
from .ddp import check_ranks_in_sync, check_same_start, process_group
from .distill import Teacher, load_teacher, offline_teacher_targets
from .losses import CenterLoss, class_weights, cross_entropy, distillation_loss, feature_distillation_loss
from .optim import ModelEMA, build_optimizer, freeze_parameters, lr_factor
from .run import Run, epoch_order, seed_epoch


@dataclass
class TrainResult:
    out_dir: Path
    best_path: Path
    last_path: Path
    best_metric: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------- data
def prepare_faces(faces: FaceSet, cfg: TrainConfig) -> FaceSet:
    """Grayscale and size as the config asks: the one place training and evaluation agree on input."""
    if cfg.grayscale:
        faces = faces.to_grayscale()
    return faces.resized(cfg.image_size)


def progressive_size(cfg: TrainConfig, epoch: int) -> int:
    """The face size epoch ``epoch`` (1-based) trains at under ``cfg.progressive_min_size``.

    Linear from the minimum at epoch 1 to the full training size (the crop, or ``image_size``)
    over the first ``progressive_frac`` of the epochs, in steps of 4 px; full size after that.
    """
    full = cfg.augment.crop or cfg.image_size
    if not cfg.progressive_min_size:
        return full
    ramp = max(1, round(cfg.epochs * cfg.progressive_frac))
    if epoch > ramp:
        return full
    size = cfg.progressive_min_size + (epoch - 1) / ramp * (full - cfg.progressive_min_size)
    return min(full, max(cfg.progressive_min_size, 4 * round(size / 4)))


def label_targets(faces: FaceSet, cfg: TrainConfig) -> torch.Tensor:
    """What the labels say: class distributions with ``label_mode = 'soft'`` or a ``soft_label_weight``, else class indices."""
    w = cfg.soft_label_weight
    if cfg.label_mode == "soft" or w:
        if faces.soft_labels is None:
            setting = "label_mode 'soft'" if cfg.label_mode == "soft" else f"soft_label_weight {w}"
            raise LrferError(f"{setting} needs soft labels, and this dataset has none",
                             "use hard labels, or a source with votes (FERPlus, or the FER2013 .npz archive with its FERPlus votes)")
        if cfg.label_mode == "soft":
            return faces.soft_labels
        return (1 - w) * nn.functional.one_hot(faces.labels, faces.num_classes).float() + w * faces.soft_labels
    return faces.labels


def extra_training_faces(cfg: TrainConfig) -> FaceSet:
    """The faces of ``cfg.extra_train`` a run trains on: all but its held-out subjects."""
    extra = load_dataset(cfg.extra_train)
    if not cfg.extra_train_holdout:
        return extra
    if extra.groups is None:
        raise LrferError(f"extra_train {cfg.extra_train} has no subject ids, so no subjects can be held out",
                         "set extra_train_holdout = 0 to train on all of it, or use a set with subjects (CK+, JAFFE)")
    return held_out_subjects(extra, cfg.extra_train_holdout)[0]


def _prepare_data(cfg: TrainConfig, train_set: FaceSet, val_set: Optional[FaceSet], device: torch.device,
                  progress: Optional[Progress]) -> tuple[FaceSet, Optional[FaceSet], Optional[torch.Tensor], float]:  # fmt: skip
    """(training faces, validation faces, offline teacher targets or None, seconds the offline teacher took).

    ``limit_train`` applies before the resize (the same faces, less work), and the offline teacher
    scores the clean faces before they are resized for the student."""
    if cfg.limit_train:
        train_set = train_set.subset(np.arange(min(cfg.limit_train, len(train_set))))
    if cfg.extra_train:
        train_set = mix_in(train_set, extra_training_faces(cfg), cfg.extra_train_repeat)
    offline_targets, teacher_s = None, 0.0  # the offline teacher's pass: part of the run, so it counts against a time budget
    if cfg.teacher and cfg.distill_offline and len(train_set):
        t_teacher = time.perf_counter()
        clean = train_set.to_grayscale() if cfg.grayscale else train_set
        labels = label_targets(clean, cfg)
        base = labels.float() if labels.dtype.is_floating_point else nn.functional.one_hot(labels.long(), clean.num_classes).float()
        offline_targets = offline_teacher_targets(cfg, clean, base, device, progress)
        teacher_s = time.perf_counter() - t_teacher
    train_set = prepare_faces(train_set, cfg)
    if len(train_set) == 0:
        raise LrferError("the training split is empty", f"check --train-split (now '{cfg.train_split}') and the dataset")
    if val_set is not None:
        val_set = prepare_faces(val_set, cfg).with_classes(train_set.classes)
    return train_set, val_set, offline_targets, teacher_s


# ---------------------------------------------------------------------------- setup
class _EmbedAndClassify(nn.Module):
    """What DDP wraps: one forward returning (embedding, logits, features for distillation), so
    centre loss works under DDP and the feature projection's gradients are all-reduced with the
    model's."""

    def __init__(self, model: nn.Module, project: Optional[nn.Module] = None):
        super().__init__()
        self.model = model
        self.project = project

    def forward(self, x):
        emb, logits = self.model.embed_and_classify(x)
        return emb, logits, (self.project(emb) if self.project is not None else emb)


@dataclass
class _Setup:
    """What :func:`fit` builds once and every epoch uses."""

    model: nn.Module
    spec: dict
    step_model: nn.Module  # the model as the steps call it: embeddings too, under DDP / torch.compile
    optimizer: torch.optim.Optimizer
    ema: Optional[ModelEMA]
    aux: list[Any]  # extra losses on the embeddings (centre loss), each with a weight and an after_step
    teacher: Optional[Teacher]
    project: Optional[nn.Module]  # student -> teacher embedding width, for feature distillation
    images: torch.Tensor  # the whole training set on the device, as uint8
    targets: torch.Tensor
    weight: Optional[torch.Tensor]  # class weights of the loss
    nhwc: bool
    amp: Any  # the autocast context of the forward passes
    device: torch.device
    rank: int
    world: int
    batch_size: int
    steps_per_epoch: int

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model


def _build_model(cfg: TrainConfig, train_set: FaceSet, device: torch.device, progress: Optional[Progress]) -> nn.Module:
    """The model to train, seeded by ``cfg.seed``: its stem whitened, pretrained weights loaded and
    parameters frozen as the config asks (a resumed run's checkpoint overrides the weights later)."""
    classes = train_set.classes
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=len(classes), in_chans=train_set.in_chans, **cfg.model_kwargs).to(device)
    if cfg.stem_init == "whiten":  # from the data, before any weights file or resumed checkpoint overrides it
        if not hasattr(model, "whiten_stem"):
            raise LrferError(f"stem_init 'whiten' needs a model with a whitening stem, and '{cfg.model}' has none",
                             "use airnet_fer, or stem_init = 'none'")  # fmt: skip
        sample = train_set.images[:: max(1, len(train_set) // 2048)]  # enough for a 9x9 covariance
        n = model.whiten_stem(sample.to(device).to(torch.float32) / 255)
        report(progress, "stem_init", n, message=f"stem_init whiten: {n} stem filters set from {len(sample)} training faces")
    if cfg.init_weights:  # pretrained weights (e.g. VGGFace2)
        loaded = load_init_weights(model, cfg.init_weights_path, classes=classes)
        message = (f"init_weights {cfg.init_weights}: {len(loaded['matched'])} tensors loaded, "
                   f"{len(loaded['missing'])} left as initialised, {len(loaded['skipped'])} in the file skipped")  # fmt: skip
        report(progress, "init_weights", len(loaded["matched"]), message=message, **loaded)
    if cfg.freeze:
        n = freeze_parameters(model, cfg.freeze)
        report(progress, "freeze", n, message=f"freeze {', '.join(cfg.freeze)}: {n} parameter tensors fixed")
    return model


def _distillation(cfg: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer, train_set: FaceSet,
                  device: torch.device) -> tuple[Optional[Teacher], Optional[nn.Module]]:  # fmt: skip
    """The online teacher (None without one, or with offline distillation) and, when the feature
    term needs one, the projection of the student's embedding to the teacher's width.

    The projection is trained with the student (its parameters join ``optimizer``) and kept in
    the checkpoint's training state, not in the model the checkpoint rebuilds: it only serves the
    loss, and resume needs it to stay exact."""
    if not cfg.teacher or cfg.distill_offline:
        return None, None
    teacher = load_teacher(cfg.teacher_path, train_set.classes, train_set.in_chans, device)
    project: Optional[nn.Module] = None
    if cfg.distill_feature_weight > 0 and teacher.model.num_features != model.num_features:
        project = nn.Linear(model.num_features, teacher.model.num_features).to(device)
        optimizer.add_param_group({"params": [project.weight], "weight_decay": cfg.weight_decay, "lr_mult": 1.0})
        optimizer.add_param_group({"params": [project.bias], "weight_decay": 0.0, "lr_mult": 1.0})
    return teacher, project


def _setup(cfg: TrainConfig, train_set: FaceSet, offline_targets: Optional[torch.Tensor], device: torch.device,
           rank: int, world: int, progress: Optional[Progress]) -> _Setup:  # fmt: skip
    """Model, optimizer, EMA, losses, teacher and the training set on the device, in the order
    that fixes the random initialisations (model, then teacher, then projection)."""
    model = _build_model(cfg, train_set, device, progress)
    nhwc = channels_last_on(cfg, device)
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    spec = model_spec(model, train_set.classes, train_set.in_chans, cfg.image_size, cfg.augment.crop)
    targets = (offline_targets if offline_targets is not None else label_targets(train_set, cfg)).to(device)
    if (cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0) and not targets.dtype.is_floating_point:
        # one-hot for every batch, mixed or not: the soft-target loss equals the hard one on them,
        # and the batches share one code path
        targets = nn.functional.one_hot(targets, train_set.num_classes).float()
    weight = class_weights(train_set.class_counts(), cfg.class_weights)
    optimizer = build_optimizer(model, cfg)
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    aux: list[Any] = [CenterLoss(train_set.num_classes, model.num_features, cfg.center_loss, cfg.center_alpha).to(device)] if cfg.center_loss > 0 else []
    teacher, project = _distillation(cfg, model, optimizer, train_set, device)
    if nhwc and teacher is not None:
        teacher = teacher.to(memory_format=torch.channels_last)
    step_model: nn.Module = _EmbedAndClassify(model, project)
    if world > 1:
        step_model = nn.parallel.DistributedDataParallel(step_model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        step_model = torch.compile(step_model)
    per_rank = len(train_set) // world
    bs = min(cfg.batch_size, per_rank)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (device.type == "cuda" and cfg.amp) else torch.autocast("cpu", enabled=False)
    return _Setup(model, spec, step_model, optimizer, ema, aux, teacher, project, train_set.images.to(device), targets,
                  weight.to(device) if weight is not None else None, nhwc, amp, device, rank, world, bs, max(1, per_rank // bs))  # fmt: skip


@dataclass
class _Standing:
    """Where a run stands between epochs: its best score so far, the plateau schedule and the
    time-budget clock. Saved in ``last.safetensors``' training state, so resume carries it on."""

    # -inf, not -1: without validation data the score is minus the training loss, often below -1
    best_acc: float = -math.inf
    best_epoch: int = 0
    plateau: dict = field(default_factory=lambda: {"scale": 1.0, "best": -math.inf, "bad": 0})
    spent_s: float = 0.0  # the budget's clock: the offline teacher's pass, then the epochs so far
    out_of_time: bool = False

    def state(self) -> dict:
        return {"best_acc": self.best_acc, "best_epoch": self.best_epoch, "plateau": self.plateau, "spent_s": self.spent_s, "out_of_time": self.out_of_time}


def _resume(cfg: TrainConfig, s: _Setup, ckpt: Optional[Checkpoint], teacher_s: float) -> tuple[_Standing, int]:
    """The standing and the first epoch to train: a fresh one, or the one after ``ckpt``'s, with
    the optimizer, EMA, auxiliary losses and projection restored from its training state."""
    if ckpt is None:
        return _Standing(spent_s=teacher_s), 1
    state = ckpt.state
    if s.project is not None and state.get("distill_project") is None:
        raise LrferError(f"{ckpt.path} was written by a run without feature distillation through a projection", "resume with that run's settings, or train into a new --out")
    s.optimizer.load_state_dict(state["optimizer"])
    if s.ema is not None and ckpt.has_ema:
        load_weights(s.ema.module, ckpt, "ema")
        s.ema.updates = state.get("ema_updates", 0)
    for a, a_state in zip(s.aux, state.get("aux", [])):
        a.load_state_dict(a_state)
    if s.project is not None:
        s.project.load_state_dict(state["distill_project"])
    # a resumed run keeps its first pass's time and does not count the repeated teacher pass
    standing = _Standing(state["best_acc"], state["best_epoch"], state["plateau"], state.get("spent_s", 0.0))
    # a run that ended on its time budget has nothing left to do
    return standing, (cfg.epochs + 1 if state.get("out_of_time") else state["epoch"] + 1)


# ---------------------------------------------------------------------------- one epoch
def _batch(cfg: TrainConfig, s: _Setup, idx: torch.Tensor, size: int) -> tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
    """(student input, the teacher's clean view or None, targets) of the training faces ``idx``:
    augmented, resized to the epoch's ``size``, mixed."""
    batch = s.images[idx].float().div_(255)
    if s.teacher is not None:
        x, x_clean = augment_batch(batch, cfg.augment, with_clean=True)
    else:
        x, x_clean = augment_batch(batch, cfg.augment), None
    if size != x.shape[-1]:  # progressive resizing; the teacher keeps its clean full-size view
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    y = s.targets[idx]
    if cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0:  # the teacher's clean view gets the same partners, lambda and box
        views = [x] if x_clean is None else [x, x_clean]
        views, y, _ = mix_batch(views, y, mixup_alpha=cfg.mixup_alpha, cutmix_alpha=cfg.cutmix_alpha, p=cfg.mix_p)
        x, x_clean = views[0], (views[1] if len(views) > 1 else None)
    if s.nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, x_clean, y


def _step(cfg: TrainConfig, s: _Setup, x: torch.Tensor, x_clean: Optional[torch.Tensor], y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimizer step; (loss, the weighted teacher terms inside it, logits), detached."""
    with s.amp:
        emb, logits, feats = s.step_model(x)
    loss = cross_entropy(logits, y, s.weight, cfg.label_smoothing)
    distill = torch.zeros((), device=s.device)
    if s.teacher is not None:
        with s.amp:
            t_emb, t_logits = s.teacher(x_clean)
        if cfg.distill_weight > 0:
            distill = distill + cfg.distill_weight * distillation_loss(logits, t_logits, cfg.distill_temperature)
        if cfg.distill_feature_weight > 0:
            distill = distill + cfg.distill_feature_weight * feature_distillation_loss(feats, t_emb)
        loss = loss + distill
    for a in s.aux:
        loss = loss + a.weight * a(emb, logits, y)
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        nn.utils.clip_grad_norm_([p for g in s.optimizer.param_groups for p in g["params"]], cfg.grad_clip)
    s.optimizer.step()
    for a in s.aux:
        a.after_step()
    if s.ema is not None:
        s.ema.update(s.model)
    return loss.detach(), distill.detach(), logits.detach()


def train_one_epoch(cfg: TrainConfig, s: _Setup, epoch: int, standing: _Standing, progress: Optional[Progress] = None) -> dict:
    """Train epoch ``epoch`` (seeded by ``(seed, epoch)``, this rank's shard of its order); stops
    early when the time budget runs out. Returns the epoch's sums and clock readings."""
    s.model.train()
    seed_epoch(cfg.seed, epoch, s.rank)
    order = epoch_order(cfg.seed, epoch, len(s.images)).to(s.device)
    steps, bs = s.steps_per_epoch, s.batch_size
    shard = order[s.rank :: s.world][: steps * bs].view(steps, bs)
    loss_sum, distill_sum, correct = (torch.zeros((), device=s.device) for _ in range(3))
    size = progressive_size(cfg, epoch)
    budget_s = cfg.time_budget_minutes * 60
    t0 = time.perf_counter()
    done, scale = 0, 1.0
    for i in range(steps):
        time_frac = (standing.spent_s + time.perf_counter() - t0) / budget_s if budget_s else 0.0
        if time_frac >= 1 and i > 0:
            break
        scale = lr_factor(cfg, (epoch - 1) * steps + i, steps, standing.plateau["scale"], time_frac)
        for g in s.optimizer.param_groups:
            g["lr"] = cfg.lr * g["lr_mult"] * scale
        x, x_clean, y = _batch(cfg, s, shard[i], size)
        loss, distill, logits = _step(cfg, s, x, x_clean, y)
        loss_sum += loss
        distill_sum += distill
        correct += (logits.argmax(1) == (y.argmax(1) if y.dtype.is_floating_point else y)).sum()
        done = i + 1
        if done % 20 == 0 or done == steps:
            report(progress, f"epoch {epoch}/{cfg.epochs}", done, steps)
    elapsed = time.perf_counter() - t0
    return {"t0": t0, "elapsed": elapsed, "done": done, "scale": scale, "size": size,
            "loss": float(loss_sum) / done, "acc": float(correct) / (done * bs), "distill": float(distill_sum) / done}  # fmt: skip


def _epoch_row(cfg: TrainConfig, s: _Setup, epoch: int, stats: dict, teacher_s: float) -> dict:
    """The training half of the epoch's ``metrics.jsonl`` row."""
    row = {
        "epoch": epoch,
        "lr": cfg.lr * stats["scale"],
        "train_loss": stats["loss"],
        "train_acc": stats["acc"],
        "images_per_s": stats["done"] * s.batch_size * s.world / stats["elapsed"],
    }
    if stats["done"] < s.steps_per_epoch:  # the time budget ran out inside this epoch
        row["steps"] = stats["done"]
    if epoch == 1 and teacher_s:
        row["teacher_seconds"] = teacher_s  # spent before this epoch, on the budget's clock
    if cfg.progressive_min_size:
        row["train_size"] = stats["size"]
    if s.teacher is not None:
        row["train_distill_loss"] = stats["distill"]  # the weighted teacher terms inside train_loss
    return row


def _keep_score(cfg: TrainConfig, standing: _Standing, row: dict, validated: bool, has_val: bool) -> bool:
    """Update the best score and the plateau schedule with the epoch's ``row``; whether it is the best so far.

    Without validation data the training loss picks the best epoch; an epoch skipped by
    ``val_every`` is never the best (it has no validation score to compare)."""
    if has_val and not validated:
        return False
    metric = row["val_acc"] if validated else -row["train_loss"]
    improved = metric > standing.best_acc
    if improved:
        standing.best_acc, standing.best_epoch = metric, row["epoch"]
    plateau = standing.plateau
    if cfg.schedule == "plateau":  # ReduceLROnPlateau on the validation metric, patience 3
        if metric > plateau["best"]:
            plateau.update(best=metric, bad=0)
        else:
            plateau["bad"] += 1
            if plateau["bad"] > 3:
                plateau.update(scale=plateau["scale"] * cfg.gamma, bad=0)
    return improved


def save_epoch(cfg: TrainConfig, run: Run, s: _Setup, standing: _Standing, row: dict, improved: bool, info: Optional[dict]) -> None:
    """The epoch's files (rank 0): ``best.safetensors`` when it improved, the resumable
    ``last.safetensors``, its ``metrics.jsonl`` row and ``curves.png``."""
    meta = {**(info or {}), "epoch": row["epoch"], "metrics": row, "config": cfg.to_dict()}
    state = {
        "optimizer": s.optimizer.state_dict(),
        "epoch": row["epoch"],
        **standing.state(),
        "ema_updates": s.ema.updates if s.ema is not None else 0,
        "aux": [a.state_dict() for a in s.aux],
        "distill_project": s.project.state_dict() if s.project is not None else None,
    }
    run.save_epoch(row, s.model, s.spec, state=state, info=meta, best=s.eval_model if improved else None, ema=s.ema.module if s.ema else None)
    if run.writes:
        _plot_curves(run.history, run.out / "curves.png")


# ---------------------------------------------------------------------------- validation
def validate(model: nn.Module, faces: FaceSet, cfg: TrainConfig, device: torch.device) -> dict:
    """Loss, accuracy and macro F1 of ``model`` on prepared ``faces``."""

    probs = predict_proba(model, faces.images, device=device, tta=cfg.tta, crop=cfg.augment.crop or None, **eval_layout(cfg, device))
    y = faces.labels
    nll = float(-torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
    rep = classification_report(y.numpy(), probs.argmax(1).numpy(), faces.classes)
    return {"val_loss": nll, "val_acc": rep["accuracy"], "val_macro_f1": rep["macro_f1"]}


def _plot_curves(history: list[dict], path: Path) -> None:
    plot_training_curves(history, path)


# ---------------------------------------------------------------------------- the loop
def fit(
    cfg: TrainConfig,
    train_set: FaceSet,
    val_set: Optional[FaceSet],
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: Optional[Progress] = None,
    info: Optional[dict] = None,
) -> TrainResult:
    """Train ``cfg.model`` on ``train_set``, validating on ``val_set`` after every epoch.

    Writes ``out_dir/last.safetensors`` (resumable) every epoch, ``out_dir/best.safetensors``
    whenever validation accuracy improves, ``metrics.jsonl`` and ``curves.png``.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    with process_group(device) as (rank, world):
        return _fit(cfg, train_set, val_set, Path(out_dir), device, rank, world, resume=resume, progress=progress, info=info)


def _fit(cfg: TrainConfig, train_set: FaceSet, val_set: Optional[FaceSet], out: Path, device: torch.device, rank: int, world: int, *,
         resume: bool, progress: Optional[Progress], info: Optional[dict]) -> TrainResult:  # fmt: skip
    """:func:`fit` on one process: setup, then per epoch train, validate, keep score, save."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    budget_s = cfg.time_budget_minutes * 60
    if budget_s and world > 1:
        raise LrferError("time_budget_minutes needs a single process: each rank's clock would stop it at its own step", "train with one process, or set epochs instead of a time budget")
    train_set, val_set, offline_targets, teacher_s = _prepare_data(cfg, train_set, val_set, device, progress if rank == 0 else None)
    s = _setup(cfg, train_set, offline_targets, device, rank, world, progress)
    run, ckpt = Run.open(out, s.model, cfg.to_dict(), resume=resume, writes=rank == 0, progress=progress)
    standing, start = _resume(cfg, s, ckpt, teacher_s)
    if world > 1:
        check_same_start(start, out)  # a node without node 0's run folder must not train on its own epochs
    has_val = val_set is not None and len(val_set) > 0
    for epoch in range(start, cfg.epochs + 1):
        stats = train_one_epoch(cfg, s, epoch, standing, progress)
        row = _epoch_row(cfg, s, epoch, stats, teacher_s)
        standing.out_of_time = budget_s > 0 and standing.spent_s + stats["elapsed"] >= budget_s
        validated = has_val and (epoch % max(1, cfg.val_every) == 0 or epoch == cfg.epochs or standing.out_of_time)
        if validated:
            row.update(validate(s.eval_model, val_set, cfg, device))
        row["epoch_seconds"] = time.perf_counter() - stats["t0"]  # training + validation: resumed runs add these up
        standing.spent_s += row["epoch_seconds"]
        if standing.out_of_time:
            row["out_of_time"] = True
        improved = _keep_score(cfg, standing, row, validated, has_val)
        save_epoch(cfg, run, s, standing, row, improved, info)
        report(progress, "epoch_end", epoch, cfg.epochs, **row)
        if standing.out_of_time:
            break
    if world > 1:
        check_ranks_in_sync([*s.model.parameters(), *(s.project.parameters() if s.project is not None else ())], out, rank == 0)
    return TrainResult(out, run.best_path, run.last_path, standing.best_acc, standing.best_epoch, run.history)
