"""lrfer.export: classifier checkpoints as portable ONNX graphs (float and int8)."""

from .onnx import ONNX_FORMAT, export_onnx, quantize_int8, read_onnx_metadata

__all__ = ["ONNX_FORMAT", "export_onnx", "quantize_int8", "read_onnx_metadata"]
