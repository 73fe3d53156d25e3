"""Self-describing checkpoints: one safetensors file holds weights, how to rebuild the model, and
(for training checkpoints) the optimizer, scheduler, EMA and RNG states needed to resume exactly.

Why safetensors for everything, training state included: loading never executes code from the
file (pickle does), and one file type serves training, evaluation, inference and the shipped
default. Nested state (optimizer/scheduler ``state_dict``s, RNG states) is flattened: tensors go
into the tensor table under ``state/...`` keys, everything else into a JSON skeleton stored in the
file's metadata, where each tensor is replaced by ``{"__tensor__": key}``.

Writes are atomic: a temporary file in the same folder, fsync, then ``os.replace``, so a run killed
at any moment leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import LrferError
from ..files import atomic_write
from ._registry import create_model

FORMAT = "lrfer-checkpoint/1"
_META_KEY = "lrfer"


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors in a nested structure by references, collecting them in ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = f"state/{prefix}"
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        # JSON keys are strings; remember int keys (optimizer state is keyed by param index).
        return {
            "__dict__": [[k, _flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()],
        }
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def model_spec(model: nn.Module, classes: tuple[str, ...], in_chans: int, image_size: int, crop: int = 0) -> dict:
    """What a checkpoint needs to rebuild ``model`` and feed it, with no code from the file.

    Faces are resized to ``image_size``; a model trained on random crops sees the centre ``crop``
    at test time, so its ``input_size`` is the crop.
    """
    side = crop or image_size
    name = getattr(model, "model_name", None)
    if name is None:
        raise ValueError("model was not built by lrfer.models.create_model; it cannot be checkpointed by name")
    return {
        "name": name,
        "kwargs": getattr(model, "model_kwargs", {}),
        "num_classes": len(classes),
        "in_chans": in_chans,
        "input_size": [in_chans, side, side],
        "image_size": image_size,
        "crop": crop,
        "classes": list(classes),
    }


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    spec: dict,
    *,
    ema: Optional[nn.Module] = None,
    state: Optional[dict] = None,
    info: Optional[dict] = None,
) -> Path:
    """Write model weights (+ EMA weights, + resumable ``state``) atomically to ``path``.

    ``info`` is free JSON (epoch, metrics, config, commit) shown by ``lrfer`` and read by tools.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in _unwrap(model).state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous()
    if ema is not None:
        for k, v in _unwrap(ema).state_dict().items():
            tensors[f"ema/{k}"] = v.detach().cpu().contiguous()
    skeleton = _flatten(state, "s", tensors) if state is not None else None
    meta = {"format": FORMAT, "model": spec, "info": info or {}, "state": skeleton}
    return write_safetensors(path, tensors, _META_KEY, meta)


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta_key: str, meta: dict) -> Path:
    """Atomically write tensors + JSON metadata (see :mod:`lrfer.files`)."""
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={meta_key: json.dumps(meta)}))


def read_safetensors(path: Path, meta_key: str, fmt: str, what: str, hint: str, article: str = "a") -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and JSON metadata of a file written by :func:`write_safetensors`; anything else is
    an LrferError naming the file (``what`` names the kind of file, ``hint`` what to do)."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(meta_key)
    except (SafetensorError, OSError, ValueError) as err:
        raise LrferError(f"{path} is not a readable {what} ({err})", hint) from None
    if raw is None:
        raise LrferError(f"{path} is a safetensors file but not {article} {what} (no description inside)", hint)
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        raise LrferError(f"{path}: its description is not valid JSON", hint) from None
    if not isinstance(meta, dict):
        raise LrferError(f"{path}: its description is a JSON {type(meta).__name__}, not an object", hint)
    if meta.get("format") != fmt:
        raise LrferError(f"{path} has format {meta.get('format')!r}, this lrfer reads {fmt!r}", hint)
    return tensors, meta


def update_spec(path_in: str | os.PathLike, changes: dict, path_out: str | os.PathLike | None = None) -> Path:
    """Rewrite a checkpoint with keys of its model spec set (a value of ``None`` removes the key);
    weights, info and training state are kept. Written atomically to ``path_out`` (default: over
    ``path_in``). Used for what is decided after training: the abstention rule and the training
    class shares (docs/trust.md)."""
    path_in = Path(path_in)
    load_checkpoint(path_in)  # the one-line errors of a missing or foreign file
    tensors, meta = read_safetensors(path_in, _META_KEY, FORMAT, "lrfer checkpoint", "use a file written by `lrfer train`", article="an")
    for key, value in changes.items():
        if value is None:
            meta["model"].pop(key, None)
        else:
            meta["model"][key] = value
    out = Path(path_out) if path_out is not None else path_in
    try:
        return write_safetensors(out, tensors, _META_KEY, meta)
    except OSError as err:
        raise LrferError(f"cannot write {out} ({err.strerror or err})", "choose a writable path") from None


