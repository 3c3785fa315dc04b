"""TF1's `resize_bilinear`, which lite's head uses (SPEC 8.1)."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="osmn_tf")
class LegacyBilinearResize(keras.layers.Layer):
    """Bilinear resize as TF1's `tf.image.resize_bilinear` (align_corners and half_pixel_centers False).

    Output pixel `i` reads source coordinate `i * in / out` (float32, no half-pixel
    shift), between rows `floor` and `ceil` of it (clamped to the last): the
    image's top-left corner stays put and the bottom and right edges are
    under-sampled. Today's `tf.image.resize` shifts by half a pixel instead, so
    it gives other values; this layer keeps the original's. Interpolates along
    the width first, then the height, with `a + (b - a) * t`, the kernel's order.

    Args:
        divisor: the output is the reference's size divided by it (floor), e.g. 2
            for lite's side outputs at half the frame's size.

    Call arguments:
        inputs: `[N, h, w, C]`.
        reference: a tensor `[N, H, W, ...]`; the output is `[N, H // divisor, W // divisor, C]`.
    """

    def __init__(self, divisor=1, **kwargs):
        super().__init__(**kwargs)
        self.divisor = int(divisor)
        if self.divisor < 1:
            raise ValueError(f"LegacyBilinearResize divisor must be >= 1, got {divisor!r}")

    def call(self, inputs, reference):
        ref_shape = ops.shape(reference)
        x = self._resize_axis(inputs, ref_shape[2] // self.divisor, axis=2)
        return self._resize_axis(x, ref_shape[1] // self.divisor, axis=1)

    def _resize_axis(self, x, out_size, axis):
        in_size = ops.shape(x)[axis]
        scale = ops.cast(in_size, "float32") / ops.cast(out_size, "float32")
        source = ops.cast(ops.arange(out_size), "float32") * scale
        lower = ops.cast(ops.floor(source), "int32")
        upper = ops.minimum(ops.cast(ops.ceil(source), "int32"), in_size - 1)
        fraction = ops.cast(source - ops.floor(source), x.dtype)
        shape = (-1, 1, 1) if axis == 1 else (-1, 1)
        low, high = ops.take(x, lower, axis=axis), ops.take(x, upper, axis=axis)
        return low + (high - low) * ops.reshape(fraction, shape)

    def compute_output_shape(self, inputs_shape, reference_shape):
        size = [None if s is None else s // self.divisor for s in reference_shape[1:3]]
        return (inputs_shape[0], *size, inputs_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"divisor": self.divisor})
        return config
