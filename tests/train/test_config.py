"""Recipe files: a variant names its ``base`` and states only how it differs."""

from __future__ import annotations

import pytest

from lrfer.errors import LrferError
from lrfer.train.config import load_config, read_recipe


def test_variant_inherits_its_base_and_overrides_tables_key_by_key(tmp_path):
    variant = tmp_path / "variant.toml"
    variant.write_text('base = "fer2013_cpu30_airnet"\nlr = 0.01\n[augment]\ndegrade_p = 0.1\n')
    base, cfg = load_config("fer2013_cpu30_airnet"), load_config(str(variant))
    assert cfg.recipe == "variant" and cfg.lr == 0.01 and cfg.augment.degrade_p == 0.1
    assert cfg.augment.degrade_max == base.augment.degrade_max and cfg.model_kwargs == base.model_kwargs
    assert cfg.time_budget_minutes == base.time_budget_minutes and "base" not in read_recipe(str(variant))


def test_recipe_bases_in_a_loop_are_one_clear_error(tmp_path):
    (tmp_path / "a.toml").write_text(f'base = "{tmp_path / "b.toml"}"\n')
    (tmp_path / "b.toml").write_text(f'base = "{tmp_path / "a.toml"}"\n')
    with pytest.raises(LrferError, match="loop"):
        read_recipe(str(tmp_path / "a.toml"))
