"""Seed inputs, made by code: one small valid input (or a few) per target, so that the fuzzer's
mutations start from files the parsers accept and reach past their first check."""

from __future__ import annotations

import io
import json
import struct

import numpy as np


def tiny_png(mode: str = "L", size: tuple[int, int] = (8, 8)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, 128).save(out, "PNG")
    return out.getvalue()


def tiny_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (8, 8), 90).save(out, "JPEG", quality=50)
    return out.getvalue()


def _images() -> list[tuple[str, bytes]]:
    from PIL import Image

    seeds = [("gray.png", tiny_png()), ("rgba.png", tiny_png("RGBA")), ("face.jpg", tiny_jpeg())]
    for fmt, mode in (("GIF", "P"), ("BMP", "RGB"), ("TIFF", "I;16"), ("WEBP", "RGB"), ("PPM", "RGB")):
        out = io.BytesIO()
        Image.new(mode, (6, 5), 7).save(out, fmt)
        seeds.append((f"small.{fmt.lower()}", out.getvalue()))
    return seeds


def _csvs() -> list[tuple[str, bytes]]:
    pixels = " ".join(str(v % 256) for v in range(48 * 48))
    fer = f"emotion,pixels,Usage\n3,{pixels},Training\n0,{pixels},PublicTest\n"
    votes = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
             "Training,fer0000000.png,4,0,0,1,3,2,0,0,0,0\n"
             "PublicTest,fer0000001.png,0,10,0,0,0,0,0,0,0,0\n")
    return [("fer2013.csv", fer.encode()), ("fer2013new.csv", votes.encode())]


def _npzs() -> list[tuple[str, bytes]]:
    plain = io.BytesIO()
    np.savez(plain, images=np.full((2, 4, 4), 9, np.uint8), labels=np.array([0, 1]),
             class_names=np.array(["happy", "sad"]), split=np.array(["train", "test"]), groups=np.array(["a", "b"]))
    shared = io.BytesIO()
    np.savez(shared, images=np.zeros((2, 48, 48), np.uint8), labels=np.array([3, 0]),
             class_names=np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]),
             usage=np.array(["Training", "PublicTest"]), row_index=np.array([0, 1]), dup_group_id=np.array([0, 1]),
             ferplus_votes=np.array([[4, 0, 0, 1, 3, 2, 0, 0, 0, 0], [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]]),
             ferplus_columns=np.array(["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                       "contempt", "unknown", "NF"]))
    return [("plain.npz", plain.getvalue()), ("fer2013.npz", shared.getvalue())]


def safetensors_bytes(meta_text: str, tensors: dict[str, np.ndarray]) -> bytes:
    """A safetensors file of float32 ``tensors`` with ``meta_text`` as the lrfer description, built
    by hand (no torch): the fuzzer's text lands in the metadata of an otherwise valid file."""
    header: dict = {"__metadata__": {"lrfer": meta_text}}
    blobs, offset = [], 0
    for key, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


#: The tensors of the files that carry fuzzed metadata: a weight and one optimizer state tensor.
META_TENSORS = {"model/w": np.ones((2, 3), np.float32), "state/s.opt": np.zeros(2, np.float32)}


def checkpoint_meta() -> dict:
    """The description a training checkpoint carries (``save_checkpoint``'s), with a resumable state."""
    spec = {"name": "resnet18_fer_slim", "kwargs": {}, "num_classes": 2, "in_chans": 1, "input_size": [1, 48, 48],
            "image_size": 48, "crop": 0, "classes": ["happy", "sad"]}
    state = {"__dict__": [["epoch", 3], ["optimizer", {"__dict__": [[0, {"__tensor__": "state/s.opt"}]]}], ["rng", [1, 2]]]}
    return {"format": "lrfer-checkpoint/1", "model": spec, "info": {"epoch": 3, "val_acc": 0.5}, "state": state}


def _checkpoints() -> list[tuple[str, bytes]]:
    text = json.dumps(checkpoint_meta())
    return [("meta.json", text.encode()), ("last.safetensors", safetensors_bytes(text, META_TENSORS))]


def _recipes() -> list[tuple[str, bytes]]:
    recipe = """model = "resnet18_fer_slim"
model_kwargs = { zero_init_residual = false }
image_size = 48
epochs = 2
batch_size = 32
optimizer = "adamw"
lr = 0.01
schedule = "cosine"
label_smoothing = 0.1
freeze = ["stem"]
[augment]
crop = 44
erase_area = [0.02, 0.2]
[paper]
accuracy = 0.7
"""
    return [("mine.toml", recipe.encode()), ("variant.toml", b'base = "cpu_quick"\nepochs = 1\n[augment]\ncrop = 40\n')]


def _annotations() -> list[tuple[str, bytes]]:
    return [("list_patition_label.txt", b"train_00001.jpg 5\ntest_00002.jpg 1\n"),
            ("v1.txt", b"Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other\n4\n-1\n"),
            ("emotion.txt", b"   3.0000000e+00\n")]


#: Target name -> its seeds as (file name, bytes).
SEEDS = {
    "csv": _csvs,
    "npz": _npzs,
    "image": _images,
    "checkpoint": _checkpoints,
    "recipe": _recipes,
    "annotations": _annotations,
}


def seeds(target: str) -> list[tuple[str, bytes]]:
    return SEEDS[target]()
