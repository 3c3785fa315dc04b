"""VGG16 building blocks shared by the visual modulator and the VGG16 segmentation networks."""
import keras

from osmn_tf.config import VGG16_BLOCKS, scaled

# Max pooling after each block, `(size, stride)` or None (SPEC 4.1, 4.3, 8.2, 8.3). SAME pooling
# rounds odd sizes up, as the original does for any frame size.
VGG16_POOLS = {
    "modulator": ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2)),
    "osvos": ((2, 2), (2, 2), (2, 2), (2, 2), None),
    # pool4 keeps the size (conv5 is dilated instead); pool5 is a 3x3 stride-1 smoothing.
    "deeplab": ((2, 2), (2, 2), (2, 2), (2, 1), (3, 1)),
    "masktrack": ((3, 2), (3, 2), (3, 2), (3, 1), (3, 1)),
}
# conv5's dilation rate: the dilated base models keep stride 8 and widen conv5 instead.
CONV5_DILATION = {"modulator": 1, "osvos": 1, "deeplab": 2, "masktrack": 2}


def vgg_conv(filters, name, dilation_rate=1):
    """A VGG16 3x3 convolution with bias and ReLU, named after its place (`conv3_1`).

    The names match TF-slim's and the original's checkpoints, which makes weight
    conversion a name mapping.
    """
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", dilation_rate=dilation_rate, name=name)


def vgg_blocks(width):
    """(block index, number of convolutions, channels) of VGG16 at `width`."""
    return [(block, num_convs, scaled(channels, width)) for block, num_convs, channels in VGG16_BLOCKS]


def max_pool(name, size=2, stride=2):
    return keras.layers.MaxPooling2D(size, strides=stride, padding="same", name=name)


def apply_vgg16(x, width, layout="osvos", after_conv=None):
    """VGG16's conv1 .. conv5 on `x`, with the pools and dilation of `layout` (a key of `VGG16_POOLS`).

    `after_conv(name, x)`, if given, runs after each convolution and returns
    its replacement (the segmentation networks modulate there). Returns the
    output after the last pool and `{block: its last convolution's output}`
    (after `after_conv`, before the pool).
    """
    block_outputs = {}
    for (block, num_convs, filters), pool in zip(vgg_blocks(width), VGG16_POOLS[layout]):
        dilation = CONV5_DILATION[layout] if block == 5 else 1
        for i in range(1, num_convs + 1):
            name = f"conv{block}_{i}"
            x = vgg_conv(filters, name, dilation)(x)
            if after_conv is not None:
                x = after_conv(name, x)
        block_outputs[block] = x
        if pool is not None:
            x = max_pool(f"pool{block}", *pool)(x)
    return x, block_outputs


def small_init():
    """N(0, 0.001): the original's initialiser for every layer not taken from ImageNet."""
    return keras.initializers.RandomNormal(stddev=0.001)
