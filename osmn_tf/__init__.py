"""OSMN: video object segmentation via network modulation, in TensorFlow 2 / Keras 3."""
import importlib

from osmn_tf.config import OSMNConfig, num_modulation_params
from osmn_tf.utils.errors import CheckpointError
from osmn_tf.utils.keras_registration import register_when_keras_loads

__version__ = "0.1.0"

# Names that import Keras or TensorFlow are imported when first used, so that
# the light modules (`osmn_tf.utils.outputs`, `osmn_tf.data.davis`, ...) and a tool that
# only checks its arguments start without loading TensorFlow (seconds).
_LAZY_NAMES = {
    "OSMN": "osmn_tf.models",
    "SegmentationNetwork": "osmn_tf.models",
    "SpatialModulator": "osmn_tf.models",
    "VisualModulator": "osmn_tf.models",
    "build_osmn": "osmn_tf.models",
    "fold_batch_norm": "osmn_tf.models",
    # These need TensorFlow itself (TF1 checkpoint readers, the video loop's tf.function).
    "build_osmn_from_tf1_checkpoint": "osmn_tf.weights.checkpoints",
    "config_from_tf1_checkpoint": "osmn_tf.weights.checkpoints",
    "load_model": "osmn_tf.weights.checkpoints",
    "load_tf1_checkpoint": "osmn_tf.weights.checkpoints",
    "load_imagenet_vgg16": "osmn_tf.weights.imagenet",
    "VideoSegmenter": "osmn_tf.inference.segmenter",
    "load_imagenet": "osmn_tf.weights.imagenet",
    # The release's dense-CRF post-processing (the `crf` extra).
    "dense_crf": "osmn_tf.inference.dense_crf",
    # The INT8 per-frame network (the `int8` extra).
    "quantize": "osmn_tf.quantization",
    "calibration_samples": "osmn_tf.quantization",
    "Int8FrameNetwork": "osmn_tf.quantization",
}

# `keras.models.load_model` needs the model classes registered: done when Keras loads, not here.
register_when_keras_loads()

__all__ = ["OSMNConfig", "num_modulation_params", "CheckpointError", *_LAZY_NAMES]


def __getattr__(name):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module 'osmn_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY_NAMES[name]), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY_NAMES))
