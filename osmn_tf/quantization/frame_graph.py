"""The per-frame network as a fixed-shape graph: its SavedModel and its NNCF quantization.

What the shipped INT8 network (`osmn_tf.quantization.network`) and the route
study (`osmn_tf.quantization.routes`) share: one object at the working size,
BatchNorm folded (`OSMN.frame_model(fold_batch_norm=True)`).
"""
import os

import numpy as np
import tensorflow as tf

from osmn_tf.utils import atomic
from osmn_tf.utils.extras import require


def frame_input_specs(frame_model, working_size):
    """TensorSpecs of `frame_model`'s inputs for one object at `working_size` `(W, H)`."""
    width, height = working_size
    specs = []
    for tensor in frame_model.inputs:
        shape = [1, *tensor.shape[1:]]
        if len(shape) == 4:
            shape[1:3] = [height, width]
        specs.append(tf.TensorSpec(shape, tf.float32, name=tensor.name))
    return specs


def export_frame_saved_model(frame_model, working_size, path):
    """Writes `frame_model` as a SavedModel (Keras export: weights captured as constants-to-be) with one
    `serve` signature at a fixed shape; the converters start from it. Returns `path`."""
    with atomic.replaced_folder(path) as staging:
        frame_model.export(os.fspath(staging), format="tf_saved_model",
                           input_signature=[frame_input_specs(frame_model, working_size)], verbose=False)
    return os.fspath(path)



def nncf_quantize(ov_model, calibration, float_modulation=True):
    """`nncf.quantize` of an OpenVINO per-frame model on all of `calibration`.

    `float_modulation`: leave the elementwise multiplies and adds (the
    modulation) in float32. MIXED preset: asymmetric activations, since
    modulated features are signed before their ReLU. Weights of every layer
    are quantized to 7 bits (NNCF's overflow fix): a CPU without VNNI
    saturates 8-bit products in its 16-bit accumulators, so results then
    depend on the CPU (masks agreed with float32 on 96% of pixels on an AVX2-only
    EPYC against 97%+ elsewhere).
    """
    nncf = require("nncf", "int8", "INT8 quantization")
    names = [p.get_any_name() for p in ov_model.inputs]

    def transform(sample):
        return {n: np.asarray(sample[n], np.float32) for n in names}

    ignored = nncf.IgnoredScope(types=["Multiply", "Add"], validate=False) if float_modulation else None
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    return nncf.quantize(ov_model, nncf.Dataset(calibration, transform), subset_size=len(calibration),
                         preset=nncf.QuantizationPreset.MIXED, ignored_scope=ignored,
                         advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE))
