"""Model zoo: one file per family, each registering its entry points with ``@register_model``.

The families are listed here by name, so what ``import lrfer.models`` loads is visible: networks
only (torch), nothing from data, evaluation or training. Adding a family is adding its file and a
line below.
"""

from . import airnet, cnn2x2, edsr, front_end, lrernet, resnet50sr, resnet_fer, seresnet, srgan, stn, xception  # noqa: F401  (imported to register their entry points)
from ._base import FERModel
from ._registry import create_model, is_model, list_models, register_model

__all__ = ["FERModel", "create_model", "is_model", "list_models", "register_model"]
