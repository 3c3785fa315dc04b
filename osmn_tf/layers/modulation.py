"""The modulation of OSMN's segmentation network (paper section 3, SPEC 4.3)."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="osmn_tf")
class Modulation(keras.layers.Layer):
    """Scales a feature map per channel and shifts it per pixel: `y = x * gamma + beta`.

    `x` is the ReLU output of a convolution with C channels. `gamma` is the
    slice `[scale_offset, scale_offset + C)` of the visual modulator's vector
    (one scale per channel, per example); `beta` is the channel slice
    `[bias_offset, bias_offset + C)` of the spatial modulator's map for this
    block (one bias per pixel and channel). A term whose input is not given
    is dropped, which is how the variants without a modulator are built.

    Args:
        scale_offset: where this layer's scales start in the visual modulator's output.
        bias_offset: where this layer's biases start in the spatial bias map's channels.

    Call arguments:
        inputs: features `[N, H, W, C]`.
        scales: optional visual modulation parameters `[N, P]`.
        biases: optional spatial bias map `[N, H, W, K]` for the whole block.
    """

    def __init__(self, scale_offset=0, bias_offset=0, **kwargs):
        super().__init__(**kwargs)
        self.scale_offset = int(scale_offset)
        self.bias_offset = int(bias_offset)

    def call(self, inputs, scales=None, biases=None):
        channels = inputs.shape[-1]
        outputs = inputs
        if scales is not None:
            gamma = scales[:, self.scale_offset : self.scale_offset + channels]
            outputs = outputs * ops.cast(gamma[:, None, None, :], outputs.dtype)
        if biases is not None:
            # Broadcasting would hide a map of another size (lite's VALID pools at sizes not a multiple of 32).
            size, bias_size = tuple(inputs.shape)[1:3], tuple(biases.shape)[1:3]
            if None not in size + bias_size and size != bias_size:
                raise ValueError(f"{self.name}: the spatial biases are {bias_size[1]}x{bias_size[0]} (WxH) but the "
                                 f"features {size[1]}x{size[0]}; with base_model lite the frame's height and width "
                                 f"must be multiples of 32")
            beta = biases[..., self.bias_offset : self.bias_offset + channels]
            outputs = outputs + ops.cast(beta, outputs.dtype)
        return outputs

    def compute_output_shape(self, inputs_shape, scales_shape=None, biases_shape=None):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update({"scale_offset": self.scale_offset, "bias_offset": self.bias_offset})
        return config
