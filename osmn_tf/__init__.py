"""OSMN: video object segmentation via network modulation, in TensorFlow 2 / Keras 3."""
import importlib

from osmn_tf.config import OSMNConfig, num_modulation_params
from osmn_tf.models import OSMN, SegmentationNetwork, SpatialModulator, VisualModulator, build_osmn, fold_batch_norm

__version__ = "0.1.0"

# The model runs on any Keras backend; these need TensorFlow (TF1 checkpoint
# readers, the video loop's tf.function), so they are imported when first used.
_TENSORFLOW_NAMES = {
    "CheckpointError": "osmn_tf.checkpoints",
    "build_osmn_from_tf1_checkpoint": "osmn_tf.checkpoints",
    "config_from_tf1_checkpoint": "osmn_tf.checkpoints",
    "load_model": "osmn_tf.checkpoints",
    "load_tf1_checkpoint": "osmn_tf.checkpoints",
    "load_imagenet_vgg16": "osmn_tf.imagenet",
    "VideoSegmenter": "osmn_tf.inference",
    # The INT8 per-frame network (the `int8` extra).
    "quantize": "osmn_tf.quantization",
    "calibration_samples": "osmn_tf.quantization",
    "Int8FrameNetwork": "osmn_tf.quantization",
}

__all__ = [
    "OSMN",
    "OSMNConfig",
    "SegmentationNetwork",
    "SpatialModulator",
    "VisualModulator",
    "build_osmn",
    "fold_batch_norm",
    "num_modulation_params",
    *_TENSORFLOW_NAMES,
]


def __getattr__(name):
    if name not in _TENSORFLOW_NAMES:
        raise AttributeError(f"module 'osmn_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(_TENSORFLOW_NAMES[name]), name)


def __dir__():
    return sorted(set(globals()) | set(_TENSORFLOW_NAMES))
