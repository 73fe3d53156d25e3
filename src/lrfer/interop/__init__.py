"""lrfer.interop: importers of other toolkits' model files (Keras .h5)."""
