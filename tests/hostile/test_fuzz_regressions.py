"""The fuzzers' findings as regression tests, and the fuzz harness itself under test.

Every input ``make fuzz`` saved under ``tests/hostile/fuzz_crashes/<target>/`` (an input that
once made a parser raise something other than LrferError, hang or crash) is replayed through its
target, which must now accept it or refuse it with one LrferError (or the image decoder's
ImageReadError). And each target runs on its seeds, which its parsers must accept: so the harness
is tested in CI even when no crash file exists, and a target that refused everything (a broken
harness fuzzing nothing but its first check) would fail here.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")  # the readers and the checkpoint loader need it; not in the runtime-only install

from fuzz.seeds import SEEDS, seeds
from fuzz.targets import TARGETS, cleanup

CRASHES = Path(__file__).parent / "fuzz_crashes"
SAVED = sorted(CRASHES.glob("*/*.bin"))


@pytest.fixture(scope="module", autouse=True)
def _scratch():
    yield
    cleanup()


def test_every_target_has_seeds_and_every_saved_input_a_target():
    assert set(TARGETS) == set(SEEDS)
    assert {p.parent.name for p in SAVED} <= set(TARGETS), "a crash folder names no fuzz target"


@pytest.mark.parametrize("path", SAVED, ids=[f"{p.parent.name}/{p.stem[:12]}" for p in SAVED])
def test_saved_fuzz_input_keeps_the_contract(path: Path):
    data = path.read_bytes()
    assert hashlib.sha1(data).hexdigest() == path.stem, "a saved input is named by its SHA-1"
    start = time.monotonic()
    TARGETS[path.parent.name](data)  # any exception but LrferError/ImageReadError fails the test
    assert time.monotonic() - start < 20, "a saved input must not hang its parser (the fuzzer's timeout)"


@pytest.mark.parametrize("target", sorted(SEEDS))
def test_target_accepts_its_seeds(target: str):
    for name, data in seeds(target):
        assert TARGETS[target](data) > 0, f"no parser of '{target}' accepted its seed {name}"


@pytest.mark.parametrize("target", sorted(SEEDS))
def test_target_refuses_damaged_seeds_within_the_contract(target: str):
    """Each seed cut in half, and with its middle bytes inverted: refused (or read) within the
    contract: the damage a fuzzer makes first, checked without a fuzzer."""
    for _, data in seeds(target):
        half = data[: len(data) // 2]
        mid = len(data) // 2
        flipped = data[: mid - 4] + bytes(b ^ 0xFF for b in data[mid - 4 : mid + 4]) + data[mid + 4 :]
        for damaged in (half, flipped, b"", b"\x00" * 64):
            TARGETS[target](damaged)
