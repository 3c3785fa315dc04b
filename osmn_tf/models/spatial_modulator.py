"""The spatial modulator (paper section 3.2, SPEC 4.2, 8.1, 8.2)."""
import keras

from osmn_tf.config import spatial_bias_channels, spatial_pooling
from osmn_tf.models.base import Network
from osmn_tf.models.vgg import small_init


@keras.saving.register_keras_serializable(package="osmn_tf")
class SpatialModulator(Network):
    """Turns the spatial guide into per-pixel biases for each modulated block.

    The guide (a Gaussian of the previous mask) is average-pooled down to each
    block's resolution; a 1x1 convolution without bias, BatchNorm and ReLU then
    give one bias map per modulated channel. Output `k` holds the biases of
    block `k`'s convolutions side by side in the channel axis (SPEC 4.2).
    The poolings follow the base model (`osmn_tf.config.spatial_pooling`):
    2x2 SAME for the VGG16 ones (deeplab's conv5 map at 1/8, as its conv5),
    4x4 then 2x2 VALID for lite (maps `conv3, conv5, conv11, conv13`).

    Args:
        width: multiplier on the channel counts (they follow the modulated layers).
        mod_early_conv: also produce biases for blocks 1 and 2.
        batch_norm_momentum, batch_norm_epsilon: BatchNorm settings.
        synchronized_batch_norm: aggregate BatchNorm statistics over replicas.
        batch_norm_folded: each BatchNorm is folded into its convolution, which
            gets a bias instead (`fold_batch_norm`): the same maps at inference
            in one pass each; such a model is for inference only.
        base_model: `osvos`, `lite` or `deeplab` (masktrack has no spatial modulator).

    Input: `spatial_guide` `[N, H, W, 1]`.
    Outputs: a list, one map per modulated block `b` (`blocks`), at that block's
    resolution (SAME pooling rounds sizes up, lite's VALID pooling down).
    """

    def __init__(
        self,
        width=1.0,
        mod_early_conv=False,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        synchronized_batch_norm=False,
        batch_norm_folded=False,
        base_model="osvos",
        **kwargs,
    ):
        blocks = spatial_bias_channels(mod_early_conv, width, base_model)
        if not blocks:
            raise ValueError(f"{base_model} has no spatial modulator")
        layout = spatial_pooling(base_model, mod_early_conv)
        # === Functional Model ===
        spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
        pooled = [spatial_guide]
        for name, size, padding in layout.pools:
            pooled.append(keras.layers.AveragePooling2D(size, strides=size, padding=padding, name=name)(pooled[-1]))
        outputs = []
        for block, channels in blocks.items():
            x = keras.layers.Conv2D(
                channels,
                1,
                use_bias=batch_norm_folded,
                kernel_initializer=small_init(),
                name=f"conv{block}",
            )(pooled[layout.levels[block]])
            if not batch_norm_folded:
                x = keras.layers.BatchNormalization(
                    momentum=batch_norm_momentum,
                    epsilon=batch_norm_epsilon,
                    synchronized=synchronized_batch_norm,
                    name=f"conv{block}_bn",
                )(x)
            outputs.append(keras.layers.ReLU(name=f"conv{block}_biases")(x))
        super().__init__(inputs=spatial_guide, outputs=outputs, **kwargs)

        # === Config ===
        self.width = width
        self.mod_early_conv = mod_early_conv
        self.batch_norm_momentum = batch_norm_momentum
        self.batch_norm_epsilon = batch_norm_epsilon
        self.synchronized_batch_norm = synchronized_batch_norm
        self.batch_norm_folded = batch_norm_folded
        self.base_model = base_model
        self.blocks = list(blocks)
