"""The fuzz targets: one function per parser of untrusted bytes, each taking the bytes a fuzzer made.

The contract every target checks is the project's: bad bytes give one :class:`LrferError` (or the
reader's own documented error, :class:`ImageReadError` for images), never another exception. A
target returns (how many of its parsers accepted the bytes) when the parser accepted the bytes or refused them with one of
:data:`EXPECTED`; anything else propagates, and the fuzz runner (``fuzz/run.py``) saves the input
under ``tests/hostile/fuzz_crashes/<target>/`` for ``tests/hostile/test_fuzz_regressions.py``.

Files are written into one scratch folder per process (made once: a fuzzer calls a target
hundreds of thousands of times), because the readers take paths, as the command line gives them.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lrfer.data.readers import affwild2, ckplus, detect_format, fer2013_csv, ferplus, npz, rafdb
from lrfer.errors import LrferError
from lrfer.files import ImageReadError, decode_image
from lrfer.infer.pipeline import read_image
from lrfer.models.checkpoint import load_checkpoint
from lrfer.train.config import load_config

from .seeds import META_TENSORS, safetensors_bytes, tiny_jpeg, tiny_png

#: The errors a parser may raise for bad bytes; any other exception is a crash.
EXPECTED = (LrferError, ImageReadError)

_scratch: Path | None = None


def scratch() -> Path:
    """This process's scratch folder, with the fixed files the targets need beside the fuzzed one."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="lrfer-fuzz-"))
        _fixtures(_scratch)
    return _scratch


def cleanup() -> None:
    global _scratch
    if _scratch is not None:
        shutil.rmtree(_scratch, ignore_errors=True)
        _scratch = None


def _fixtures(root: Path) -> None:
    """The fixed half of the two-file formats: FERPlus votes need FER2013 pixels, and the
    annotation formats need one real frame per listed image, so the fuzzed file is read past
    'image missing' into its own parsing."""
    np.savez(root / "pixels.npz", images=np.zeros((2, 48, 48), np.uint8), labels=np.array([3, 0]),
             usage=np.array(["Training", "PublicTest"]), row_index=np.array([0, 1]))
    jpg, png = tiny_jpeg(), tiny_png()
    for i in (1, 2):
        (root / "raf/Image/aligned").mkdir(parents=True, exist_ok=True)
        (root / f"raf/Image/aligned/train_0000{i}_aligned.jpg").write_bytes(jpg)
        (root / f"raf/Image/aligned/test_0000{i}_aligned.jpg").write_bytes(jpg)
        (root / "aw/cropped_aligned/v1").mkdir(parents=True, exist_ok=True)
        (root / f"aw/cropped_aligned/v1/{i:05d}.jpg").write_bytes(jpg)
        (root / "ck/cohn-kanade-images/S005/001").mkdir(parents=True, exist_ok=True)
        (root / f"ck/cohn-kanade-images/S005/001/S005_001_0000000{i}.png").write_bytes(png)
    (root / "raf/EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "aw/EXPR_Set/Train_Set").mkdir(parents=True, exist_ok=True)
    (root / "ck/Emotion/S005/001").mkdir(parents=True, exist_ok=True)


def _accepted(*reads: Callable[[], object]) -> int:
    """How many of ``reads`` accepted the input; a refusal within the contract counts as none."""
    n = 0
    for read in reads:
        try:
            read()
            n += 1
        except EXPECTED:
            pass
    return n


def _put(name: str, data: bytes) -> Path:
    path = scratch() / name
    path.write_bytes(data)
    return path


def fuzz_csv(data: bytes) -> int:
    """The csv readers: Kaggle's fer2013.csv, and FERPlus's fer2013new.csv (joined to fixed pixels)."""
    path = _put("fer2013.csv", data)
    _accepted(lambda: detect_format(path))  # the header sniffing of load_dataset: run, not counted
    return _accepted(lambda: fer2013_csv(path),
                     lambda: ferplus(_put("fer2013new.csv", data), fer2013=scratch() / "pixels.npz"))


def fuzz_npz(data: bytes) -> int:
    """The npz reader, with the archive's own labels and with its FERPlus votes."""
    path = _put("set.npz", data)
    return _accepted(lambda: npz(path), lambda: npz(path, labels="ferplus"))


def _gray(data: bytes) -> None:
    im = decode_image(data, "L")
    assert im.mode == "L", im.mode


def _rgb(path: Path) -> None:
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape


def fuzz_image(data: bytes) -> int:
    """The image decoder: bytes in memory (an upload) as grey, and a file as RGB (``lrfer predict``).
    A warning that escapes the decoder counts as a crash too: it would print on stderr."""
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        n = _accepted(lambda: _gray(data), lambda: _rgb(_put("face.img", data)))
    assert not shown, f"the decoder let a warning out: {shown[0].category.__name__}: {shown[0].message}"
    return n


def _use_checkpoint(path: Path) -> None:
    """Load, then read every part a caller reads: the description, the info, the resumable state."""
    ckpt = load_checkpoint(path)
    if ckpt.spec.get("classes") is not None:  # a super-resolution model has none (FaceClassifier checks first)
        assert isinstance(ckpt.classes, tuple)
    assert len(ckpt.input_size) >= 1
    assert isinstance(ckpt.info, dict), type(ckpt.info)
    ckpt.weights("model"), ckpt.weights("ema"), ckpt.has_ema
    state = ckpt.state
    assert state is None or isinstance(state, dict), type(state)


def fuzz_checkpoint(data: bytes) -> int:
    """The checkpoint loader: the bytes as a whole file, and as the JSON description of a valid one."""
    raw = _put("raw.safetensors", data)
    wrapped = _put("meta.safetensors", safetensors_bytes(data.decode("utf-8", "replace"), META_TENSORS))
    return _accepted(lambda: _use_checkpoint(raw), lambda: _use_checkpoint(wrapped))


def fuzz_recipe(data: bytes) -> int:
    """The recipe loader: a user's TOML recipe, read and validated as ``lrfer train --recipe`` does,
    alone and with command-line flags over it (``--epochs``, ``--degrade-p``)."""
    path = _put("recipe.toml", data)
    return _accepted(lambda: load_config(str(path)).validate(),
                     lambda: load_config(str(path), epochs=1, augment={"degrade_p": 0.5}).validate())


def fuzz_annotations(data: bytes) -> int:
    """The text label files of the folder datasets: RAF-DB's list, an Aff-Wild2 EXPR file, a CK+ code."""
    root = scratch()
    (root / "raf/EmoLabel/list_patition_label.txt").write_bytes(data)
    (root / "aw/EXPR_Set/Train_Set/v1.txt").write_bytes(data)
    (root / "ck/Emotion/S005/001/S005_001_00000002_emotion.txt").write_bytes(data)
    return _accepted(lambda: rafdb(root / "raf"), lambda: affwild2(root / "aw"), lambda: ckplus(root / "ck"))


#: Target name -> the function that feeds it one input.
TARGETS: dict[str, Callable[[bytes], int]] = {
    "csv": fuzz_csv,
    "npz": fuzz_npz,
    "image": fuzz_image,
    "checkpoint": fuzz_checkpoint,
    "recipe": fuzz_recipe,
    "annotations": fuzz_annotations,
}
