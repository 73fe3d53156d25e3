"""Train briefly on real FER2013 faces and beat the majority class on PublicTest by a clear margin."""

from __future__ import annotations

import numpy as np

from lrfer.data.augment import AugmentConfig
from lrfer.data.readers import load_dataset
from lrfer.train.config import TrainConfig
from lrfer.train.engine import fit


def test_brief_training_on_real_faces_beats_majority_class(fer2013_npz, tmp_path):
    faces = load_dataset(fer2013_npz)
    train = faces.select_split("Training").subset(np.arange(20000))
    test = faces.select_split("PublicTest").subset(np.arange(1000))
    # A small network at 24 px keeps this near a minute on two CPU cores.
    cfg = TrainConfig(
        model="resnet18_fer_slim",
        model_kwargs={"width": 16, "blocks": [1, 1, 1], "input_norm": "per_image"},
        image_size=24,
        epochs=3,
        batch_size=64,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=5e-4,
        schedule="onecycle",
        augment=AugmentConfig(rotate=0, scale=0, translate=0),
        device="cpu",
    )
    result = fit(cfg, train, test, tmp_path)
    majority = np.bincount(test.labels.numpy()).max() / len(test)
    assert result.best_metric > majority + 0.1, (result.best_metric, majority)
