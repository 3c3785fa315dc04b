"""The segmentation network of `base_model="osvos"`: a modulated VGG16 hypercolumn FCN (paper section 3, SPEC 4.3)."""
import keras

from osmn_tf.layers import ObjectBroadcast, SideOutputFusion
from osmn_tf.models.base import Network
from osmn_tf.models.modulated import ModulationPoints
from osmn_tf.models.vgg import apply_vgg16, small_init

# Side outputs: the block whose last convolution they read, with its stride.
SIDE_OUTPUTS = ((2, "conv2_2", 2), (3, "conv3_3", 4), (4, "conv4_3", 8), (5, "conv5_3", 16))
SIDE_CHANNELS = 16


@keras.saving.register_keras_serializable(package="osmn_tf")
class SegmentationNetwork(Network):
    """The per-frame FCN whose layers the modulators adapt to one object.

    VGG16 conv1..conv5 (pools between blocks, none after conv5); each
    modulated convolution is followed by a `Modulation` layer. Four side
    outputs (3x3 convs to 16 channels on conv2_2 .. conv5_3) are up-sampled to
    the frame's size with fixed bilinear kernels, concatenated (the
    hypercolumn) and fused by a 1x1 convolution into one logit per pixel
    (`SideOutputFusion`, which projects before up-sampling: same result).

    Everything before the first modulation (with `mod_early_conv` off:
    conv1_1 .. conv3_1's convolution and the conv2_2 side output) depends on
    the frame alone and is computed once for all objects (`ModulationPoints`).

    Args:
        width: multiplier on the VGG16 channel counts.
        use_visual_modulator: take per-channel scales (input `modulation_params`).
        use_spatial_modulator: take per-pixel biases (one input per modulated block).
        mod_early_conv: modulate conv1_1 .. conv2_2 too.

    Inputs, in order: `image` `[N, H, W, 3]` or `[1, H, W, 3]` (BGR minus mean, any H and W);
    `modulation_params` `[N, P]` if `use_visual_modulator`; the spatial
    modulator's bias maps, one per modulated block, if `use_spatial_modulator`.
    Output: `logits` `[N, H, W, 1]`, float32.
    """

    def __init__(self, width=1.0, use_visual_modulator=True, use_spatial_modulator=True, mod_early_conv=False,
                 **kwargs):
        # === Functional Model ===
        image = keras.Input((None, None, 3), name="image")
        modulation = ModulationPoints(use_visual_modulator, use_spatial_modulator, mod_early_conv, width)
        _, block_outputs = apply_vgg16(image, width, "osvos", after_conv=modulation)
        sides = []
        for block, conv_name, _ in SIDE_OUTPUTS:
            side = keras.layers.Conv2D(
                SIDE_CHANNELS, 3, padding="same", kernel_initializer=small_init(), name=f"{conv_name}_16"
            )(block_outputs[block])
            if modulation.is_shared(block):
                side = ObjectBroadcast(name=f"{conv_name}_16_to_objects")(side, reference=modulation.objects)
            sides.append(side)
        logits = SideOutputFusion(
            [factor for _, _, factor in SIDE_OUTPUTS], kernel_initializer=small_init(), dtype="float32",
            name="upscore-fuse",
        )(sides, reference=image)
        super().__init__(inputs=[image, *modulation.inputs], outputs=logits, **kwargs)

        # === Config ===
        self.width = width
        self.use_visual_modulator = use_visual_modulator
        self.use_spatial_modulator = use_spatial_modulator
        self.mod_early_conv = mod_early_conv
