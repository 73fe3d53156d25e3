"""The registered models as a table, read without importing the models (or torch).

The file is written from the live registry by ``tools/write_model_catalog.py``
(:func:`lrfer.models._registry.catalog`), and a test keeps the two equal."""

from __future__ import annotations

import json
from pathlib import Path

CATALOG = Path(__file__).resolve().parent.parent / "assets" / "models.json"


def read_catalog() -> list[dict[str, str]]:
    """One row per registered model: ``model``, ``kind``, ``params``, ``about``."""
    return json.loads(CATALOG.read_text(encoding="utf-8"))
