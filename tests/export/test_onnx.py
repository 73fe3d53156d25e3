import hashlib
import os

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lrfer.data.transforms import model_input
from lrfer.errors import LrferError
from lrfer.evaluate.calibration import set_checkpoint_temperature
from lrfer.export import export_onnx, quantize_int8, read_onnx_metadata
from lrfer.export.onnx import UnwritablePathError
from lrfer.infer.backends import OnnxClassifier, load_classifier
from lrfer.models import create_model
from lrfer.models.checkpoint import model_spec, save_checkpoint
from lrfer.predict.classifier import DEFAULT_CHECKPOINT, FaceClassifier

from ..conftest import FER2013_NPZ

PARITY = 1e-4
CLASSES = ("angry", "happy", "neutral", "sad")


@pytest.fixture(scope="module")
def fer_faces():
    """64 Training and 64 PublicTest FER2013 faces as uint8 (N, 1, 48, 48), or None without the data."""
    if not FER2013_NPZ.exists():
        return None
    with np.load(FER2013_NPZ) as d:
        images, usage = d["images"], d["usage"]
    rng = np.random.default_rng(0)
    train = rng.choice(np.flatnonzero(usage == "Training"), 64, replace=False)
    test = rng.choice(np.flatnonzero(usage == "PublicTest"), 64, replace=False)
    return {"train": images[np.sort(train)][:, None], "test": images[np.sort(test)][:, None]}


