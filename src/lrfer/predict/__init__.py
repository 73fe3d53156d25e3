"""lrfer.predict: a trained model together with the input it expects, and ensembles of them."""
