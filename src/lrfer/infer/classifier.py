"""FaceClassifier: a checkpoint's network together with the input it expects.

Evaluation, the resolution sweep, ``lrfer predict`` and the Recognizer all go through this class,
so a face is prepared the same way everywhere: channels as the model wants, resized to the size it
was trained at, centre-cropped when it was trained on crops.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..data.faceset import FaceSet
from ..evaluate.predict import predict_proba
from ..evaluate.report import evaluate_model
from ..evaluate.sweep import DEFAULT_SIZES, resolution_sweep
from ..errors import LrferError
from ..progress import Progress
from ..train.checkpoint import Checkpoint, load_checkpoint

#: The model shipped inside the package (see its model card beside it).
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "default" / "model.safetensors"


class FaceClassifier:
    def __init__(self, checkpoint: Checkpoint, device: Union[str, torch.device, None] = None, prefer_ema: bool = True):
        if not checkpoint.spec.get("classes"):
            raise LrferError(f"{checkpoint.path} holds a '{checkpoint.spec['name']}' with no classes (a super-resolution model?)", "give a classifier checkpoint")
        self.checkpoint = checkpoint
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.model = checkpoint.build_model(prefer_ema=prefer_ema).to(self.device)
        spec = checkpoint.spec
        self.classes: tuple[str, ...] = tuple(spec["classes"])
        self.in_chans: int = spec["in_chans"]
        self.image_size: int = spec.get("image_size", spec["input_size"][-1])
        self.crop: Optional[int] = spec.get("crop") or None
        #: divides the logits before the softmax; fitted by `lrfer.evaluate.calibration` (1 = raw).
        self.temperature: float = float(spec.get("temperature", 1.0))

    @classmethod
    def load(cls, path: Union[str, os.PathLike, None] = None, device: Union[str, torch.device, None] = None) -> "FaceClassifier":
        """From a checkpoint file; ``None`` loads the shipped default model."""
        if device in (None, "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(load_checkpoint(path or DEFAULT_CHECKPOINT), device)

    @property
    def name(self) -> str:
        return self.checkpoint.spec["name"]

    def prepare(self, faces: FaceSet) -> FaceSet:
        """Faces in the model's channels and size, labels re-indexed onto the model's classes."""
        if self.in_chans == 1:
            faces = faces.to_grayscale()
        return faces.resized(self.image_size).with_classes(self.classes)

    def predict_proba(
        self,
        images: Union[torch.Tensor, np.ndarray],
        *,
        tta: str = "none",
        degrade_to: Optional[int] = None,
        batch_size: Optional[int] = None,
        progress: Optional[Progress] = None,
    ) -> torch.Tensor:
        """Probabilities for uint8 face crops ``(N, C, H, W)`` of any size, temperature-scaled
        when the checkpoint holds a fitted temperature."""
        return predict_proba(
            self.model,
            images,
            batch_size=batch_size,
            device=self.device,
            tta=tta,
            crop=self.crop,
            input_size=self.image_size,
            degrade_to=degrade_to,
            progress=progress,
            temperature=self.temperature,
        )

    def evaluate(self, faces: FaceSet, *, tta: str = "none", measure_latency: bool = True, progress: Optional[Progress] = None) -> dict:
        """The evaluation report (see :func:`lrfer.evaluate.report.evaluate_model`) on prepared faces."""
        return evaluate_model(
            self.model, faces, self.classes, tta=tta, crop=self.crop, input_size=self.image_size,
            device=self.device, measure_latency=measure_latency, progress=progress,
        )  # fmt: skip

    def sweep(self, faces: FaceSet, sizes=DEFAULT_SIZES, *, tta: str = "none", progress: Optional[Progress] = None) -> list[dict]:
        """Accuracy against face size (see :func:`lrfer.evaluate.sweep.resolution_sweep`) on prepared faces."""
        return resolution_sweep(
            self.model, faces, sizes, tta=tta, crop=self.crop, input_size=self.image_size, device=self.device, progress=progress
        )
