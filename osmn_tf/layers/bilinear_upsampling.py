"""The fixed bilinear up-sampling of OSMN's side outputs (SPEC 4.3)."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="osmn_tf")
class BilinearUpsampling(keras.layers.Layer):
    """Up-samples by an integer factor with a fixed bilinear kernel, then centre-crops.

    Equals the original's per-channel transposed convolution (kernel `2f x 2f`,
    stride `f`, VALID, bilinear weights on the channel diagonal): an input of
    `s` pixels grows to `(s + 1) * f`, and the centre `H x W` window of the
    reference tensor's size is kept, offset `(up - out) // 2`. The kernel is a
    constant, not a weight: the original overwrote it with these values before
    every run, so it is never trained and never read from a checkpoint.

    Args:
        factor: the stride `f`.

    Call arguments:
        inputs: `[N, h, w, C]` features.
        reference: a tensor `[N, H, W, ...]` whose spatial size the output takes.
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)
        if self.factor < 1:
            raise ValueError(f"BilinearUpsampling factor must be >= 1, got {factor!r}")

    def call(self, inputs, reference):
        ref_shape = ops.shape(reference)
        # The 2-D kernel is the outer product of a 1-D profile, so the transposed
        # convolution separates into one pass per axis, and with stride f each
        # output pixel of a pass reads just two input pixels: two gathers and a
        # weighted sum. Same values as a transposed convolution with the 2f x 2f
        # kernel (the weights are dyadic fractions, exact in float), about 10x
        # faster on CPU, where the single-channel transposed convolution is
        # memory-bound.
        x = self._upsample_axis(inputs, ref_shape[1], axis=1)
        return self._upsample_axis(x, ref_shape[2], axis=2)

    def _upsample_axis(self, x, out_size, axis):
        """Up-samples `x` along `axis` to `(s + 1) * f` and keeps the centre `out_size`."""
        f = self.factor
        in_size = ops.shape(x)[axis]
        top = ((in_size + 1) * f - out_size) // 2
        y = ops.arange(out_size) + top
        # Output y receives input i with kernel tap y - i * f in [0, 2f): i = y // f
        # (tap in [0, f)) and i - 1 (tap in [f, 2f)).
        upper = ops.floor_divide(y, f)
        lower = upper - 1
        tap = ops.cast(y - upper * f, x.dtype)
        center = f - 0.5
        upper_weight = 1 - ops.abs(tap - center) / f
        lower_weight = 1 - ops.abs(tap + f - center) / f
        # Taps that fall outside the input contribute nothing (VALID transposed conv).
        upper_weight = ops.where((upper >= 0) & (upper < in_size), upper_weight, ops.zeros_like(upper_weight))
        lower_weight = ops.where((lower >= 0) & (lower < in_size), lower_weight, ops.zeros_like(lower_weight))
        upper = ops.clip(upper, 0, in_size - 1)
        lower = ops.clip(lower, 0, in_size - 1)
        shape = (-1, 1, 1) if axis == 1 else (-1, 1)
        return (ops.take(x, upper, axis=axis) * ops.reshape(upper_weight, shape)
                + ops.take(x, lower, axis=axis) * ops.reshape(lower_weight, shape))

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor})
        return config
