"""Model zoo: every family registers its entry points on import."""

from . import cnn2x2, resnet_fer  # noqa: F401  (registration side effect)
from .base import FERModel
from .registry import create_model, is_model, list_models, register_model

__all__ = ["FERModel", "create_model", "is_model", "list_models", "register_model"]
