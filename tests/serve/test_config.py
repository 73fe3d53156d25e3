"""The TOML config: every default valid, every mistake one line that names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrfer.errors import LrferError
from lrfer.serve.config import ServeConfig, load_config, validate

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_and_the_shipped_example_are_valid():
    assert ServeConfig().server.host == "127.0.0.1"  # loopback unless told otherwise
    cfg = load_config(ROOT / "deploy" / "lrfer.toml")
    assert cfg.cameras[0].id == "lounge" and cfg.cameras[0].masks and cfg.server.db.startswith("postgresql")


def test_a_rule_left_at_its_defaults_takes_those_of_its_method():
    cfg = validate({"rules": [{"name": "a"}, {"name": "b", "method": "window"}, {"name": "c", "scope": "zone"},
                              {"name": "d", "method": "window", "threshold": 0.6, "min_observations": 4}]}, "lrfer.toml")  # fmt: skip
    got = {r.name: (r.method, r.threshold, r.min_observations) for r in cfg.rules}
    # a track rule adds up evidence; a window (and every zone rule, always a window) asks for more of it
    assert got == {"a": ("cusum", 0.65, 6), "b": ("window", 0.7, 12), "c": ("window", 0.7, 12), "d": ("window", 0.6, 4)}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"cameras": [{"id": "a", "url": "x.mp4", "fps": -2}]}, "cameras[0].fps"),
        ({"serverr": {}}, "serverr: unknown key"),
        ({"cameras": [{"id": "Lounge 1", "url": "x"}]}, "cameras[0].id"),
        ({"cameras": [{"id": "a", "url": "x", "masks": [[[0, 0], [2, 0], [1, 1]]]}]}, "cameras[0].masks"),
        ({"cameras": [{"id": "a", "url": "x"}, {"id": "a", "url": "y"}]}, "camera ids repeat: a"),
        ({"rules": [{"scope": "room"}]}, "rules[0].scope"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"webhooks": [{"url": "ftp://x"}]}, "webhooks[0].url"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(data, key):
    with pytest.raises(LrferError) as err:
        validate(data, "lrfer.toml")
    msg = str(err.value)
    assert msg.startswith("lrfer.toml: ") and key in msg and "\n" not in msg


def test_toml_syntax_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport = 1\n")
    with pytest.raises(LrferError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(LrferError, match="no such config file"):
        load_config(tmp_path / "nope.toml")
