"""masktrack's `--aligned_size`: zero-padding the network's input to a fixed size (SPEC 8.3)."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="osmn_tf")
class AlignedPadding(keras.layers.Layer):
    """Zero-pads `[N, H, W, C]` to `[N, Ha, Wa, C]`, centred as the release's `padding_image`.

    `(Ha - H) // 2` rows go on top and the rest at the bottom; `(Wa - W) // 2`
    columns on the left and the rest on the right. A frame larger than the
    aligned size is an error (the release's `tf.pad` fails on it too).

    Args:
        aligned_size: `(Wa, Ha)`, width first, as the release's `--aligned_size`.
    """

    def __init__(self, aligned_size, **kwargs):
        super().__init__(**kwargs)
        self.aligned_size = tuple(int(v) for v in aligned_size)

    def call(self, inputs):
        width, height = self.aligned_size
        for axis, aligned in ((1, height), (2, width)):
            size = inputs.shape[axis]
            if size is not None and size > aligned:
                raise ValueError(f"aligned_size is {width}x{height} (WxH) but the input is "
                                 f"{inputs.shape[2]}x{inputs.shape[1]}: it must fit inside")
        shape = ops.shape(inputs)
        top, left = (height - shape[1]) // 2, (width - shape[2]) // 2
        return ops.pad(inputs, [[0, 0], [top, height - shape[1] - top], [left, width - shape[2] - left], [0, 0]])

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], self.aligned_size[1], self.aligned_size[0], inputs_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"aligned_size": list(self.aligned_size)})
        return config
