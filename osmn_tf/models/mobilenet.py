"""MobileNet v1 building blocks (SPEC 8.1), named as TF-slim's `mobilenet_v1` names its variables."""
import keras

from osmn_tf.config import MOBILENET_V1_BLOCKS, MOBILENET_V1_FIRST_CHANNELS, scaled

# TF-slim's mobilenet_v1_arg_scope: BatchNorm decay and epsilon, the weights' initialiser.
BATCH_NORM_MOMENTUM = 0.997
BATCH_NORM_EPSILON = 1e-3


def mobilenet_init():
    """TF-slim MobileNet's initialiser (truncated normal, stddev 0.09), for layers not taken from ImageNet."""
    return keras.initializers.TruncatedNormal(stddev=0.09)


def apply_mobilenet_conv(x, name, filters=None, kernel_size=1, strides=1, batch_norm_folded=False,
                         synchronized_batch_norm=False):
    """A MobileNet convolution without bias, BatchNorm and ReLU6: layers `name`, `name_bn`, `name_relu6`.

    `filters` None makes it a 3x3 depthwise convolution (`Conv2d_i_depthwise`).
    With `batch_norm_folded` the convolution has a bias and there is no BatchNorm
    (inference only, `osmn_tf.models.folding`).
    """
    if filters is None:
        conv = keras.layers.DepthwiseConv2D(3, strides, padding="same", use_bias=batch_norm_folded,
                                            depthwise_initializer=mobilenet_init(), name=name)
    else:
        conv = keras.layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=batch_norm_folded,
                                   kernel_initializer=mobilenet_init(), name=name)
    x = conv(x)
    if not batch_norm_folded:
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON,
                                            synchronized=synchronized_batch_norm, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x)


def apply_mobilenet_v1(x, width, batch_norm_folded=False, synchronized_batch_norm=False, after_pointwise=None):
    """MobileNet v1's body (depth multiplier `width`, SAME padding) on `x`.

    `after_pointwise(name, x)`, if given, runs after each block's pointwise
    convolution and returns its replacement (lite's segmentation network
    modulates there). Returns the last output and `{block: its pointwise output}`.
    """
    options = dict(batch_norm_folded=batch_norm_folded, synchronized_batch_norm=synchronized_batch_norm)
    x = apply_mobilenet_conv(x, "Conv2d_0", scaled(MOBILENET_V1_FIRST_CHANNELS, width), 3, 2, **options)
    outputs = {}
    for block, (stride, channels) in enumerate(MOBILENET_V1_BLOCKS, 1):
        x = apply_mobilenet_conv(x, f"Conv2d_{block}_depthwise", strides=stride, **options)
        name = f"Conv2d_{block}_pointwise"
        x = apply_mobilenet_conv(x, name, scaled(channels, width), **options)
        if after_pointwise is not None:
            x = after_pointwise(name, x)
        outputs[block] = x
    return x, outputs
