"""lrfer: facial expression recognition for low-resolution faces."""

__version__ = "0.1.0"
