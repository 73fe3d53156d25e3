"""What code that uses a classifier may rely on, whatever runs it: the PyTorch
:class:`lrfer.predict.classifier.FaceClassifier`, the ONNX Runtime
:class:`lrfer.runtime.onnx.OnnxClassifier` and :class:`lrfer.predict.ensemble.ProbabilityEnsemble`
all offer :class:`Classifier`; the first two are also :class:`SizedClassifier`."""

from __future__ import annotations

from typing import Any, Optional, Protocol


class Classifier(Protocol):
    classes: tuple[str, ...]

    def prepare(self, faces: Any) -> Any:
        """A FaceSet as the classifier wants it, labels re-indexed onto :attr:`classes`."""
        ...

    def predict_proba(self, images: Any, *, tta: str = "none", degrade_to: Optional[int] = None, batch_size: Optional[int] = None) -> Any:
        """Probabilities ``(N, K)`` (a numpy array or a torch tensor on the CPU), columns in
        :attr:`classes` order, for uint8 faces ``(N, C, H, W)`` of any size."""
        ...


class SizedClassifier(Classifier, Protocol):
    """A classifier that says which crops it takes: the Recognizer cuts faces to ``image_size``
    with ``in_chans`` channels."""

    in_chans: int
    image_size: int
