"""The typed training configuration and recipe files.

A recipe is data: a TOML file whose keys are :class:`TrainConfig` fields (``[augment]`` and
``[model_kwargs]`` as tables, ``[paper]`` for what the method's paper reports). Shipped recipes live
in ``lrfer/recipes/*.toml`` and are named by their file stem; a user's own file is given by path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from .._compat import tomllib
from ..data.augment import AugmentConfig
from ..data.transforms import CPU_BATCH
from ..errors import LrferError, closest
from ..models import create_model, is_model, list_models
from ..predict.classifier import DEFAULT_CHECKPOINT

RECIPE_DIR = Path(__file__).resolve().parent.parent / "recipes"


@dataclass
class TrainConfig:
    # what to train
    model: str = "resnet18_fer_slim"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    init_weights: str = ""  # weights file (.pth state dict / .safetensors / lrfer checkpoint / "default") loaded into the new model, strict=False
    # parameter-name prefixes kept fixed (e.g. ["stem", "stages.0"]): fine-tuning adapts the later
    # layers only, and backward stops at the first trainable layer, so the early, high-resolution
    # layers cost a forward pass only
    freeze: list[str] = field(default_factory=list)
    # "whiten": the first layer starts as the training faces' whitening basis (airbench; models
    # with a ``whiten_stem`` method, e.g. airnet_fer); "none" keeps the model's own initialisation
    stem_init: str = "none"
    grayscale: bool = True
    image_size: int = 48  # faces are resized to this before augmentation
    # progressive resizing (EfficientNetV2's progressive learning; fast.ai's DAWNBench runs): the
    # first epochs train on smaller faces, whose steps cost less, so a time budget buys more
    # epochs; the size grows linearly from progressive_min_size to the full training size over the
    # first progressive_frac of the epochs, and the rest train at full size (0: off)
    progressive_min_size: int = 0
    progressive_frac: float = 0.5
    label_mode: str = "hard"  # hard | soft (soft labels, e.g. FERPlus vote distributions)
    # with label_mode 'hard': targets (1 - w) one-hot + w soft labels, e.g. FER2013's labels blended
    # with its FERPlus votes (FER2013's labels are noisy; the votes of 10 taggers say how much)
    soft_label_weight: float = 0.0
    train_split: str = "Training"
    val_split: str = "PublicTest"
    # another labelled set mixed into the training split (a path any reader takes, e.g. CK+48's
    # posed faces beside FER2013's web faces), each of its faces extra_train_repeat times an
    # epoch; fold 0 of extra_train_holdout subject folds is never trained on (data.splits.
    # held_out_subjects, seed 0), so the set still scores the model on subjects it never saw
    # (0: train on every subject)
    extra_train: str = ""
    extra_train_repeat: int = 1
    extra_train_holdout: int = 2
    # optimisation
    epochs: int = 30
    # Wall-clock budget (0: off): training stops once this much time (training and validation,
    # and offline distillation's teacher pass) is spent, at most ``epochs`` epochs, and the
    # schedule is paced by the clock (optim.lr_factor), so the learning rate reaches its end at
    # the budget whatever the machine's speed. The steps a run gets, so its result, then depend on
    # that speed: not deterministic.
    time_budget_minutes: float = 0.0
    batch_size: int = 128
    optimizer: str = "sgd"  # adam | adamw | adamax | sgd (Nesterov)
    lr: float = 0.05
    momentum: float = 0.9  # SGD momentum, or beta1 for the Adam family
    beta2: float = 0.999
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine (with warm-up) | onecycle | step | plateau | constant
    warmup_epochs: float = 1.0
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.1  # step / plateau decay factor
    head_lr_mult: float = 1.0  # learning-rate multiplier for the classifier layer
    grad_clip: float = 0.0  # max gradient norm (0: off)
    label_smoothing: float = 0.0
    class_weights: str = "none"  # none | balanced (1 - n_c/N) | inverse
    ema_decay: float = 0.0  # EMA of weights (0: off); evaluation and the best checkpoint use EMA
    center_loss: float = 0.0  # centre-loss weight lambda (0: off)
    center_alpha: float = 0.5
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # mixup / cutmix: per batch, on the device; with either on, every target is a class distribution
    mixup_alpha: float = 0.0  # lambda ~ Beta(alpha, alpha) (0: off)
    cutmix_alpha: float = 0.0  # box area 1 - lambda, lambda ~ Beta(alpha, alpha) (0: off); both on: 50/50 per batch
    mix_p: float = 1.0  # probability that a batch is mixed
    # high-to-low-resolution distillation: a frozen teacher sees each batch before degradation
    teacher: str = ""  # lrfer classifier checkpoint of the teacher ("": off)
    distill_weight: float = 1.0  # weight of KL(teacher || student) at distill_temperature, times T^2
    distill_temperature: float = 4.0
    distill_feature_weight: float = 0.0  # weight of the MSE between pooled features (0: off); a learned
    # linear projection maps the student's features to the teacher's width when they differ
    # offline distillation, for CPUs: the teacher runs once over the clean training faces, and its
    # probabilities at distill_temperature become soft targets, mixed with the labels as
    # distill_weight : 1. It replaces a teacher forward pass per step (the online way) by one pass
    # per run, and loses the teacher's view of each augmented face. Logits only.
    distill_offline: bool = False
    tta: str = "none"  # none | flip | tencrop: test-time augmentation in validation
    val_every: int = 1  # validate every N epochs and after the last (validation costs time on a CPU)
    # machinery
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    channels_last: bool = True  # on CUDA
    # also on a CPU: oneDNN's convolutions are faster in NHWC for small networks (the quarter-width
    # ResNet of fer2013_cpu30), not for the full-width one at 44 px; measured per recipe, so off by default
    channels_last_cpu: bool = False  # the teacher's and validation passes follow it too
    compile: bool = False
    eval_batch_size: int = 1024  # validation and teacher passes; at most 128 on a CPU (evaluate.predict.CPU_BATCH)
    limit_train: int = 0  # use only the first N training rows (quick runs and tests; 0: all)
    # provenance (recipes)
    recipe: str = ""
    paper: dict[str, Any] = field(default_factory=dict)

    @property
    def teacher_path(self) -> str:
        """The teacher checkpoint's path; ``teacher = "default"`` names the shipped model, so a recipe can use it."""
        return _shipped_or(self.teacher)

    @property
    def init_weights_path(self) -> str:
        """The initial weights' path; ``init_weights = "default"`` starts from the shipped model (fine-tuning)."""
        return _shipped_or(self.init_weights)

    def _validate_extra(self) -> None:
        if not self.extra_train:
            return
        if not Path(self.extra_train).exists():
            raise LrferError(f"extra_train: no such file or folder: {self.extra_train}", "give the path of a labelled set lrfer reads (e.g. ckplus48.npz)")
        if self.extra_train_repeat < 1:
            raise LrferError(f"extra_train_repeat is {self.extra_train_repeat}, it must be 1 or more", "1 adds each extra face once an epoch")
        if self.extra_train_holdout == 1 or self.extra_train_holdout < 0:
            raise LrferError(f"extra_train_holdout is {self.extra_train_holdout}, it must be 0 or at least 2", "2 holds half the subjects out; 0 trains on all")

    def validate(self) -> "TrainConfig":
        """Check names (model, optimizer, schedule, ...) up front, with a suggestion for a typo."""

        if not is_model(self.model):
            create_model(self.model)  # raises the LrferError with the closest name
        if self.model in list_models("sr"):
            raise LrferError(f"'{self.model}' is a super-resolution model, not a classifier", "train it with `lrfer train-sr`")
        choices = {
            "optimizer": ("sgd", "adam", "adamw", "adamax"),
            "schedule": ("cosine", "onecycle", "step", "plateau", "constant"),
            "class_weights": ("none", "balanced", "inverse"),
            "label_mode": ("hard", "soft"),
            "tta": ("none", "flip", "tencrop"),
            "stem_init": ("none", "whiten"),
        }
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise LrferError(f"{name} '{value}' is not one of {', '.join(allowed)}", closest(value, allowed))
        self._validate_extra()
        if self.init_weights and not Path(self.init_weights_path).is_file():
            raise LrferError(f"init_weights: no such file: {self.init_weights}", "give the path of a .pth state dict or a .safetensors file")
        for name in ("mixup_alpha", "cutmix_alpha", "distill_weight", "distill_feature_weight"):
            if not getattr(self, name) >= 0:
                raise LrferError(f"{name} is {getattr(self, name)}, it must be 0 or more", "0 turns it off")
        if not 0 <= self.soft_label_weight <= 1:
            raise LrferError(f"soft_label_weight is {self.soft_label_weight}, it must lie in [0, 1]", "0 trains on the hard labels, 1 on the soft ones only")
        if self.soft_label_weight and self.label_mode == "soft":
            raise LrferError("soft_label_weight blends soft labels into hard ones, but label_mode is already 'soft'", "use label_mode = 'hard' with soft_label_weight, or drop soft_label_weight")
        if not 0 <= self.mix_p <= 1:
            raise LrferError(f"mix_p is {self.mix_p}, a probability must lie in [0, 1]", "1 mixes every batch (the usual choice)")
        if self.teacher:
            if not Path(self.teacher_path).is_file():
                raise LrferError(f"teacher: no such file: {self.teacher}", "give the .safetensors checkpoint of a trained lrfer classifier (`lrfer train` writes best.safetensors)")
            if not self.distill_temperature > 0:
                raise LrferError(f"distill_temperature is {self.distill_temperature}, it must be above 0", "use 4 (Hinton et al.'s usual range is 2-8)")
            if self.distill_weight == 0 and self.distill_feature_weight == 0:
                raise LrferError("a teacher is set but distill_weight and distill_feature_weight are both 0", "set distill_weight = 1, or drop the teacher")
            if self.distill_offline and self.distill_feature_weight > 0:
                raise LrferError("distill_offline keeps only the teacher's probabilities, not its features", "set distill_feature_weight = 0, or distill_offline = false")
            if self.distill_offline and self.distill_weight == 0:
                raise LrferError("distill_offline with distill_weight 0 would ignore the teacher", "set distill_weight = 1 (labels and teacher weigh alike)")
        elif self.distill_offline:
            raise LrferError("distill_offline is set but no teacher is", "set teacher (a checkpoint, or 'default' for the shipped model), or distill_offline = false")
        elif self.distill_feature_weight > 0:
            raise LrferError(f"distill_feature_weight is {self.distill_feature_weight} but no teacher is set", "set teacher to a trained classifier's best.safetensors, or distill_feature_weight = 0")
        if self.progressive_min_size:
            full = self.augment.crop or self.image_size
            if not 4 <= self.progressive_min_size <= full:
                raise LrferError(f"progressive_min_size is {self.progressive_min_size}, it must lie in [4, {full}] (the training size)", "use about two-thirds of the training size, or 0 for no progressive resizing")
            if not 0 < self.progressive_frac <= 1:
                raise LrferError(f"progressive_frac is {self.progressive_frac}, it must lie in (0, 1]", "0.5 grows the faces over the first half of the epochs")
        if self.time_budget_minutes:
            if not self.time_budget_minutes > 0:
                raise LrferError(f"time_budget_minutes is {self.time_budget_minutes}, it must be above 0", "0 turns the budget off")
            if self.schedule not in ("cosine", "onecycle", "constant"):
                raise LrferError(f"time_budget_minutes paces the schedule by the clock, but schedule '{self.schedule}' counts epochs", "use schedule = 'cosine', 'onecycle' or 'constant'")
            if self.progressive_min_size:
                raise LrferError("time_budget_minutes and progressive_min_size do not mix: progressive resizing counts epochs", "drop one of them")
        if self.tta == "tencrop" and not self.augment.crop:
            raise LrferError("tta 'tencrop' needs augment.crop (the crop size the model trains on)", "set [augment] crop = 44, or use tta = 'flip'")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in known]
        if unknown:
            raise LrferError(f"{source}: unknown setting '{unknown[0]}'", closest(unknown[0], known))
        aug = d.pop("augment", {}) or {}
        if not isinstance(aug, dict):
            raise LrferError(f"{source}: augment is a {type(aug).__name__}, not a table", "write the augment settings under [augment]")
        aug_known = {f.name for f in dataclasses.fields(AugmentConfig)}
        bad = [k for k in aug if k not in aug_known]
        if bad:
            raise LrferError(f"{source}: unknown augment setting '{bad[0]}'", closest(bad[0], aug_known))
        _check_types(d, cls(), source)
        _check_types(aug, AugmentConfig(), source, "augment.")
        if "erase_area" in aug:
            aug["erase_area"] = tuple(aug["erase_area"])
        return cls(**d, augment=AugmentConfig(**aug))


