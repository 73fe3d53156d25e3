"""The training loop: the whole dataset as tensors on the device, batched augmentation, AMP, EMA,
DDP, atomic per-epoch checkpoints and exact resume.

Why it looks like this (airbench's lessons): a 48x48 dataset is tens of MB as uint8, so it lives on
the training device and each batch is an index into it; augmentation runs on the whole batch there;
no DataLoader workers, no host-device copies per step.

Reproducibility: each epoch re-seeds the global RNG from (seed, epoch, rank) and draws its order
from (seed, epoch), so a run resumed from the checkpoint of epoch k replays epochs k+1... exactly
as the uninterrupted run would have, without storing RNG states.

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

import contextlib
import copy
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from ..data.augment import augment_batch, mix_batch
from ..data.faceset import FaceSet
from ..data.transforms import CPU_BATCH, predict_proba, preprocess
from ..device import resolve_device
from ..errors import LrferError
from ..evaluate.metrics import classification_report
from ..evaluate.plots import plot_training_curves
from ..files import append_jsonl, write_jsonl
from ..models import create_model
from ..models.checkpoint import load_checkpoint, load_weights, model_spec, resume_checkpoint, save_checkpoint
from ..models.init_weights import load_init_weights
from ..progress import Progress, report
from .config import TrainConfig
from .losses import CenterLoss, class_weights, cross_entropy, distillation_loss, feature_distillation_loss


@dataclass
class TrainResult:
    out_dir: Path
    best_path: Path
    last_path: Path
    best_metric: float
    best_epoch: int
    history: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------- setup helpers
@contextlib.contextmanager
def _process_group(device: torch.device) -> Iterator[tuple[int, int]]:
    """(rank, world size) under torchrun, (0, 1) otherwise. A group this opens it also destroys
    on the way out, as torch asks of every process (NCCL warns of leaked resources otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1
        return
    opened = not dist.is_initialized()
    if opened:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        if opened:
            dist.destroy_process_group()


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


def freeze_parameters(model: nn.Module, prefixes: list[str]) -> int:
    """Fix every parameter whose name starts with one of ``prefixes`` (``cfg.freeze``); returns how
    many tensors were frozen. A prefix that names no parameter is a typo, not a no-op."""
    def under(name: str, prefix: str) -> bool:  # "stages.1" covers stages.1.*, not stages.10.*
        return name == prefix or name.startswith(prefix + ".")

    params = dict(model.named_parameters())
    for prefix in prefixes:
        if not any(under(n, prefix) for n in params):
            tops = sorted({n.split(".")[0] for n in params})
            raise LrferError(f"freeze: no parameter of '{getattr(model, 'model_name', type(model).__name__)}' is under '{prefix}'",
                             f"name modules of the model, e.g. {', '.join(tops[:4])}")  # fmt: skip
    frozen = [p.requires_grad_(False) for n, p in params.items() if any(under(n, prefix) for prefix in prefixes)]
    return len(frozen)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Parameter groups: no weight decay on norms and biases; the classifier at ``head_lr_mult``."""
    head_ids = {id(p) for p in model.classifier.parameters()} if hasattr(model, "classifier") else set()
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        key = (p.ndim <= 1, id(p) in head_ids)
        groups.setdefault(key, []).append(p)
    param_groups = [
        {"params": ps, "weight_decay": 0.0 if no_decay else cfg.weight_decay, "lr_mult": cfg.head_lr_mult if head else 1.0}
        for (no_decay, head), ps in sorted(groups.items())
    ]
    name = cfg.optimizer.lower()
    betas = (cfg.momentum, cfg.beta2)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=cfg.lr, betas=betas)
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=cfg.lr, betas=betas)
    if name == "adamax":
        return torch.optim.Adamax(param_groups, lr=cfg.lr, betas=betas)
    raise LrferError(f"unknown optimizer '{cfg.optimizer}'", "use sgd, adam, adamw or adamax")


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int, plateau_scale: float, time_frac: float = 0.0) -> float:
    """Learning-rate multiplier at an optimizer step: a pure function, so resume needs no scheduler state.

    ``time_frac`` is the share of ``cfg.time_budget_minutes`` spent: the schedule stands at the step
    or at the clock, whichever is further along, so it ends when the budget or the epochs do.
    """
    total = cfg.epochs * steps_per_epoch
    step = max(step, int(time_frac * total))
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":  # Smith & Topin: linear up for 30%, cosine down to ~0
        peak = max(1, int(0.3 * total))
        if step < peak:
            return 0.04 + 0.96 * step / peak
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - peak) / max(1, total - peak))))
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
    if cfg.schedule == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    if cfg.schedule == "plateau":
        return plateau_scale
    if cfg.schedule == "constant":
        return 1.0
    raise LrferError(f"unknown schedule '{cfg.schedule}'", "use cosine, onecycle, step, plateau or constant")


class ModelEMA:
    """Exponential moving average of weights (buffers copied), with the usual warm-up of the decay."""

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_p = [p for p in self.module.parameters()]
        src_p = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1 - d)
        for b_ema, b in zip(self.module.buffers(), model.buffers()):
            b_ema.copy_(b)


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


class Teacher(nn.Module):
    """A frozen classifier fed the clean view: eval mode, no gradients, its own input size."""

    def __init__(self, model: nn.Module, input_hw: tuple[int, int]):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.input_hw = input_hw

    def train(self, mode: bool = True) -> "Teacher":
        return self  # stays in eval mode: batch-norm statistics and dropout are the trained teacher's

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[-2:]) != self.input_hw:
            # the same resize as evaluation's, so the teacher sees faces framed as it was trained on
            x = preprocess(x, in_chans=None, input_size=self.input_hw)
        return self.model.embed_and_classify(x)


def load_teacher(path: str, classes: tuple[str, ...], in_chans: int, device: torch.device) -> Teacher:
    """The distillation teacher of a run; one of other classes or channels is an LrferError."""
    ckpt = teacher_checkpoint(path, classes, in_chans)
    return Teacher(ckpt.build_model().to(device), tuple(ckpt.input_size[1:]))


def teacher_checkpoint(path: str, classes: tuple[str, ...], in_chans: int):
    """The teacher's checkpoint, checked against the training faces' classes and channels."""
    ckpt = load_checkpoint(path)
    if ckpt.classes != tuple(classes):
        raise LrferError(
            f"teacher {path} predicts ({', '.join(ckpt.classes)}), the training data has ({', '.join(classes)})",
            "distil from a teacher trained on the same classes in the same order (same dataset and label mapping)",
        )
    if ckpt.spec["in_chans"] != in_chans:
        raise LrferError(
            f"teacher {path} takes {ckpt.spec['in_chans']}-channel faces, the training faces have {in_chans}",
            "use a teacher trained with the same grayscale setting as the student",
        )
    return ckpt


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


def offline_teacher_targets(cfg: TrainConfig, faces: FaceSet, base: torch.Tensor, device: torch.device, progress: Optional[Progress] = None) -> torch.Tensor:
    """Soft targets of offline distillation (``cfg.distill_offline``), ``(N, K)``.

    The teacher scores the clean ``faces`` once, as evaluation feeds it (its own size and centre
    crop; one view, since a flip would double the pass), at temperature ``distill_temperature``;
    the result is mixed with ``base`` (the labels as class distributions) in the proportion
    distill_weight : 1. Called before the training faces are resized to the student's size, so
    the teacher sees them at full resolution.
    """

    ckpt = teacher_checkpoint(cfg.teacher_path, faces.classes, faces.in_chans)
    probs = predict_proba(ckpt.build_model(), faces.images, device=device, crop=ckpt.spec.get("crop") or None,  # 0: no crop
                          input_size=ckpt.spec.get("image_size"), temperature=cfg.distill_temperature,
                          progress=progress, task="teacher", **eval_layout(cfg, device)).cpu()  # fmt: skip  (minutes on a CPU: a progress bar)
    w = cfg.distill_weight / (1 + cfg.distill_weight)
    return (1 - w) * base + w * probs


# ---------------------------------------------------------------------------- validation
def channels_last_on(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether this run's convolutions go NHWC: on CUDA with ``channels_last``, on a CPU only with
    ``channels_last_cpu`` as well (it pays for some networks there, not for all)."""
    return cfg.channels_last and (device.type == "cuda" or cfg.channels_last_cpu)


def eval_layout(cfg: TrainConfig, device: torch.device) -> dict:
    """Batch size and memory format of the trainer's prediction passes (teacher, validation):
    ``eval_batch_size``, at most :data:`lrfer.data.transforms.CPU_BATCH` on a CPU (where larger
    batches are slower), and NHWC where training is."""

    batch_size = cfg.eval_batch_size if device.type == "cuda" else min(cfg.eval_batch_size, CPU_BATCH)
    return {"batch_size": batch_size, "channels_last": channels_last_on(cfg, device)}


def validate(model: nn.Module, faces: FaceSet, cfg: TrainConfig, device: torch.device) -> dict:
    """Loss, accuracy and macro F1 of ``model`` on prepared ``faces``."""

    probs = predict_proba(model, faces.images, device=device, tta=cfg.tta, crop=cfg.augment.crop or None, **eval_layout(cfg, device))
    y = faces.labels
    nll = float(-torch.log(probs[torch.arange(len(y)), y].clamp_min(1e-12)).mean())
    rep = classification_report(y.numpy(), probs.argmax(1).numpy(), faces.classes)
    return {"val_loss": nll, "val_acc": rep["accuracy"], "val_macro_f1": rep["macro_f1"]}


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
    with _process_group(device) as (rank, world):
        return _fit(cfg, train_set, val_set, Path(out_dir), device, rank, world, resume=resume, progress=progress, info=info)


def _fit(
    cfg: TrainConfig,
    train_set: FaceSet,
    val_set: Optional[FaceSet],
    out: Path,
    device: torch.device,
    rank: int,
    world: int,
    *,
    resume: bool,
    progress: Optional[Progress],
    info: Optional[dict],
) -> TrainResult:
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    is_main = rank == 0

    if cfg.limit_train:  # before the resize: the same faces, less work
        train_set = train_set.subset(np.arange(min(cfg.limit_train, len(train_set))))
    offline_targets = None
    teacher_s = 0.0  # the offline teacher's pass: part of the run, so it counts against a time budget
    if cfg.teacher and cfg.distill_offline and len(train_set):
        t_teacher = time.perf_counter()
        clean = train_set.to_grayscale() if cfg.grayscale else train_set
        labels = label_targets(clean, cfg)
        base = labels.float() if labels.dtype.is_floating_point else nn.functional.one_hot(labels.long(), clean.num_classes).float()
        offline_targets = offline_teacher_targets(cfg, clean, base, device, progress if is_main else None)
        teacher_s = time.perf_counter() - t_teacher
    train_set = prepare_faces(train_set, cfg)
    if len(train_set) == 0:
        raise LrferError("the training split is empty", f"check --train-split (now '{cfg.train_split}') and the dataset")
    if val_set is not None:
        val_set = prepare_faces(val_set, cfg).with_classes(train_set.classes)
    classes = train_set.classes

    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=len(classes), in_chans=train_set.in_chans, **cfg.model_kwargs).to(device)
    if cfg.stem_init == "whiten":  # from the data, before any weights file or resumed checkpoint overrides it
        if not hasattr(model, "whiten_stem"):
            raise LrferError(f"stem_init 'whiten' needs a model with a whitening stem, and '{cfg.model}' has none",
                             "use airnet_fer, or stem_init = 'none'")
        sample = train_set.images[:: max(1, len(train_set) // 2048)]  # enough for a 9x9 covariance
        n = model.whiten_stem(sample.to(device).to(torch.float32) / 255)
        report(progress, "stem_init", n, message=f"stem_init whiten: {n} stem filters set from {len(sample)} training faces")
    if cfg.init_weights:  # pretrained weights (e.g. VGGFace2); a resumed run's checkpoint overrides them below

        loaded = load_init_weights(model, cfg.init_weights_path, classes=classes)
        message = (f"init_weights {cfg.init_weights}: {len(loaded['matched'])} tensors loaded, "
                   f"{len(loaded['missing'])} left as initialised, {len(loaded['skipped'])} in the file skipped")
        report(progress, "init_weights", len(loaded["matched"]), message=message, **loaded)
    if cfg.freeze:
        n = freeze_parameters(model, cfg.freeze)
        report(progress, "freeze", n, message=f"freeze {', '.join(cfg.freeze)}: {n} parameter tensors fixed")
    use_cuda = device.type == "cuda"
    nhwc = channels_last_on(cfg, device)
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    spec = model_spec(model, classes, train_set.in_chans, cfg.image_size, cfg.augment.crop)

    # the whole training set on the device, as uint8
    images = train_set.images.to(device)
    targets = (offline_targets if offline_targets is not None else label_targets(train_set, cfg)).to(device)
    weight = class_weights(train_set.class_counts(), cfg.class_weights)
    weight = weight.to(device) if weight is not None else None

    optimizer = build_optimizer(model, cfg)
    ema = ModelEMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    aux: list[Any] = []
    if cfg.center_loss > 0:
        aux.append(CenterLoss(len(classes), model.num_features, cfg.center_loss, cfg.center_alpha).to(device))

    teacher = load_teacher(cfg.teacher_path, classes, train_set.in_chans, device) if cfg.teacher and not cfg.distill_offline else None
    project: Optional[nn.Module] = None
    if teacher is not None and cfg.distill_feature_weight > 0 and teacher.model.num_features != model.num_features:
        # trained with the student and kept in the checkpoint's training state (not in the model
        # the checkpoint rebuilds): it only serves the loss, and resume needs it to stay exact
        project = nn.Linear(model.num_features, teacher.model.num_features).to(device)
        optimizer.add_param_group({"params": [project.weight], "weight_decay": cfg.weight_decay, "lr_mult": 1.0})
        optimizer.add_param_group({"params": [project.bias], "weight_decay": 0.0, "lr_mult": 1.0})
    if nhwc and teacher is not None:
        teacher = teacher.to(memory_format=torch.channels_last)
    mixing = cfg.mixup_alpha > 0 or cfg.cutmix_alpha > 0
    if mixing and not targets.dtype.is_floating_point:
        # one-hot for every batch, mixed or not: the soft-target loss equals the hard one on them,
        # and the batches share one code path
        targets = nn.functional.one_hot(targets, len(classes)).float()

    step_model: nn.Module = _EmbedAndClassify(model, project)
    if world > 1:
        step_model = nn.parallel.DistributedDataParallel(step_model, device_ids=[device.index] if use_cuda else None)
    if cfg.compile:
        step_model = torch.compile(step_model)
    budget_s = cfg.time_budget_minutes * 60
    if budget_s and world > 1:
        raise LrferError("time_budget_minutes needs a single process: each rank's clock would stop it at its own step", "train with one process, or set epochs instead of a time budget")

    n = len(images)
    per_rank = n // world
    bs = min(cfg.batch_size, per_rank)
    steps_per_epoch = max(1, per_rank // bs)

    # resumable state
    # -inf, not -1: without validation data the score is minus the training loss, often below -1
    start_epoch, best_acc, best_epoch, plateau = 1, float("-inf"), 0, {"scale": 1.0, "best": float("-inf"), "bad": 0}
    # the time budget's clock: the offline teacher's pass, then the epochs so far, resumed ones
    # included (a resumed run keeps its first pass's time and does not count the repeated one)
    spent_s = teacher_s
    last_path, best_path = out / "last.safetensors", out / "best.safetensors"
    ckpt, history = resume_checkpoint(last_path, model, resume)
    if ckpt is not None:
        state = ckpt.state
        if project is not None and state.get("distill_project") is None:
            raise LrferError(f"{last_path} was written by a run without feature distillation through a projection", "resume with that run's settings, or train into a new --out")
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and ckpt.has_ema:
            load_weights(ema.module, ckpt, "ema")
            ema.updates = state.get("ema_updates", 0)
        for a, s in zip(aux, state.get("aux", [])):
            a.load_state_dict(s)
        if project is not None:
            project.load_state_dict(state["distill_project"])
        start_epoch = state["epoch"] + 1
        best_acc, best_epoch, plateau = state["best_acc"], state["best_epoch"], state["plateau"]
        spent_s = state.get("spent_s", 0.0)
        if state.get("out_of_time"):  # the run ended on its time budget: nothing left to do
            start_epoch = cfg.epochs + 1
    elif resume:
        report(progress, "resume", 0, info={"message": f"no checkpoint in {out}; starting from scratch"})

    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        write_jsonl(out / "metrics.jsonl", history)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (use_cuda and cfg.amp) else torch.autocast("cpu", enabled=False)

    for epoch in range(start_epoch, cfg.epochs + 1):
        model.train()
        torch.manual_seed(cfg.seed * 1_000_003 + epoch * 101 + rank)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 7919 + epoch)).to(device)
        shard = order[rank::world][: steps_per_epoch * bs].view(steps_per_epoch, bs)
        loss_sum = torch.zeros((), device=device)
        distill_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        size = progressive_size(cfg, epoch)
        t0 = time.perf_counter()
        done = 0
        for i in range(steps_per_epoch):
            step = (epoch - 1) * steps_per_epoch + i
            time_frac = (spent_s + time.perf_counter() - t0) / budget_s if budget_s else 0.0
            if time_frac >= 1 and i > 0:
                break
            scale = lr_factor(cfg, step, steps_per_epoch, plateau["scale"], time_frac)
            for g in optimizer.param_groups:
                g["lr"] = cfg.lr * g["lr_mult"] * scale
            idx = shard[i]
            batch = images[idx].float().div_(255)
            if teacher is not None:
                x, x_clean = augment_batch(batch, cfg.augment, with_clean=True)
            else:
                x, x_clean = augment_batch(batch, cfg.augment), None
            if size != x.shape[-1]:  # progressive resizing; the teacher keeps its clean full-size view
                x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            y = targets[idx]
            if mixing:  # the teacher's clean view gets the same partners, lambda and box
                views = [x] if x_clean is None else [x, x_clean]
                views, y, _ = mix_batch(views, y, mixup_alpha=cfg.mixup_alpha, cutmix_alpha=cfg.cutmix_alpha, p=cfg.mix_p)
                x, x_clean = views[0], (views[1] if len(views) > 1 else None)
            if nhwc:
                x = x.contiguous(memory_format=torch.channels_last)
            with amp:
                emb, logits, feats = step_model(x)
            loss = cross_entropy(logits, y, weight, cfg.label_smoothing)
            if teacher is not None:
                with amp:
                    t_emb, t_logits = teacher(x_clean)
                distill = torch.zeros((), device=device)
                if cfg.distill_weight > 0:
                    distill = distill + cfg.distill_weight * distillation_loss(logits, t_logits, cfg.distill_temperature)
                if cfg.distill_feature_weight > 0:
                    distill = distill + cfg.distill_feature_weight * feature_distillation_loss(feats, t_emb)
                loss = loss + distill
                distill_sum += distill.detach()
            for a in aux:
                loss = loss + a.weight * a(emb, logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], cfg.grad_clip)
            optimizer.step()
            for a in aux:
                a.after_step()
            if ema is not None:
                ema.update(model)
            loss_sum += loss.detach()
            hard = y.argmax(1) if y.dtype.is_floating_point else y
            correct += (logits.detach().argmax(1) == hard).sum()
            done = i + 1
            if done % 20 == 0 or done == steps_per_epoch:
                report(progress, f"epoch {epoch}/{cfg.epochs}", done, steps_per_epoch)
        elapsed = time.perf_counter() - t0
        out_of_time = budget_s > 0 and spent_s + elapsed >= budget_s
        row = {
            "epoch": epoch,
            "lr": cfg.lr * scale,
            "train_loss": float(loss_sum) / done,
            "train_acc": float(correct) / (done * bs),
            "images_per_s": done * bs * world / elapsed,
        }
        if done < steps_per_epoch:  # the time budget ran out inside this epoch
            row["steps"] = done
        if epoch == 1 and teacher_s:
            row["teacher_seconds"] = teacher_s  # spent before this epoch, on the budget's clock
        if cfg.progressive_min_size:
            row["train_size"] = size
        if teacher is not None:
            row["train_distill_loss"] = float(distill_sum) / done  # the weighted teacher terms inside train_loss
        eval_model = ema.module if ema is not None else model
        has_val = val_set is not None and len(val_set) > 0
        validated = has_val and (epoch % max(1, cfg.val_every) == 0 or epoch == cfg.epochs or out_of_time)
        if validated:
            row.update(validate(eval_model, val_set, cfg, device))
        row["epoch_seconds"] = time.perf_counter() - t0  # training + validation: resumed runs add these up
        spent_s += row["epoch_seconds"]
        if out_of_time:
            row["out_of_time"] = True
        # Without validation data the training loss picks the best epoch; an epoch skipped by
        # val_every is never the best (it has no validation score to compare).
        scored = validated or not has_val
        metric = row["val_acc"] if validated else -row["train_loss"]
        improved = scored and metric > best_acc
        if improved:
            best_acc, best_epoch = metric, epoch
        if cfg.schedule == "plateau" and scored:  # ReduceLROnPlateau on the validation metric, patience 3
            if metric > plateau["best"]:
                plateau.update(best=metric, bad=0)
            else:
                plateau["bad"] += 1
                if plateau["bad"] > 3:
                    plateau.update(scale=plateau["scale"] * cfg.gamma, bad=0)
        history.append(row)
        if is_main:
            meta = {**(info or {}), "epoch": epoch, "metrics": row, "config": cfg.to_dict()}
            state = {
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "best_acc": best_acc,
                "best_epoch": best_epoch,
                "plateau": plateau,
                "spent_s": spent_s,
                "out_of_time": out_of_time,
                "ema_updates": ema.updates if ema is not None else 0,
                "aux": [a.state_dict() for a in aux],
                "distill_project": project.state_dict() if project is not None else None,
            }
            if improved:
                save_checkpoint(best_path, eval_model, spec, info=meta)
            save_checkpoint(last_path, model, spec, ema=ema.module if ema else None, state=state, info=meta)
            append_jsonl(out / "metrics.jsonl", row)
            _plot_curves(history, out / "curves.png")
        report(progress, "epoch_end", epoch, cfg.epochs, **row)
        if out_of_time:
            break
    if world > 1:
        _check_ranks_in_sync([*model.parameters(), *(project.parameters() if project is not None else ())], out, is_main)
    return TrainResult(out, best_path, last_path, best_acc, best_epoch, history)


