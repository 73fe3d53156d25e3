"""lrfer.runtime: what recognising needs and PyTorch does not: the ONNX classifier and the numpy
face preprocessing that feeds it. Nothing here imports torch (a test checks it), so ``pip install
lrfer`` without the ``train`` extra can run the whole inference path."""
