"""OSMN: video object segmentation via network modulation, in TensorFlow 2 / Keras 3."""
from osmn_tf.checkpoints import (
    CheckpointError,
    build_osmn_from_tf1_checkpoint,
    config_from_tf1_checkpoint,
    load_model,
    load_tf1_checkpoint,
)
from osmn_tf.config import OSMNConfig, num_modulation_params
from osmn_tf.imagenet import load_imagenet_vgg16
from osmn_tf.inference import VideoSegmenter
from osmn_tf.models import OSMN, SegmentationNetwork, SpatialModulator, VisualModulator, build_osmn

__version__ = "0.1.0"

__all__ = [
    "OSMN",
    "CheckpointError",
    "OSMNConfig",
    "SegmentationNetwork",
    "SpatialModulator",
    "VideoSegmenter",
    "VisualModulator",
    "build_osmn",
    "build_osmn_from_tf1_checkpoint",
    "config_from_tf1_checkpoint",
    "load_imagenet_vgg16",
    "load_model",
    "load_tf1_checkpoint",
    "num_modulation_params",
]