#: What a reading replaces in the model's description: its temperature and the abstention rule and
#: training class shares fitted for it (docs/trust.md, "Readings").
READING_FIELDS = ("temperature", "abstain", "class_prior")
_READING_HINT = "fit one with `lrfer add-reading`, or leave --reading out for the model's own"


def add_reading(path_in: str | os.PathLike, name: str, head: dict[str, torch.Tensor], record: dict, path_out: str | os.PathLike | None = None) -> Path:
    """Store a reading in a checkpoint: ``head`` (the classifier's tensors, by their names in the
    model, e.g. ``classifier.weight``) and ``record`` (its ``temperature``, ``abstain``,
    ``class_prior`` and how it was fitted), beside the model's own head, which is kept. Written
    atomically to ``path_out`` (default: over ``path_in``)."""
    path_in = Path(path_in)
    ckpt = load_checkpoint(path_in)
    if not name.replace("-", "").replace("_", "").isalnum() or name == "default":
        raise LrferError(f"reading name {name!r}", "use letters, digits, '-' or '_', and not 'default' (the model's own)")
    have = ckpt.weights("model")
    for key, value in head.items():
        if key not in have or have[key].shape != value.shape:
            raise LrferError(f"reading '{name}': {key} {tuple(value.shape)} is not a tensor of {ckpt.spec['name']}", "fit the head on this checkpoint's own embeddings")
    tensors, meta = read_safetensors(path_in, _META_KEY, FORMAT, "lrfer checkpoint", "use a file written by `lrfer train`", article="an")
    prefix = f"reading/{name}/"
    tensors = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    tensors.update({prefix + k: v.detach().float().cpu().contiguous() for k, v in head.items()})
    meta["model"].setdefault("readings", {})[name] = record
    out = Path(path_out) if path_out is not None else path_in
    try:
        return write_safetensors(out, tensors, _META_KEY, meta)
    except OSError as err:
        raise LrferError(f"cannot write {out} ({err.strerror or err})", "choose a writable path") from None