def random_faces(n, chans=1, h=48, w=48, seed=0):
    return torch.randint(0, 256, (n, chans, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory):
    return export_onnx(DEFAULT_CHECKPOINT, tmp_path_factory.mktemp("default") / "default.onnx")


@pytest.fixture(scope="module")
def rgb_checkpoint(tmp_path_factory):
    """A random-weight colour cnn2x2 trained on 40 px crops of 48 px faces, with per-image
    normalisation (Sub/Div/ReduceMean in the graph) and a temperature of 1.7."""
    torch.manual_seed(0)
    m = create_model("cnn2x2", num_classes=len(CLASSES), in_chans=3, input_size=40, input_norm="per_image", widths=(8, 16, 32), fc=32)
    m.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics, as a trained model has
        for _ in range(3):
            m(torch.rand(16, 3, 40, 40) * torch.rand(16, 1, 1, 1))
    path = tmp_path_factory.mktemp("rgb") / "rgb.safetensors"
    save_checkpoint(path, m.eval(), model_spec(m, CLASSES, in_chans=3, image_size=48, crop=40))
    return set_checkpoint_temperature(path, 1.7)


@pytest.fixture(scope="module")
def rgb_onnx(rgb_checkpoint):
    return export_onnx(rgb_checkpoint, rgb_checkpoint.with_suffix(".onnx"))


def max_diff(a, b):
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("n", [1, 7])
def test_default_model_parity(default_onnx, fer_faces, n):
    torch_clf = FaceClassifier.load(device="cpu")
    onnx_clf = load_classifier(default_onnx, threads=1)
    assert isinstance(onnx_clf, OnnxClassifier)
    faces = [random_faces(n, 1, 48, 48, seed=n), random_faces(n, 1, 61, 37, seed=n + 1)]  # any size is resized
    if fer_faces is not None:
        faces.append(torch.from_numpy(fer_faces["test"][:n]))
    for x in faces:
        want = torch_clf.predict_proba(x)
        got = onnx_clf.predict_proba(x)
        assert got.shape == (n, 7) and got.dtype == np.float32
        assert max_diff(got, want) <= PARITY
    # ten-crop: ten views per face go through the graph as one batch of 10 * n
    assert max_diff(onnx_clf.predict_proba(faces[-1], tta="tencrop"), torch_clf.predict_proba(faces[-1], tta="tencrop")) <= PARITY
    # the graph itself, fed the model's input directly
    x = model_input(faces[-1], in_chans=1, input_size=48, crop=44).numpy()
    sess = ort.InferenceSession(str(default_onnx), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = (torch_clf.model(torch.from_numpy(x)) / torch_clf.temperature).softmax(-1)
    assert max_diff(sess.run(None, {"images": x})[0], want) <= PARITY


@pytest.mark.parametrize("n", [1, 7])
def test_random_colour_model_parity_with_temperature(rgb_checkpoint, rgb_onnx, n):
    torch_clf = FaceClassifier.load(rgb_checkpoint, device="cpu")
    onnx_clf = OnnxClassifier.load(rgb_onnx, threads=1)
    x = random_faces(n, 3, 52, 52, seed=10 + n)
    want = torch_clf.predict_proba(x, tta="flip")
    assert max_diff(onnx_clf.predict_proba(x, tta="flip"), want) <= PARITY
    # gray faces are replicated to the model's 3 channels on both paths
    g = random_faces(n, 1, 48, 48, seed=20 + n)
    assert max_diff(onnx_clf.predict_proba(g), torch_clf.predict_proba(g)) <= PARITY
    # the temperature is inside the graph: probabilities are softmax(logits / 1.7)
    inp = model_input(x, in_chans=3, input_size=48, crop=40)
    with torch.no_grad():
        logits = torch_clf.model(inp)
    sess = ort.InferenceSession(str(rgb_onnx), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": inp.numpy()})[0]
    assert max_diff(got, (logits / 1.7).softmax(-1)) <= PARITY
    assert max_diff(got, logits.softmax(-1)) > 10 * PARITY


def test_static_batch_export_runs_any_number_of_faces(rgb_checkpoint, tmp_path):
    path = export_onnx(FaceClassifier.load(rgb_checkpoint, device="cpu"), tmp_path / "static.onnx", dynamic_batch=False)
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 3, 40, 40]
    x = random_faces(5, 3, 48, 48, seed=3)
    want = FaceClassifier.load(rgb_checkpoint, device="cpu").predict_proba(x)
    assert max_diff(OnnxClassifier.load(path).predict_proba(x, batch_size=2), want) <= PARITY


# ---------------------------------------------------------------------------------- metadata
def test_metadata_roundtrip(rgb_checkpoint, rgb_onnx, default_onnx):
    meta = read_onnx_metadata(rgb_onnx)
    assert meta["classes"] == CLASSES and meta["name"] == "cnn2x2"
    assert (meta["in_chans"], meta["image_size"], meta["crop"], meta["input_size"]) == (3, 48, 40, 40)
    assert meta["temperature"] == pytest.approx(1.7)
    assert meta["source"] == rgb_checkpoint.name
    assert meta["source_sha256"] == hashlib.sha256(rgb_checkpoint.read_bytes()).hexdigest()
    torch_clf, onnx_clf = FaceClassifier.load(rgb_checkpoint), OnnxClassifier.load(rgb_onnx)
    for attr in ("classes", "in_chans", "image_size", "crop", "name", "temperature"):
        assert getattr(onnx_clf, attr) == pytest.approx(getattr(torch_clf, attr)) if attr == "temperature" else getattr(onnx_clf, attr) == getattr(torch_clf, attr)
    d = read_onnx_metadata(default_onnx)
    assert (d["in_chans"], d["image_size"], d["crop"]) == (1, 48, 44) and len(d["classes"]) == 7
    assert not list(default_onnx.parent.glob("*.tmp"))
    # prepare() maps a foreign FaceSet onto the model's classes exactly as FaceClassifier does
    from ..conftest import make_faceset

    faces = make_faceset(n=12, classes=("angry", "happy", "surprise"), size=40)
    a, b = onnx_clf.prepare(faces), torch_clf.prepare(faces)
    assert a.classes == b.classes and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


# ------------------------------------------------------------------------------ quantization
def test_int8_model_agrees_with_float(default_onnx, fer_faces, tmp_path):
    calib = fer_faces["train"] if fer_faces is not None else random_faces(32).numpy()
    q = quantize_int8(default_onnx, tmp_path / "int8.onnx", calib)
    meta = read_onnx_metadata(q)
    assert meta["quantization"].startswith("int8") and meta["classes"] == read_onnx_metadata(default_onnx)["classes"]
    assert q.stat().st_size < default_onnx.stat().st_size / 2
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    qc, fc = OnnxClassifier.load(q, threads=1), OnnxClassifier.load(default_onnx, threads=1)
    faces = fer_faces["test"] if fer_faces is not None else random_faces(16, seed=4).numpy()
    pq, pf = qc.predict_proba(faces), fc.predict_proba(faces)
    assert pq.shape == pf.shape and np.allclose(pq.sum(-1), 1.0, atol=1e-4)
    if fer_faces is not None:
        agree = float((pq.argmax(-1) == pf.argmax(-1)).mean())
        assert agree >= 0.9
    # the readings' heads run on the int8 graph's embedding output
    for reading in read_onnx_metadata(default_onnx).get("readings", {}):
        rq, rf = (OnnxClassifier.load(path, threads=1, reading=reading).predict_proba(faces) for path in (q, default_onnx))
        assert np.allclose(rq.sum(-1), 1.0, atol=1e-4)
        if fer_faces is not None:
            assert float((rq.argmax(-1) == rf.argmax(-1)).mean()) >= 0.9


# ------------------------------------------------------------------------------------ errors
def test_export_errors(tmp_path, rgb_checkpoint):
    sr = create_model("edsr_light", num_classes=0, in_chans=1, scale=2)
    sr_path = save_checkpoint(tmp_path / "sr.safetensors", sr, model_spec(sr, (), 1, 24))
    with pytest.raises(LrferError, match="no classes"):
        export_onnx(sr_path, tmp_path / "sr.onnx")
    with pytest.raises(LrferError, match="cannot export a Cnn2x2"):
        export_onnx(create_model("cnn2x2"), tmp_path / "m.onnx")
    with pytest.raises(LrferError, match="no such checkpoint"):
        export_onnx(tmp_path / "missing.safetensors", tmp_path / "m.onnx")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(UnwritablePathError, match="cannot write"):  # its own type: the ONNX cache falls back on it
        export_onnx(rgb_checkpoint, blocker / "m.onnx")
    with pytest.raises(LrferError, match="is a folder"):
        export_onnx(rgb_checkpoint, tmp_path)
    # a spatial transformer needs AffineGrid, which ONNX only has from opset 20
    stn = create_model("fronted", num_classes=3, in_chans=1)
    stn_path = save_checkpoint(tmp_path / "stn.safetensors", stn, model_spec(stn, CLASSES[:3], 1, 48))
    with pytest.raises(LrferError, match="opset=20"):
        export_onnx(stn_path, tmp_path / "stn.onnx", opset=17)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_loading_errors(tmp_path, rgb_checkpoint, rgb_onnx):
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(create_model("cnn2x2", num_classes=3).eval(), (torch.rand(1, 1, 48, 48),), str(plain), dynamo=False)
    with pytest.raises(LrferError, match="without lrfer metadata"):
        OnnxClassifier.load(plain)
    with pytest.raises(LrferError, match="without lrfer metadata"):
        read_onnx_metadata(plain)
    with pytest.raises(LrferError, match="without lrfer metadata"):
        quantize_int8(plain, tmp_path / "q.onnx", random_faces(4).numpy())
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(LrferError, match="not a loadable ONNX model"):
        OnnxClassifier.load(junk)
    with pytest.raises(LrferError, match="no such ONNX model"):
        load_classifier(tmp_path / "missing.onnx")
    with pytest.raises(LrferError, match="unknown backend 'onx'.*onnx"):
        load_classifier(rgb_onnx, backend="onx")
    with pytest.raises(LrferError, match="threads"):
        OnnxClassifier.load(rgb_onnx, threads=0)
    with pytest.raises(LrferError, match="calibration images"):
        quantize_int8(rgb_onnx, tmp_path / "q.onnx", np.zeros((0, 3, 48, 48), np.uint8))
    with pytest.raises(LrferError, match="unknown device"):
        OnnxClassifier.load(rgb_onnx, device="gpu0")
    # the file type picks the backend
    assert isinstance(load_classifier(rgb_onnx, device="auto"), OnnxClassifier)
    assert isinstance(load_classifier(rgb_onnx, backend="torch"), OnnxClassifier)
    assert isinstance(load_classifier(rgb_checkpoint, backend="torch"), FaceClassifier)
    # TTA errors are the shared ones
    with pytest.raises(LrferError, match="unknown test-time augmentation"):
        OnnxClassifier.load(rgb_onnx).predict_proba(random_faces(2, 3), tta="flips")


def test_onnx_backend_exports_a_checkpoint_once_into_the_cache(rgb_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("LRFER_CACHE", str(tmp_path / "cache"))
    torch_clf = load_classifier(rgb_checkpoint, backend="torch")
    onnx_clf = load_classifier(rgb_checkpoint, backend="onnx")
    assert isinstance(onnx_clf, OnnxClassifier) and onnx_clf.path.parent == tmp_path / "cache" / "onnx"
    stamp = onnx_clf.path.stat().st_mtime_ns
    again = load_classifier(rgb_checkpoint)  # auto on the CPU: the cached export, not a new one
    assert isinstance(again, OnnxClassifier) and again.path == onnx_clf.path and again.path.stat().st_mtime_ns == stamp
    faces = random_faces(5, 3)
    diff = max_diff(onnx_clf.predict_proba(faces), torch_clf.predict_proba(faces))
    assert float(diff) < 1e-4


def test_an_unwritable_cache_exports_to_a_temporary_folder(rgb_checkpoint, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("LRFER_CACHE", str(blocker / "cache"))  # below a file: no folder can be made there
    clf = load_classifier(rgb_checkpoint, backend="onnx")
    assert isinstance(clf, OnnxClassifier) and clf.path.is_file()
    assert blocker not in clf.path.parents and clf.path.parent.name.startswith("lrfer-onnx-")
    faces = random_faces(3, 3)
    diff = max_diff(clf.predict_proba(faces), load_classifier(rgb_checkpoint, backend="torch").predict_proba(faces))
    assert float(diff) < PARITY


def test_export_without_a_checkpoint_exports_the_shipped_model(tmp_path):
    """`lrfer export --onnx m.onnx` with no --checkpoint: the shipped model (it said "cannot export a
    NoneType"), written readable like any other file (not mkstemp's private 0600)."""
    out = export_onnx(None, tmp_path / "default.onnx")
    meta = read_onnx_metadata(out)
    assert list(meta["classes"]) == list(FaceClassifier.load(DEFAULT_CHECKPOINT).classes)
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
