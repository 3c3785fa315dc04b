"""OSMN's networks as Keras functional models."""
from osmn_tf.models.folding import fold_batch_norm
from osmn_tf.models.osmn import OSMN, build_osmn
from osmn_tf.models.segmentation_network import SegmentationNetwork
from osmn_tf.models.spatial_modulator import SpatialModulator
from osmn_tf.models.visual_modulator import VisualModulator

__all__ = ["OSMN", "SegmentationNetwork", "SpatialModulator", "VisualModulator", "build_osmn", "fold_batch_norm"]
