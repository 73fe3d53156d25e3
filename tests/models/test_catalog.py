"""`lrfer models` reads a stored table of the registry: it must say what the registry says."""

from __future__ import annotations

from lrfer.models._registry import catalog
from lrfer.runtime.catalog import read_catalog


def test_stored_catalog_matches_the_registry():
    assert read_catalog() == catalog(), "run `python tools/write_model_catalog.py` after changing a registered model"
