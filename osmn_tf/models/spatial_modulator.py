"""The spatial modulator (paper section 3.2, SPEC 4.2)."""
import keras

from osmn_tf.config import spatial_bias_channels
from osmn_tf.models.vgg import small_init


@keras.saving.register_keras_serializable(package="osmn_tf")
class SpatialModulator(keras.Model):
    """Turns the spatial guide into per-pixel biases for each modulated block.

    The guide (a Gaussian of the previous mask) is average-pooled down to each
    block's resolution; a 1x1 convolution without bias, BatchNorm and ReLU then
    give one bias map per modulated channel. Output `k` holds the biases of
    block `k`'s convolutions side by side in the channel axis (SPEC 4.2).

    Args:
        width: multiplier on the channel counts (they follow the VGG16 blocks).
        mod_early_conv: also produce biases for blocks 1 and 2.
        batch_norm_momentum, batch_norm_epsilon: BatchNorm settings.
        synchronized_batch_norm: aggregate BatchNorm statistics over replicas.
        batch_norm_folded: each BatchNorm is folded into its convolution, which
            gets a bias instead (`fold_batch_norm`): the same maps at inference
            in one pass each; such a model is for inference only.

    Input: `spatial_guide` `[N, H, W, 1]`.
    Outputs: a list, one map per modulated block `b`: `[N, H/2^(b-1), W/2^(b-1), convs(b) * channels(b)]`
    (sizes rounded up, as SAME pooling does).
    """

    def __init__(
        self,
        width=1.0,
        mod_early_conv=False,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        synchronized_batch_norm=False,
        batch_norm_folded=False,
        **kwargs,
    ):
        # === Functional Model ===
        spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
        blocks = spatial_bias_channels(mod_early_conv, width)
        # Block b works at 1/2^(b-1) of the frame: the guide pooled b-1 times.
        pooled = [spatial_guide]
        for d in range(1, max(blocks)):
            pooled.append(keras.layers.AveragePooling2D(2, strides=2, padding="same", name=f"pool{d}")(pooled[-1]))
        outputs = []
        for block, channels in blocks.items():
            x = keras.layers.Conv2D(
                channels,
                1,
                use_bias=batch_norm_folded,
                kernel_initializer=small_init(),
                name=f"conv{block}",
            )(pooled[block - 1])
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
        self.blocks = list(blocks)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "width": self.width,
            "mod_early_conv": self.mod_early_conv,
            "batch_norm_momentum": self.batch_norm_momentum,
            "batch_norm_epsilon": self.batch_norm_epsilon,
            "synchronized_batch_norm": self.synchronized_batch_norm,
            "batch_norm_folded": self.batch_norm_folded,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
