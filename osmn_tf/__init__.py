"""OSMN: video object segmentation via network modulation, in TensorFlow 2 / Keras 3."""
from osmn_tf.config import OSMNConfig, num_modulation_params
from osmn_tf.models import OSMN, SegmentationNetwork, SpatialModulator, VisualModulator, build_osmn

__version__ = "0.1.0"