_SYNC_CHECKS = itertools.count()  # one key space per fit() of this process: every rank runs the same fits


def _check_ranks_in_sync(params: list[torch.Tensor], out: Path, is_main: bool) -> None:
    """DDP must leave every rank with the same weights (the model's and the distillation
    projection's); compare fingerprints and record them.

    The fingerprints travel through the process group's key-value store, not a collective: gloo
    frees a collective's tensors on its own worker thread a moment after ``wait`` returns, and as
    this is the last exchange before the process exits, that free could land in interpreter
    shutdown and abort the rank ("terminate called without an active exception")."""
    v = torch.cat([p.detach().double().flatten() for p in params])
    pos = torch.arange(len(v), dtype=torch.float64, device=v.device)
    mine = torch.stack([v.sum(), (v * v).sum(), (v * pos).sum()]).tolist()
    store = dist.distributed_c10d._get_default_store()
    key = f"lrfer/ddp_check/{next(_SYNC_CHECKS)}/rank"
    store.set(f"{key}{dist.get_rank()}", json.dumps(mine))  # json keeps a float's every bit
    rows = [json.loads(store.get(f"{key}{r}")) for r in range(dist.get_world_size())]
    if is_main:
        (out / "ddp_check.json").write_text(json.dumps({"world_size": len(rows), "fingerprints": rows}, indent=2))
    if any(r != rows[0] for r in rows):
        raise RuntimeError(f"DDP ranks ended with different weights: {rows}")


# ---------------------------------------------------------------------------- files
def _plot_curves(history: list[dict], path: Path) -> None:
    plot_training_curves(history, path)
