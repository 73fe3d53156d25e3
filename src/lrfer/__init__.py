"""lrfer: facial expression recognition for low-resolution faces."""

__version__ = "0.1.0"

__all__ = ["Recognizer", "__version__"]


def __getattr__(name: str):
    # ``lrfer.Recognizer`` without importing torch, PyAV and onnxruntime on a bare ``import lrfer``.
    if name == "Recognizer":
        from .infer.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'lrfer' has no attribute '{name}'")
