"""The visual modulator of the VGG16 base models (paper section 3.1, SPEC 4.1)."""
import keras

from osmn_tf.config import GUIDE_SIZE, GUIDE_STRIDE, VGG16_FC_CHANNELS, check_guide_size, num_modulation_params, scaled
from osmn_tf.models.base import Network
from osmn_tf.models.vgg import apply_vgg16


@keras.saving.register_keras_serializable(package="osmn_tf")
class VisualModulator(Network):
    """VGG16 on the visual guide, ending in one scale per modulated channel.

    Runs once per object per video: its output, the modulation parameters,
    is reused for every frame. `fc8` starts with weights 0 and biases 1, so an
    untrained modulator leaves the segmentation network unchanged. The same
    network serves osvos, deeplab and masktrack.

    Args:
        width: multiplier on the VGG16 channel counts and fc6/fc7.
        mod_early_conv: also produce scales for conv1_1 .. conv2_2.
        dropout_rate: dropout after fc6 and fc7, in training only.
        guide_size: side of the square guide image (fc6's kernel is a 32nd of it).

    Input: `guide_image` `[N, S, S, 3]` (S = `guide_size`, 224 in the paper),
    the object's masked crop (BGR minus mean).
    Output: `modulation_params` `[N, P]`, P = 3840 (4224 with `mod_early_conv`) at width 1.
    """

    # The layers that make the scales from the features (not VGG16's, so not ImageNet's), and the features
    # (`osmn_tf.training`: learning-rate multiplier, pretraining).
    HEAD_LAYERS = ("fc8",)
    FEATURE_LAYER = "dropout7"

    def __init__(self, width=1.0, mod_early_conv=False, dropout_rate=0.5, guide_size=GUIDE_SIZE, **kwargs):
        guide_size = check_guide_size(guide_size, "guide_size")
        # === Functional Model ===
        guide_image = keras.Input((guide_size, guide_size, 3), name="guide_image")
        x, _ = apply_vgg16(guide_image, width, "modulator")
        fc_channels = scaled(VGG16_FC_CHANNELS, width)
        # fc6/fc7 as convolutions, as in TF-slim's VGG16 (a 7x7 VALID conv on pool5 at 224).
        x = keras.layers.Conv2D(fc_channels, guide_size // GUIDE_STRIDE, padding="valid", activation="relu", name="fc6")(x)
        x = keras.layers.Dropout(dropout_rate, name="dropout6")(x)
        x = keras.layers.Conv2D(fc_channels, 1, activation="relu", name="fc7")(x)
        x = keras.layers.Dropout(dropout_rate, name="dropout7")(x)
        num_params = num_modulation_params(mod_early_conv, width)
        x = keras.layers.Conv2D(
            num_params, 1, kernel_initializer="zeros", bias_initializer="ones", dtype="float32", name="fc8"
        )(x)
        params = keras.layers.Reshape((num_params,), dtype="float32", name="modulation_params")(x)
        super().__init__(inputs=guide_image, outputs=params, **kwargs)

        # === Config ===
        self.width = width
        self.mod_early_conv = mod_early_conv
        self.dropout_rate = dropout_rate
        self.guide_size = guide_size
        self.num_params = num_params
