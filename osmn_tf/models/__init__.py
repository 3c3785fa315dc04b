"""OSMN's networks as Keras functional models."""
from osmn_tf.models.base import Network
from osmn_tf.models.deeplab import DeepLabSegmentationNetwork
from osmn_tf.models.folding import fold_batch_norm
from osmn_tf.models.lite import LiteSegmentationNetwork, LiteVisualModulator
from osmn_tf.models.masktrack import MaskTrackSegmentationNetwork
from osmn_tf.models.osmn import OSMN, build_osmn
from osmn_tf.models.segmentation_network import SegmentationNetwork
from osmn_tf.models.spatial_modulator import SpatialModulator
from osmn_tf.models.visual_modulator import VisualModulator

__all__ = ["OSMN", "DeepLabSegmentationNetwork", "LiteSegmentationNetwork", "LiteVisualModulator",
           "MaskTrackSegmentationNetwork", "Network", "SegmentationNetwork", "SpatialModulator", "VisualModulator",
           "build_osmn", "fold_batch_norm"]
