"""Fusing the up-sampled side outputs into one logit per pixel (SPEC 4.3)."""
import keras
from keras import ops

from osmn_tf.layers.bilinear_upsampling import BilinearUpsampling


@keras.saving.register_keras_serializable(package="osmn_tf")
class SideOutputFusion(keras.layers.Layer):
    """The hypercolumn's 1x1 fusion: `logits = b + sum_i up_i(side_i) . w_i`.

    The original up-samples each side output (`BilinearUpsampling`),
    concatenates them into a hypercolumn at the frame's size and applies a
    1x1 convolution with one output channel. The up-sampling is linear and
    acts on each channel alike, so it commutes with the 1x1 projection: this
    layer projects each side output to one channel at its own resolution
    first, then up-samples that channel. Same logits up to round-off, same
    weights (`kernel` `[1, 1, sum C_i, 1]`, `bias` `[1]`, in the
    concatenation's channel order), and the hypercolumn (64 channels at the
    frame's size) is never built.

    Args:
        factors: each side output's stride (its up-sampling factor), in order.
        kernel_initializer: the 1x1 projection's initialiser.

    Call arguments:
        inputs: list of side outputs `[N, h_i, w_i, C_i]`.
        reference: a tensor `[N, H, W, ...]` whose spatial size the logits take.
    """

    def __init__(self, factors, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.factors = [int(f) for f in factors]
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.upsamplings = [BilinearUpsampling(f, dtype=self.dtype_policy, name=f"up{f}") for f in self.factors]

    def build(self, inputs_shape, reference_shape=None):
        if len(inputs_shape) != len(self.factors):
            raise ValueError(f"SideOutputFusion expects {len(self.factors)} side outputs, got {len(inputs_shape)}")
        self.channels = [int(shape[-1]) for shape in inputs_shape]
        self.kernel = self.add_weight(shape=(1, 1, sum(self.channels), 1), initializer=self.kernel_initializer,
                                      name="kernel")
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")

    def call(self, inputs, reference):
        logits, offset = None, 0
        for side, channels, upsampling in zip(inputs, self.channels, self.upsamplings):
            kernel = self.kernel[:, :, offset:offset + channels]
            offset += channels
            projected = ops.conv(ops.cast(side, self.compute_dtype), kernel, strides=1, padding="valid")
            term = upsampling(projected, reference)
            logits = term if logits is None else logits + term
        return logits + self.bias

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0][0], reference_shape[1], reference_shape[2], 1)

    def get_config(self):
        config = super().get_config()
        config.update({"factors": self.factors,
                       "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)})
        return config
