"""Hostile input through the Python API (issue 28): a bad argument or input of
:class:`lrfer.Recognizer` raises :class:`LrferError` (a ``ValueError``) whose message names it and
says what to do, never a bare ``FileNotFoundError``, ``TypeError`` or a silently changed result."""

from __future__ import annotations

import numpy as np
import pytest

from lrfer import Recognizer
from lrfer.errors import LrferError
from tests.hostile.test_cli_inputs import VIDEO


def _assert_clear(err: LrferError, name: str) -> None:
    text = str(err)
    assert name in text and err.hint, text  # names the culprit, and says what to do
    assert "\n" not in text and len(text) < 400, text


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"margin": -5}, "margin"),
        ({"margin": float("nan")}, "margin"),
        ({"margin": "wide"}, "margin"),
        ({"min_face": -1}, "min_face"),
        ({"min_face": 2.5}, "min_face"),
        ({"tta": "bogus"}, "tta"),
        ({"routes": [(16,)]}, "routes"),
        ({"routes": [(-16, None)]}, "-16"),
        ({"routes": 16}, "routes"),
        ({"model": 42}, "model"),
        ({"model": "no-such-model.safetensors"}, "no-such-model.safetensors"),
        ({"detector": "bogus"}, "bogus"),
        ({"backend": "bogus"}, "bogus"),
        ({"device": "tpu9"}, "tpu9"),
        ({"min_score": 5}, "min_score"),
        ({"min_score": float("nan")}, "min_score"),
        ({"upscale": -1}, "upscale"),
        ({"threads": 0}, "threads"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    with pytest.raises(LrferError) as err:
        Recognizer(**kwargs)
    _assert_clear(err.value, name)


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer()


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda tmp: tmp / "missing.jpg", "missing.jpg"),
        (lambda tmp: tmp, "Is a directory"),
        (lambda tmp: _file(tmp / "empty.png", b""), "empty.png"),
        (lambda tmp: _file(tmp / "text.png", b"hello"), "text.png"),
        (lambda tmp: np.random.rand(40, 40, 3), "uint8"),
        (lambda tmp: np.zeros((40, 40, 5), np.uint8), "(40, 40, 5)"),
        (lambda tmp: np.zeros(100, np.uint8), "(100,)"),
        (lambda tmp: b"garbage", "uint8"),
        (lambda tmp: None, "uint8"),
    ],
    ids=["missing-file", "a-folder", "zero-bytes", "text-as-png", "float-array", "five-channels", "one-dimensional", "raw-bytes", "none"],
)
def test_bad_images(recognizer, tmp_path, make, name):
    image = make(tmp_path)
    with pytest.raises(LrferError) as err:
        recognizer.predict(image)
    _assert_clear(err.value, name)


@pytest.mark.parametrize(
    "video, kwargs, name",
    [
        ("missing.mp4", {}, "missing.mp4"),
        (VIDEO, {"batch_frames": 0}, "batch_frames"),
        (VIDEO, {"alpha": 5}, "alpha"),
        (VIDEO, {"smoothing": "bogus"}, "bogus"),
    ],
)
def test_bad_streams(recognizer, video, kwargs, name):
    with pytest.raises(LrferError) as err:
        list(recognizer.stream(str(video), **kwargs))
    _assert_clear(err.value, name)


def test_good_settings_still_work(recognizer):
    """The checks refuse only what is wrong: numpy integers and a zero margin are fine."""
    rec = Recognizer(recognizer.classifier, detector=None, margin=0, min_face=np.int64(0), routes=[(np.int64(16), recognizer.classifier)])
    faces = rec.predict(np.full((48, 48, 3), 128, np.uint8))
    assert len(faces) == 1 and faces[0].label in rec.classes
