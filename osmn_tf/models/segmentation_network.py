"""The segmentation network: a modulated VGG16 hypercolumn FCN (paper section 3, SPEC 4.3)."""
import keras

from osmn_tf.config import modulation_layout, spatial_bias_channels
from osmn_tf.layers import Modulation, ObjectBroadcast, SideOutputFusion
from osmn_tf.models.vgg import max_pool, small_init, vgg_blocks, vgg_conv

# Side outputs: the block whose last convolution they read, with its stride.
SIDE_OUTPUTS = ((2, "conv2_2", 2), (3, "conv3_3", 4), (4, "conv4_3", 8), (5, "conv5_3", 16))
SIDE_CHANNELS = 16


@keras.saving.register_keras_serializable(package="osmn_tf")
class SegmentationNetwork(keras.Model):
    """The per-frame FCN whose layers the modulators adapt to one object.

    VGG16 conv1..conv5 (pools between blocks, none after conv5); each
    modulated convolution is followed by a `Modulation` layer. Four side
    outputs (3x3 convs to 16 channels on conv2_2 .. conv5_3) are up-sampled to
    the frame's size with fixed bilinear kernels, concatenated (the
    hypercolumn) and fused by a 1x1 convolution into one logit per pixel
    (`SideOutputFusion`, which projects before up-sampling: same result).

    Everything before the first modulation (with `mod_early_conv` off:
    conv1_1 .. conv3_1's convolution and the conv2_2 side output) depends on
    the frame alone. Given one image `[1, H, W, 3]` and K objects' modulation
    inputs, the network computes that part once and broadcasts it to the K
    objects (`ObjectBroadcast`); given K copies of the image it is the plain
    per-example network. Both give the same logits.

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

    def __init__(
        self,
        width=1.0,
        use_visual_modulator=True,
        use_spatial_modulator=True,
        mod_early_conv=False,
        **kwargs,
    ):
        # === Functional Model ===
        image = keras.Input((None, None, 3), name="image")
        inputs = [image]
        scales = None
        if use_visual_modulator:
            scales = keras.Input((None,), name="modulation_params")
            inputs.append(scales)
        bias_maps = {}
        if use_spatial_modulator:
            for block, channels in spatial_bias_channels(mod_early_conv, width).items():
                bias_maps[block] = keras.Input((None, None, channels), name=f"spatial_biases{block}")
                inputs.append(bias_maps[block])
        modulated = {conv.name: conv for conv in modulation_layout(mod_early_conv, width)}

        # The objects' batch: any modulation input (none: the image's own batch).
        objects = scales if scales is not None else next(iter(bias_maps.values()), None)
        x = image
        shared = objects is not None  # x still depends on the frame alone
        block_outputs, shared_blocks = {}, set()
        for block, num_convs, filters in vgg_blocks(width):
            for i in range(1, num_convs + 1):
                name = f"conv{block}_{i}"
                x = vgg_conv(filters, name)(x)
                if name in modulated and objects is not None:
                    if shared:
                        x = ObjectBroadcast(name=f"{name}_to_objects")(x, reference=objects)
                        shared = False
                    conv = modulated[name]
                    x = Modulation(conv.scale_offset, conv.bias_offset, name=f"{name}_modulation")(
                        x, scales=scales, biases=bias_maps.get(block)
                    )
            block_outputs[block] = x
            if shared:
                shared_blocks.add(block)
            if block < 5:
                x = max_pool(f"pool{block}")(x)

        sides = []
        for block, conv_name, _ in SIDE_OUTPUTS:
            side = keras.layers.Conv2D(
                SIDE_CHANNELS, 3, padding="same", kernel_initializer=small_init(), name=f"{conv_name}_16"
            )(block_outputs[block])
            if block in shared_blocks:
                side = ObjectBroadcast(name=f"{conv_name}_16_to_objects")(side, reference=objects)
            sides.append(side)
        logits = SideOutputFusion(
            [factor for _, _, factor in SIDE_OUTPUTS], kernel_initializer=small_init(), dtype="float32",
            name="upscore-fuse",
        )(sides, reference=image)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.width = width
        self.use_visual_modulator = use_visual_modulator
        self.use_spatial_modulator = use_spatial_modulator
        self.mod_early_conv = mod_early_conv

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "width": self.width,
            "use_visual_modulator": self.use_visual_modulator,
            "use_spatial_modulator": self.use_spatial_modulator,
            "mod_early_conv": self.mod_early_conv,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
