"""Sharing a frame's unmodulated features among its objects."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="osmn_tf")
class ObjectBroadcast(keras.layers.Layer):
    """Repeats features computed once per frame for each of that frame's objects.

    The layers before the first modulation see only the frame, so they are the
    same for every object. Fed one frame `[1, ...]` with K objects' guides, the
    segmentation network runs them once and broadcasts here; fed `[K, ...]`
    (one copy of the frame per object, as in training), this layer returns its
    input unchanged.

    Call arguments:
        inputs: features `[F, H, W, C]`, F = 1 or the number of objects K.
        reference: any tensor `[K, ...]` of the objects (modulation inputs).
    """

    def call(self, inputs, reference):
        shape = (ops.shape(reference)[0], *ops.shape(inputs)[1:])
        # Broadcasting to the same shape returns the input itself.
        return ops.broadcast_to(inputs, shape)

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (reference_shape[0], *inputs_shape[1:])
