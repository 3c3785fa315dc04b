"""`base_model="lite"`: MobileNet v1 as visual modulator and segmentation network (SPEC 8.1)."""
import keras

from osmn_tf.config import (GUIDE_SIZE, LITE_FEATURE_CHANNELS, LITE_MODULATED_BLOCKS, LITE_STRIDE,
                            check_guide_size, modulation_layout, scaled)
from osmn_tf.layers import LegacyBilinearResize, ObjectBroadcast
from osmn_tf.models.base import Network
from osmn_tf.models.mobilenet import apply_mobilenet_v1, mobilenet_init
from osmn_tf.models.modulated import ModulationPoints

SIDE_CHANNELS = 16


@keras.saving.register_keras_serializable(package="osmn_tf")
class LiteVisualModulator(Network):
    """MobileNet v1 on the visual guide, ending in one scale per modulated channel (1920 at width 1).

    MobileNet's body, a global average pool (the release's 7x7 VALID pool on
    the 7x7 map of a 224 guide), its `Logits/Conv2d_1c_1x1` convolution to
    2048 channels with bias, ReLU, then four 1x1 heads `Conv2d_out_1..4`
    (128, 256, 512, 1024 channels: the scales of Conv2d_3, 5, 11 and 13),
    concatenated. The Logits convolution and the heads start with weights 0
    and biases 1, as the release's.

    Args:
        width: MobileNet's depth multiplier (and of the 2048 features and the heads).
        guide_size: side of the square guide, a multiple of 32 up to 224.
        synchronized_batch_norm: aggregate BatchNorm statistics over replicas.

    Input: `guide_image` `[N, S, S, 3]`. Output: `modulation_params` `[N, 1920]` at width 1.
    """

    # The layers that make the scales from MobileNet's features (not ImageNet's), and the features.
    HEAD_LAYERS = ("Conv2d_1c_1x1",) + tuple(f"Conv2d_out_{k}" for k in range(1, len(LITE_MODULATED_BLOCKS) + 1))
    FEATURE_LAYER = "AvgPool_1a"

    def __init__(self, width=1.0, guide_size=GUIDE_SIZE, synchronized_batch_norm=False, **kwargs):
        guide_size = check_guide_size(guide_size, "guide_size")
        # === Functional Model ===
        guide_image = keras.Input((guide_size, guide_size, 3), name="guide_image")
        x, _ = apply_mobilenet_v1(guide_image, width, synchronized_batch_norm=synchronized_batch_norm)
        x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="AvgPool_1a")(x)
        x = keras.layers.Conv2D(scaled(LITE_FEATURE_CHANNELS, width), 1, kernel_initializer="zeros",
                                bias_initializer="ones", name="Conv2d_1c_1x1")(x)
        x = keras.layers.ReLU(name="Conv2d_1c_1x1_relu")(x)
        heads = [keras.layers.Conv2D(conv.channels, 1, kernel_initializer="zeros", bias_initializer="ones",
                                     dtype="float32", name=f"Conv2d_out_{k}")(x)
                 for k, conv in enumerate(modulation_layout(width=width, base_model="lite"), 1)]
        x = keras.layers.Concatenate(dtype="float32", name="Conv2d_out")(heads)
        params = keras.layers.Reshape((x.shape[-1],), dtype="float32", name="modulation_params")(x)
        super().__init__(inputs=guide_image, outputs=params, **kwargs)

        # === Config ===
        self.width = width
        self.guide_size = guide_size
        self.synchronized_batch_norm = synchronized_batch_norm
        self.num_params = params.shape[-1]


@keras.saving.register_keras_serializable(package="osmn_tf")
class LiteSegmentationNetwork(Network):
    """MobileNet v1 whose pointwise Conv2d_3, 5, 11 and 13 are modulated, with a resized hypercolumn head.

    After the ReLU6 of those four layers `y = y * v + s` (`Modulation`). 3x3
    convolutions to 16 channels with bias (`conv3_16` .. `conv13_16`) read them;
    each is resized to half the frame's size with TF1's `resize_bilinear`
    (`LegacyBilinearResize`), concatenated, fused by the 1x1 `score` and
    resized to the frame's size: the logits. Everything before Conv2d_3's
    modulation is computed once per frame for all objects (`ModulationPoints`).

    The frame's height and width must be multiples of 32 when it is modulated:
    the spatial modulator's VALID pools round down where MobileNet's SAME
    strides round up, and the release fails then (a quirk, SPEC 8.1); an eager
    call says so (`VideoSegmenter(pad=True)` pads frames to such sizes).

    Args:
        width: MobileNet's depth multiplier.
        use_visual_modulator, use_spatial_modulator: the modulation inputs taken
            (both or neither: `OSMNConfig` checks the release's combinations).
        batch_norm_folded: each BatchNorm is folded into its convolution (inference only).
        synchronized_batch_norm: aggregate BatchNorm statistics over replicas.

    Inputs, in order: `image` `[N or 1, H, W, 3]`, `modulation_params` `[N, 1920]`,
    `spatial_biases3/5/11/13`. Output: `logits` `[N, H, W, 1]`, float32.
    """

    def __init__(self, width=1.0, use_visual_modulator=True, use_spatial_modulator=True, batch_norm_folded=False,
                 synchronized_batch_norm=False, **kwargs):
        # === Functional Model ===
        image = keras.Input((None, None, 3), name="image")
        modulation = ModulationPoints(use_visual_modulator, use_spatial_modulator, width=width, base_model="lite")
        _, outputs = apply_mobilenet_v1(image, width, batch_norm_folded, synchronized_batch_norm,
                                        after_pointwise=modulation)
        sides = []
        for block in LITE_MODULATED_BLOCKS:
            side = keras.layers.Conv2D(SIDE_CHANNELS, 3, padding="same", kernel_initializer=mobilenet_init(),
                                       name=f"conv{block}_16")(outputs[block])
            if modulation.is_shared(block):
                side = ObjectBroadcast(name=f"conv{block}_16_to_objects")(side, reference=modulation.objects)
            sides.append(LegacyBilinearResize(2, name=f"conv{block}_16_up")(side, reference=image))
        x = keras.layers.Concatenate(name="side_concat")(sides)
        x = keras.layers.Conv2D(1, 1, kernel_initializer=mobilenet_init(), name="score")(x)
        logits = LegacyBilinearResize(1, dtype="float32", name="score_up")(x, reference=image)
        super().__init__(inputs=[image, *modulation.inputs], outputs=logits, **kwargs)

        # === Config ===
        self.width = width
        self.use_visual_modulator = use_visual_modulator
        self.use_spatial_modulator = use_spatial_modulator
        self.batch_norm_folded = batch_norm_folded
        self.synchronized_batch_norm = synchronized_batch_norm

    def call(self, inputs, training=None, mask=None, **kwargs):
        if self.use_spatial_modulator and isinstance(inputs, (list, tuple)):
            check_lite_size(tuple(inputs[0].shape)[1:3])
        return super().call(inputs, training=training, mask=mask, **kwargs)


def check_lite_size(size, what="the frame"):
    """Raises a ValueError unless `(H, W)` (None: unknown) are multiples of 32, as modulated lite needs."""
    height, width = size
    if any(s is not None and s % LITE_STRIDE for s in (height, width)):
        raise ValueError(f"base_model lite needs {what}'s height and width to be multiples of {LITE_STRIDE} (the "
                         f"release's spatial modulator rounds down where MobileNet rounds up), got {width}x{height} "
                         f"(WxH); pad it (VideoSegmenter(pad=True)) or pick such a working size")
