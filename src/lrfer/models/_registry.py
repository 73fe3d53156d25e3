"""A timm-style model registry: ``@register_model`` entry points and ``create_model(name, **kw)``."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import LrferError, closest

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an entry point under its function name (``def cnn2x2(**kw)`` -> ``"cnn2x2"``)."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model '{name}' is registered twice")
    _MODELS[name] = fn
    return fn


def register_sr_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a super-resolution entry point: ``list_models("sr")`` lists it, ``list_models("classifier")`` does not."""
    fn.is_classifier = False  # type: ignore[attr-defined]
    return register_model(fn)


def list_models(kind: str | None = None) -> list[str]:
    """Registered names; ``kind="classifier"`` or ``"sr"`` (super-resolution: entry points
    registered with :func:`register_sr_model`) selects one kind."""
    if kind is None:
        return sorted(_MODELS)
    want_classifier = kind == "classifier"
    return sorted(n for n, fn in _MODELS.items() if getattr(fn, "is_classifier", True) == want_classifier)


def describe(name: str) -> str:
    """First line of a model entry point's docstring."""
    doc = (_MODELS[name].__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def is_model(name: str) -> bool:
    return name in _MODELS


def create_model(name: str, num_classes: int = 7, in_chans: int = 1, **kwargs) -> nn.Module:
    """Build a registered model; an unknown name raises LrferError with the closest match."""
    if name not in _MODELS:
        raise LrferError(f"unknown model '{name}'", closest(name, _MODELS) + " (`lrfer models` lists them)")
    model = _MODELS[name](num_classes=num_classes, in_chans=in_chans, **kwargs)
    # Remember how the model was built so that a checkpoint can rebuild it without code.
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model


def catalog() -> list[dict[str, str]]:
    """One row per registered model: ``model``, ``kind``, ``params`` (millions, as text), ``about``.
    ``tools/write_model_catalog.py`` stores it for ``lrfer models`` (:mod:`lrfer.runtime.catalog`),
    which must answer without importing torch."""
    rows = []
    classifiers = set(list_models("classifier"))
    for name in list_models():
        m = create_model(name)
        params = sum(p.numel() for p in m.parameters()) / 1e6
        rows.append({"model": name, "kind": "classifier" if name in classifiers else "super-resolution", "params": f"{params:.2f}M", "about": describe(name)})
    return rows
