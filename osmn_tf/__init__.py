"""OSMN: video object segmentation via network modulation, in TensorFlow 2 / Keras 3."""
