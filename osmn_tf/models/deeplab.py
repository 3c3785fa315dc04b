"""`base_model="deeplab"`: VGG16 with dilated conv5 and an ASPP head (SPEC 8.2)."""
import keras

from osmn_tf.config import scaled
from osmn_tf.layers import BilinearUpsampling
from osmn_tf.models.base import Network
from osmn_tf.models.modulated import ModulationPoints
from osmn_tf.models.vgg import apply_vgg16, small_init

# DeepLab v2's atrous spatial pyramid pooling: one branch per rate.
ASPP_RATES = (6, 12, 18, 24)
ASPP_CHANNELS = 1024
# The features are at stride 8: `score-up` is a 16x16 stride-8 bilinear transposed convolution.
OUTPUT_STRIDE = 8


def apply_aspp(x, width, dropout_rate, head_name):
    """DeepLab v2's ASPP on `x`: per rate k, `fc6_k` (3x3 dilated) and `fc7_k` (1x1), both with ReLU and
    dropout in training, then `<head_name>_k` to one channel; their sum, the layer `fc8`, at `x`'s size."""
    channels = scaled(ASPP_CHANNELS, width)
    heads = []
    for k, rate in enumerate(ASPP_RATES, 1):
        y = keras.layers.Conv2D(channels, 3, padding="same", dilation_rate=rate, activation="relu",
                                kernel_initializer=small_init(), name=f"fc6_{k}")(x)
        y = keras.layers.Dropout(dropout_rate, name=f"drop6_{k}")(y)
        y = keras.layers.Conv2D(channels, 1, activation="relu", kernel_initializer=small_init(), name=f"fc7_{k}")(y)
        y = keras.layers.Dropout(dropout_rate, name=f"drop7_{k}")(y)
        heads.append(keras.layers.Conv2D(1, 1, kernel_initializer=small_init(), name=f"{head_name}_{k}")(y))
    return keras.layers.Add(name="fc8")(heads)


def score_up(fc8, reference):
    """The stride-8 bilinear up-sampling with the release's centre crop to `reference`'s size: the logits."""
    return BilinearUpsampling(OUTPUT_STRIDE, dtype="float32", name="score-up")(fc8, reference=reference)


@keras.saving.register_keras_serializable(package="osmn_tf")
class DeepLabSegmentationNetwork(Network):
    """VGG16 (pool4 stride 1, conv5 dilated by 2, pool5 3x3 stride 1) with ASPP, modulated as osvos.

    conv3_1 .. conv5_3 are modulated as in section 4.3 (`relu(conv) * gamma +
    beta`, the spatial maps of blocks 4 and 5 both at 1/8). The four ASPP
    branches' single-channel outputs (`fc8_voc12_1..4`) are summed at 1/8 and
    up-sampled by `score-up` (the fixed bilinear transposed convolution,
    `BilinearUpsampling`) with a centre crop to the frame. Any frame size.
    Layers before the first modulation are computed once per frame for all objects.

    Args:
        width: multiplier on the VGG16 and ASPP channel counts.
        use_visual_modulator, use_spatial_modulator: the modulation inputs taken.
        mod_early_conv: modulate conv1_1 .. conv2_2 too.
        dropout_rate: dropout in the ASPP branches, in training.

    Inputs, in order: `image`, `modulation_params`, `spatial_biases3/4/5` (as
    `SegmentationNetwork`). Output: `logits` `[N, H, W, 1]`, float32.
    """

    def __init__(self, width=1.0, use_visual_modulator=True, use_spatial_modulator=True, mod_early_conv=False,
                 dropout_rate=0.5, **kwargs):
        # === Functional Model ===
        image = keras.Input((None, None, 3), name="image")
        modulation = ModulationPoints(use_visual_modulator, use_spatial_modulator, mod_early_conv, width, "deeplab")
        x, _ = apply_vgg16(image, width, "deeplab", after_conv=modulation)
        logits = score_up(apply_aspp(x, width, dropout_rate, "fc8_voc12"), image)
        super().__init__(inputs=[image, *modulation.inputs], outputs=logits, **kwargs)

        # === Config ===
        self.width = width
        self.use_visual_modulator = use_visual_modulator
        self.use_spatial_modulator = use_spatial_modulator
        self.mod_early_conv = mod_early_conv
        self.dropout_rate = dropout_rate
