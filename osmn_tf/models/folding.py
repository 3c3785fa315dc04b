"""Folding the spatial modulator's BatchNorm into its convolutions, an inference-time transform.

At inference BatchNorm applies its moving statistics, a per-channel affine
map, so `relu(bn(conv(g)))` equals `relu(conv'(g) + b)` with
`conv' = conv * s`, `b = beta - mean * s`, `s = gamma / sqrt(variance + epsilon)`:
one pass over each bias map instead of three (BatchNorm's two extra passes
over these large maps take two thirds of the spatial modulator's time on a
CPU frame).

The fold is computed in float32 with the backend's own ops (`rsqrt`), the
arithmetic the original's graph and this project's reference runs used. A
fold in float64 moves the bias maps by round-off only, but the sequence loop
amplifies round-off: a pixel whose probability sits at 0.5 flips, the median
of that object's mask moves, and the next frame's spatial guide with it
(0.2% of a frame on a three-object sequence, tests/test_multi_object_fidelity.py).
"""
from keras import ops

from osmn_tf.precision import dtype_policy


def fold_spatial_modulator(spatial_modulator, precision=None):
    """A new `SpatialModulator` whose convolutions hold `spatial_modulator`'s BatchNorm (inference only).

    Built under `precision` (None: `spatial_modulator`'s own dtype policy).
    Only this small model is copied, so folding costs no copy of the two VGG16s.
    """
    with dtype_policy(precision or spatial_modulator.dtype_policy.name):
        folded = spatial_modulator.__class__.from_config(
            {**spatial_modulator.get_config(), "batch_norm_folded": True})
    for block in spatial_modulator.blocks:
        conv, bn = spatial_modulator.get_layer(f"conv{block}"), spatial_modulator.get_layer(f"conv{block}_bn")
        scale = bn.gamma * ops.rsqrt(bn.moving_variance + bn.epsilon)
        folded.get_layer(f"conv{block}").set_weights(
            [ops.convert_to_numpy(conv.kernel * scale), ops.convert_to_numpy(bn.beta - bn.moving_mean * scale)])
    return folded


def fold_batch_norm(model):
    """`model` (an `OSMN`) for inference, each spatial modulator BatchNorm folded into its convolution.

    Returns a new model holding `model`'s current weights, with the same
    inputs, outputs and dtype policy, for inference only (it has no
    BatchNorm left to train): what export and other backends run. A model
    without a spatial modulator, or already folded, is returned as it is.
    For the per-frame part alone, `model.frame_model(fold_batch_norm=True)`
    folds without copying the rest.
    """
    if model.spatial_modulator is None or model.batch_norm_folded:
        return model
    with dtype_policy(model.dtype_policy.name):
        folded = model.__class__.from_config({**model.get_config(), "batch_norm_folded": True})
    for name in ("visual_modulator", "segmentation_network"):
        if getattr(model, name) is not None:
            getattr(folded, name).set_weights(getattr(model, name).get_weights())
    folded.spatial_modulator.set_weights(fold_spatial_modulator(model.spatial_modulator).get_weights())
    return folded
