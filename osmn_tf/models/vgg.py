"""VGG16 building blocks shared by the visual modulator and the segmentation network."""
import keras

from osmn_tf.config import VGG16_BLOCKS, scaled


def vgg_conv(filters, name):
    """A VGG16 3x3 convolution with bias and ReLU, named after its place (`conv3_1`).

    The names match TF-slim's and the original's checkpoints, which makes weight
    conversion a name mapping.
    """
    return keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)


def vgg_blocks(width):
    """(block index, number of convolutions, channels) of VGG16 at `width`."""
    return [(block, num_convs, scaled(channels, width)) for block, num_convs, channels in VGG16_BLOCKS]


def max_pool(name):
    # SAME pooling rounds odd sizes up, as the original does for any frame size.
    return keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name)


def small_init():
    """N(0, 0.001): the original's initialiser for every layer not taken from VGG16."""
    return keras.initializers.RandomNormal(stddev=0.001)