class Checkpoint:
    """A loaded checkpoint: ``spec`` (model recipe), ``info``, and tensor tables."""

    def __init__(self, path: Path, meta: dict, tensors: dict[str, torch.Tensor]):
        self.path = path
        self.spec: dict = meta["model"]
        self.info: dict = meta.get("info", {})
        self._skeleton = meta.get("state")
        self._tensors = tensors

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.spec["classes"])

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.spec["input_size"])  # type: ignore[return-value]

    def weights(self, which: str = "model") -> dict[str, torch.Tensor]:
        prefix = which + "/"
        return {k[len(prefix) :]: v for k, v in self._tensors.items() if k.startswith(prefix)}

    @property
    def readings(self) -> dict[str, dict]:
        """The readings stored beside the model's own head (:func:`add_reading`), by name."""
        return dict(self.spec.get("readings") or {})

    @property
    def reading(self) -> str:
        """Which reading this checkpoint answers with: ``default`` (its own head) or a stored one's name."""
        return str(self.spec.get("reading", "default"))

    def with_reading(self, name: Optional[str]) -> "Checkpoint":
        """This checkpoint answering with reading ``name``: its head's tensors (model and EMA) and
        the fields of :data:`READING_FIELDS` replaced by the reading's; ``None`` or ``default``:
        itself. Everything downstream (evaluation, export, the Recognizer) sees a plain checkpoint."""
        if name in (None, "default"):
            return self
        record = self.readings.get(name)
        if record is None:
            have = f"it has: default, {', '.join(self.readings)}" if self.readings else "only its own"
            raise LrferError(f"{self.path} has no reading '{name}' ({have})", _READING_HINT)
        prefix = f"reading/{name}/"
        head = {k[len(prefix) :]: v for k, v in self._tensors.items() if k.startswith(prefix)}
        if not head or any(f"model/{k}" not in self._tensors or self._tensors[f"model/{k}"].shape != v.shape for k, v in head.items()):
            raise LrferError(f"{self.path}: its reading '{name}' has no head that fits the model", "fit it again with `lrfer add-reading`")
        tensors = dict(self._tensors)
        for key, value in head.items():
            for which in ("model", "ema"):
                if f"{which}/{key}" in tensors:
                    tensors[f"{which}/{key}"] = value
        spec = {k: v for k, v in self.spec.items() if k not in READING_FIELDS}
        spec.update({k: record[k] for k in READING_FIELDS if record.get(k) is not None})
        spec["reading"] = name
        return Checkpoint(self.path, {"model": spec, "info": self.info, "state": self._skeleton}, tensors)

    @property
    def has_ema(self) -> bool:
        return any(k.startswith("ema/") for k in self._tensors)

    @property
    def state(self) -> Optional[dict]:
        return None if self._skeleton is None else _unflatten(self._skeleton, self._tensors)

    def build_model(self, prefer_ema: bool = True) -> nn.Module:
        """Rebuild the network from the spec and load its weights (EMA weights when present)."""
        spec = self.spec
        try:
            model = create_model(spec["name"], num_classes=spec["num_classes"], in_chans=spec["in_chans"], **spec.get("kwargs", {}))
        except TypeError as err:  # a keyword the model does not take: a foreign or edited description
            raise LrferError(f"{self.path}: its model cannot be built from its description ({err})", "use a file written by `lrfer train` (or retrain)") from None
        load_weights(model, self, "ema" if prefer_ema and self.has_ema else "model")
        return model.eval()


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint without executing anything from it; bad files raise LrferError."""
    path = Path(path)
    if not path.exists():
        raise LrferError(f"no such checkpoint: {path}", "give the path of a .safetensors file written by `lrfer train`")
    tensors, meta = read_safetensors(path, _META_KEY, FORMAT, "lrfer checkpoint", "use a file written by `lrfer train` (or retrain)", article="an")
    _check_spec(path, meta.get("model"))
    if not isinstance(meta.get("info", {}), dict):
        raise LrferError(f"{path}: its info is a JSON {type(meta['info']).__name__}, not an object", "use a file written by `lrfer train` (or retrain)")
    try:
        problem = _state_problem(meta.get("state"), tensors)
    except RecursionError:
        problem = "is nested too deeply"
    if problem:
        raise LrferError(f"{path}: its training state {problem}", "use a file written by `lrfer train` (or retrain)")
    return Checkpoint(path, meta, tensors)


def _state_problem(obj: Any, tensors: dict[str, torch.Tensor]) -> Optional[str]:
    """What is wrong with a state skeleton (see :func:`_flatten`), or None: checked at load, so that
    a damaged file fails there, in one line, rather than in ``Checkpoint.state`` deep in a resume."""
    if isinstance(obj, dict) and "__tensor__" in obj:
        return None if isinstance(obj["__tensor__"], str) and obj["__tensor__"] in tensors else f"refers to a missing tensor {obj['__tensor__']!r}"
    if isinstance(obj, dict) and "__dict__" in obj:
        pairs = obj["__dict__"]
        if not (isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 and not isinstance(p[0], (list, dict)) for p in pairs)):
            return "holds a table that is not a list of [key, value] pairs"
        return next((e for e in (_state_problem(v, tensors) for _, v in pairs) if e), None)
    if isinstance(obj, list):
        return next((e for e in (_state_problem(v, tensors) for v in obj) if e), None)
    return None


def _check_spec(path: Path, spec) -> None:
    """The model description's fields are there and of their types, and its class names are as
    many as its outputs: an edited or foreign description fails here, in one line naming the file."""
    types = {"name": str, "num_classes": int, "in_chans": int, "kwargs": dict, "input_size": list}
    problem = "is not an object" if not isinstance(spec, dict) else next(
        (f"has no valid '{k}'" for k, t in types.items() if not isinstance(spec.get(k, {} if k == "kwargs" else None), t)), None
    )
    readings = spec.get("readings", {}) if isinstance(spec, dict) else {}
    if problem is None and not (isinstance(readings, dict) and all(isinstance(r, dict) for r in readings.values())):
        problem = "has readings that are not a table of objects"
    classes = spec.get("classes") if isinstance(spec, dict) else None
    if problem is None and classes is not None:
        if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)) or len(classes) != spec["num_classes"]:
            problem = f"names {len(classes) if isinstance(classes, list) else 'no list of'} classes for {spec['num_classes']} outputs"
    if problem is not None:
        raise LrferError(f"{path}: its model description {problem}", "use a file written by `lrfer train` (or retrain)")


def load_weights(model: nn.Module, ckpt: Checkpoint, which: str = "model") -> None:
    """Load weights into ``model``; a checkpoint of another architecture or class count is a clear error."""
    target = _unwrap(model)
    want = target.state_dict()
    have = ckpt.weights(which)
    name = getattr(target, "model_name", type(target).__name__)
    missing = [k for k in want if k not in have]
    shape = [k for k in want if k in have and have[k].shape != want[k].shape]
    if missing or shape or len(have) != len(want):
        what = f"{ckpt.path} holds a '{ckpt.spec['name']}' with {ckpt.spec['num_classes']} classes"
        raise LrferError(
            f"{what}, which does not fit a '{name}' with {getattr(target, 'num_classes', '?')} classes"
            + (f" ({len(missing)} missing tensors" if missing else " (")
            + (f", {len(shape)} of other shape)" if shape else ")"),
            "pass the matching --model / --checkpoint, or train a new checkpoint",
        )
    target.load_state_dict(have)

