"""Model zoo: one file per family, each registering its entry points with ``@register_model``.

Every module in this package is imported here, so adding a family is adding a file.
"""

import importlib
import pkgutil

from .base import FERModel
from .registry import create_model, is_model, list_models, register_model

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["FERModel", "create_model", "is_model", "list_models", "register_model"]
