"""Folding BatchNorm into the convolution before it, an inference-time transform of the per-frame networks.

At inference BatchNorm applies its moving statistics, a per-channel affine
map, so `act(bn(conv(x)))` equals `act(conv'(x) + b)` with
`conv' = conv * s`, `b = beta + (bias - mean) * s`, `s = gamma / sqrt(variance + epsilon)`:
one pass over each map instead of three. It applies to the spatial
modulator (BatchNorm's two extra passes over its large bias maps take two
thirds of its time on a CPU frame) and to lite's MobileNet segmentation
network (27 BatchNorms per frame); the visual modulator, which runs once per
object, keeps its BatchNorm.

The fold is computed in float32 with the backend's own ops (`rsqrt`), the
arithmetic the original's graph and this project's reference runs used. A
fold in float64 moves the bias maps by round-off only, but the sequence loop
amplifies round-off: a pixel whose probability sits at 0.5 flips, the median
of that object's mask moves, and the next frame's spatial guide with it
(0.2% of a frame on a three-object sequence, tests/test_multi_object_fidelity.py).
"""
import keras
from keras import ops

# The module, not its names: importing Keras imports osmn_tf.models (`utils.keras_registration`), which can
# happen while `precision` itself is importing Keras, before its names exist.
from osmn_tf.utils import precision as precision_module

BATCH_NORM_SUFFIX = "_bn"


def has_batch_norm(network):
    """Whether `network` can be folded: it takes `batch_norm_folded` and holds a BatchNorm."""
    return "batch_norm_folded" in network.get_config() and not network.batch_norm_folded and any(
        isinstance(layer, keras.layers.BatchNormalization) for layer in network.layers)


def fold_network(network, precision=None):
    """A new `network` built with `batch_norm_folded=True`, each BatchNorm `<conv>_bn` folded into `<conv>`.

    Built under `precision` (None: `network`'s own dtype policy); every other
    weight is copied by layer name. For inference only.
    """
    with precision_module.dtype_policy(precision or network.dtype_policy.name):
        folded = network.__class__.from_config({**network.get_config(), "batch_norm_folded": True})
    for layer in folded.layers:
        if not layer.weights:
            continue
        source = network.get_layer(layer.name)
        bn = _batch_norm_of(network, layer.name)
        if bn is None:
            layer.set_weights(source.get_weights())
            continue
        scale = bn.gamma * ops.rsqrt(bn.moving_variance + bn.epsilon)
        offset = bn.beta - bn.moving_mean * scale
        if getattr(source, "use_bias", False):
            offset = offset + source.bias * scale
        if isinstance(source, keras.layers.DepthwiseConv2D):
            kernel = source.kernel * ops.reshape(scale, (-1, 1))  # [kh, kw, C, 1]: one channel per input
        else:
            kernel = source.kernel * scale
        layer.set_weights([ops.convert_to_numpy(kernel), ops.convert_to_numpy(offset)])
    return folded


def _batch_norm_of(network, name):
    try:
        layer = network.get_layer(name + BATCH_NORM_SUFFIX)
    except ValueError:
        return None
    return layer if isinstance(layer, keras.layers.BatchNormalization) else None


def fold_batch_norm(model):
    """`model` (an `OSMN`) for inference, the BatchNorms of its per-frame networks folded into their convolutions.

    Returns a new model holding `model`'s current weights, with the same
    inputs, outputs and dtype policy, for inference only: what export and
    other backends run. A model with nothing to fold (no spatial modulator
    and a VGG16 segmentation network), or already folded, is returned as it
    is. For the per-frame part alone, `model.frame_model(fold_batch_norm=True)`
    folds without copying the rest.
    """
    networks = [n for n in (model.spatial_modulator, model.segmentation_network) if n is not None]
    if model.batch_norm_folded or not any(has_batch_norm(n) for n in networks):
        return model
    with precision_module.dtype_policy(model.dtype_policy.name):
        folded = model.__class__.from_config({**model.get_config(), "batch_norm_folded": True})
    for name in ("visual_modulator", "spatial_modulator", "segmentation_network"):
        network = getattr(model, name)
        if network is not None:
            source = fold_network(network) if has_batch_norm(network) else network
            getattr(folded, name).set_weights(source.get_weights())
    return folded