def _type_of(default: Any) -> tuple[tuple[type, ...], str]:
    """The types a setting may take, judged by its default (an int is a valid float, a bool no number)."""
    if isinstance(default, bool):
        return (bool,), "true or false"
    if isinstance(default, int):
        return (int,), "a whole number"
    if isinstance(default, float):
        return (int, float), "a number"
    if isinstance(default, str):
        return (str,), "a string"
    if isinstance(default, (list, tuple)):
        return (list, tuple), "a list"
    return (dict,), "a table"


def _check_types(settings: dict, defaults: Any, source: str, prefix: str = "") -> None:
    """Every setting of a recipe (or of its [augment] table) of its field's type: a recipe is
    user text, and a string where a number belongs would otherwise fail deep in training with a
    traceback, or not at all (``epochs = "30"``)."""
    for key, value in settings.items():
        types, what = _type_of(getattr(defaults, key))
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and key == "erase_area":
            ok = len(value) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            what = "a list of two numbers"
        if not ok:
            raise LrferError(f"{source}: {prefix}{key} = {value!r} is not {what}", f"give {prefix}{key} {what}, like its default {getattr(defaults, key)!r}")


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


def _shipped_or(path: str) -> str:
    """``"default"`` names the shipped model's checkpoint; anything else is a path."""
    if path == "default":
        return str(DEFAULT_CHECKPOINT)
    return path


