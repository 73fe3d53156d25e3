"""FaceClassifier: a checkpoint's network together with the input it expects.

Evaluation (:func:`lrfer.evaluate.report.evaluate_classifier`), the resolution sweep
(:func:`lrfer.evaluate.sweep.classifier_sweep`), ``lrfer predict`` and the Recognizer all go through this class,
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
from ..data.transforms import predict_embeddings, predict_proba
from ..device import resolve_device
from ..errors import LrferError
from ..models.checkpoint import Checkpoint, load_checkpoint
from ..progress import Progress
from ..runtime.decision import Abstain, rule_from
from ..runtime.onnx import prepare_faces
from ..runtime.prior import train_prior_from

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
        #: the stored abstention rule and training class shares (docs/trust.md), as the ONNX backend reads them.
        self.abstain: Optional[Abstain] = rule_from(spec.get("abstain"), str(checkpoint.path))
        self.prior_record: Optional[dict] = spec.get("class_prior")  # with the bias correction EM needs
        self.train_prior: Optional[np.ndarray] = train_prior_from(spec.get("class_prior"), self.classes, str(checkpoint.path))

    @classmethod
    def load(cls, path: Union[str, os.PathLike, None] = None, device: Union[str, torch.device, None] = None, reading: Optional[str] = None) -> "FaceClassifier":
        """From a checkpoint file; ``None`` loads the shipped default model. ``reading``: answer
        with one of the checkpoint's stored readings (docs/trust.md) instead of its own head."""
        return cls(load_checkpoint(path or DEFAULT_CHECKPOINT).with_reading(reading), resolve_device(device))

    @property
    def name(self) -> str:
        return self.checkpoint.spec["name"]

    @property
    def reading(self) -> str:
        """``default`` (the model's own head) or the name of the stored reading it answers with."""
        return self.checkpoint.reading

    def prepare(self, faces: FaceSet) -> FaceSet:
        """Faces in the model's channels and size, labels re-indexed onto the model's classes."""
        return prepare_faces(faces, in_chans=self.in_chans, image_size=self.image_size, classes=self.classes)

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

    def embed(
        self,
        images: Union[torch.Tensor, np.ndarray],
        *,
        degrade_to: Optional[int] = None,
        batch_size: Optional[int] = None,
        progress: Optional[Progress] = None,
    ) -> torch.Tensor:
        """The embeddings ``(N, D)`` its head reads, for uint8 face crops of any size, prepared as
        :meth:`predict_proba` prepares them."""
        return predict_embeddings(
            self.model, images, batch_size=batch_size, device=self.device, crop=self.crop,
            input_size=self.image_size, degrade_to=degrade_to, progress=progress,
        )  # fmt: skip
