import json

import pytest
import torch
from safetensors.torch import save_file

from lrfer.errors import LrferError
from lrfer.models import create_model
from lrfer.models.checkpoint import load_checkpoint, load_weights, model_spec, save_checkpoint

CLASSES = ("angry", "happy", "neutral")


def small_model(**kw):
    return create_model("resnet18_fer_slim", num_classes=3, in_chans=1, width=8, blocks=(1, 1), **kw)


def test_roundtrip_rebuilds_model_and_state(tmp_path):
    m = small_model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.rand(2, 1, 48, 48)).sum().backward()
    opt.step()
    spec = model_spec(m, CLASSES, in_chans=1, image_size=48, crop=44)
    path = save_checkpoint(tmp_path / "c.safetensors", m, spec, state={"optimizer": opt.state_dict(), "epoch": 3}, info={"note": "x"})
    ck = load_checkpoint(path)
    assert ck.classes == CLASSES and ck.input_size == (1, 44, 44) and ck.info["note"] == "x"
    m2 = ck.build_model()
    m.eval()
    x = torch.rand(3, 1, 48, 48)
    assert torch.allclose(m(x), m2(x))
    state = ck.state
    assert state["epoch"] == 3
    opt2 = torch.optim.SGD(m2.parameters(), lr=0.1, momentum=0.9)
    opt2.load_state_dict(state["optimizer"])
    assert torch.equal(opt2.state_dict()["state"][0]["momentum_buffer"], opt.state_dict()["state"][0]["momentum_buffer"])
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file is gone


def test_wrong_architecture_or_class_count_is_a_clear_error(tmp_path):
    m = small_model()
    path = save_checkpoint(tmp_path / "c.safetensors", m, model_spec(m, CLASSES, 1, 48))
    other = create_model("resnet18_fer_slim", num_classes=7, in_chans=1, width=8, blocks=(1, 1))
    with pytest.raises(LrferError, match="3 classes.*does not fit.*7 classes"):
        load_weights(other, load_checkpoint(path))
    with pytest.raises(LrferError, match="does not fit"):
        load_weights(create_model("cnn2x2", num_classes=3), load_checkpoint(path))


def test_bad_files(tmp_path):
    with pytest.raises(LrferError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(LrferError, match="not a readable lrfer checkpoint"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(LrferError, match="not an lrfer checkpoint"):
        load_checkpoint(foreign)
    # a truncated copy of a real checkpoint
    m = small_model()
    good = save_checkpoint(tmp_path / "good.safetensors", m, model_spec(m, CLASSES, 1, 48))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(LrferError):
        load_checkpoint(cut)


def test_metadata_is_plain_json(tmp_path):
    m = small_model()
    path = save_checkpoint(tmp_path / "c.safetensors", m, model_spec(m, CLASSES, 1, 48))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["lrfer"])
    assert meta["model"]["name"] == "resnet18_fer_slim" and meta["model"]["kwargs"] == {"width": 8, "blocks": [1, 1]}