def list_recipes() -> dict[str, Path]:
    return {p.stem: p for p in sorted(RECIPE_DIR.glob("*.toml"))}


def recipe_path(name_or_path: str) -> Path:
    """The file of a shipped recipe name, or the given .toml path."""
    path = Path(name_or_path)
    if not path.suffix:
        recipes = list_recipes()
        if name_or_path not in recipes:
            raise LrferError(f"unknown recipe '{name_or_path}'", closest(name_or_path, recipes) + " (`lrfer recipes` lists them)")
        path = recipes[name_or_path]
    if not path.exists():
        raise LrferError(f"no such recipe file: {path}", "give a shipped recipe name (`lrfer recipes`) or a .toml path")
    return path


def read_recipe(name_or_path: str, _seen: tuple[Path, ...] = ()) -> dict:
    """Recipe table by shipped name or by file path.

    ``base = "other_recipe"`` starts from that recipe's table and overrides what this one sets
    (tables such as ``[augment]`` key by key), so a variant states only how it differs.
    """
    path = recipe_path(name_or_path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise LrferError(f"{path} is not valid TOML ({err})", "fix the file") from None
    except UnicodeDecodeError:
        raise LrferError(f"{path} is not UTF-8 text", "save the recipe as UTF-8 (TOML files are UTF-8)") from None
    except IsADirectoryError:
        raise LrferError(f"recipe {path} is a folder", "give a shipped recipe name (`lrfer recipes`) or a .toml file") from None
    base = table.pop("base", None)
    if base is not None and not isinstance(base, str):
        raise LrferError(f"{path}: base = {base!r} is not a recipe name", "give base as a string: a shipped recipe name or a .toml path")
    if base is not None:
        seen = (*_seen, path.resolve())
        if recipe_path(base).resolve() in seen:
            loop = " -> ".join(p.stem for p in (*seen, recipe_path(base)))
            raise LrferError(f"{path}: recipe bases form a loop ({loop})", "make one of them stand alone")
        inherited = read_recipe(base, seen)
        inherited.pop("recipe")  # the variant is its own recipe
        table = {**inherited, **{k: {**inherited[k], **v} if isinstance(v, dict) and isinstance(inherited.get(k), dict) else v for k, v in table.items()}}
    table.setdefault("recipe", path.stem)
    return table


def load_config(recipe: Optional[str] = None, **overrides: Any) -> TrainConfig:
    """TrainConfig from defaults, then a recipe, then explicit overrides (CLI flags); None means unset."""
    table: dict[str, Any] = read_recipe(recipe) if recipe else {}
    for k, v in overrides.items():
        if v is None:
            continue
        if k == "augment":
            # a recipe's augment that is no table is left for from_dict to name
            table["augment"] = {**table["augment"], **v} if isinstance(table.get("augment"), dict) else table.get("augment", v)
        else:
            table[k] = v
    return TrainConfig.from_dict(table, source=recipe or "config")


def with_front_end(cfg: TrainConfig, *, stn: bool = False, sr: Optional[str] = None, sr_trainable: bool = False) -> TrainConfig:
    """The same recipe with a Qin 2021 front end (STN and/or a trained SR model) before its classifier.

    ``lrfer train --front stn`` / ``--front-sr CKPT`` call this: the recipe's model becomes the
    ``classifier`` of a ``fronted`` model, its keyword arguments kept, so any registered classifier
    can be trained behind the front end without writing a new recipe.
    """
    if not stn and sr is None:
        return cfg
    if cfg.model == "fronted":
        raise LrferError(f"recipe {cfg.recipe or ''} already has a front end (model 'fronted')", "drop --front/--front-sr or use a plain classifier recipe")
    kwargs: dict[str, Any] = {"classifier": cfg.model, "classifier_kwargs": dict(cfg.model_kwargs), "stn": stn, "sr_trainable": sr_trainable}
    if sr is not None:
        kwargs["sr"] = sr
    return dataclasses.replace(cfg, model="fronted", model_kwargs=kwargs)
