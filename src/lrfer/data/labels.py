"""The canonical expression label space and each dataset's mapping onto it.

Every reader names its classes in the canonical vocabulary below, so that a model trained on one
dataset can be evaluated on another by name, and so that CK+'s "sadness", FERPlus's "happiness"
and FER2013's "sad"/"happy" mean the same thing everywhere downstream.
"""

from __future__ import annotations

from .._compat import Sequence
from ..errors import LrferError

#: The seven basic expressions in FER2013's order, then contempt (FERPlus, CK+).
CANONICAL: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")

#: Spellings used by the public datasets, mapped to canonical names.
ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "an": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "fe": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "ha": "happy",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
    "neutral": "neutral",
    "ne": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "co": "contempt",
}

#: Two-class regrouping used by studies that ask "is this person well?" (e.g. the elderly-faces
#: set of the LRERNet paper): happy (and surprise) against everything else.
BINARY_POSITIVE: tuple[str, ...] = ("happy", "surprise")


def canonical_name(name: str) -> str:
    """Canonical spelling of a class name; raises LrferError for a name no dataset uses."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    raise LrferError(
        f"unknown expression class '{name}'",
        "use one of: " + ", ".join(CANONICAL) + " (or a dataset spelling such as 'happiness', 'sadness', 'anger')",
    )


def canonical_order(names: Sequence[str]) -> tuple[str, ...]:
    """The given class names in canonical spelling, sorted in canonical order."""
    canon = {canonical_name(n) for n in names}
    return tuple(c for c in CANONICAL if c in canon)
