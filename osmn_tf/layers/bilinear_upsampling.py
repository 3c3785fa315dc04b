"""The fixed bilinear up-sampling of OSMN's side outputs (SPEC 4.3)."""
import keras
import numpy as np
import tensorflow as tf


def bilinear_kernel(size):
    """The `size x size` bilinear interpolation kernel the original (and FCN) uses."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    grid = np.arange(size, dtype=np.float64)
    profile = 1 - np.abs(grid - center) / factor
    return np.outer(profile, profile).astype(np.float32)


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
        f = self.factor
        kernel = tf.constant(bilinear_kernel(2 * f)[:, :, None, None], dtype=inputs.dtype)
        shape = tf.shape(inputs)
        n, h, w, c = shape[0], shape[1], shape[2], shape[3]
        # Channels are independent (diagonal kernel): fold them into the batch and
        # run a single-channel transposed convolution.
        folded = tf.reshape(tf.transpose(inputs, [0, 3, 1, 2]), [n * c, h, w, 1])
        up_h, up_w = (h + 1) * f, (w + 1) * f
        up = tf.nn.conv2d_transpose(folded, kernel, [n * c, up_h, up_w, 1], strides=f, padding="VALID")
        ref_shape = tf.shape(reference)
        out_h, out_w = ref_shape[1], ref_shape[2]
        top, left = (up_h - out_h) // 2, (up_w - out_w) // 2
        up = up[:, top : top + out_h, left : left + out_w, :]
        return tf.transpose(tf.reshape(up, [n, c, out_h, out_w]), [0, 2, 3, 1])

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor})
        return config
