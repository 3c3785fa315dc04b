"""`base_model="masktrack"`: MaskTrack's VGG16 with the spatial guide as a 4th input channel (SPEC 8.3)."""
import keras

from osmn_tf.layers import AlignedPadding, ObjectBroadcast
from osmn_tf.models.base import Network
from osmn_tf.models.deeplab import apply_aspp, score_up
from osmn_tf.models.modulated import ModulationPoints
from osmn_tf.models.vgg import apply_vgg16


@keras.saving.register_keras_serializable(package="osmn_tf")
class MaskTrackSegmentationNetwork(Network):
    """The paper's MaskTrack-M: MaskTrack's network on `[spatial guide, B, G, R]`, scaled by the visual modulator.

    The spatial guide (the Gaussian of the previous mask, or with the
    release's `--use_original_mask` the dilated mask times 255) is
    concatenated in front of the frame's channels (`combined_image`), so
    every layer depends on the object: nothing is shared among objects. Then
    VGG16 with 3x3 stride-2 pools (pool4 stride 1, conv5 dilated by 2, pool5
    3x3 stride 1), conv3_1 .. conv5_3 scaled by the visual modulator (no
    spatial modulator), ASPP with heads `fc8_1..4`, and `score-up` with a
    centre crop to the frame.

    With `aligned_size` the 4-channel input is zero-padded to that size first
    (`aligned_image`), and the crop still uses the unpadded frame's size
    against the padded network's output, so the logits are shifted by the
    padding's offset: the release's quirk, kept.

    Args:
        width: multiplier on the VGG16 and ASPP channel counts.
        use_visual_modulator: take per-channel scales (`modulation_params`).
        mod_early_conv: modulate conv1_1 .. conv2_2 too.
        dropout_rate: dropout in the ASPP branches, in training.
        aligned_size: `(W, H)` to pad the input to, or None.

    Inputs, in order: `image` `[N or 1, H, W, 3]`, `spatial_guide` `[N, H, W, 1]`,
    `modulation_params` `[N, P]` if `use_visual_modulator`. Output: `logits` `[N, H, W, 1]`.
    """

    def __init__(self, width=1.0, use_visual_modulator=True, mod_early_conv=False, dropout_rate=0.5,
                 aligned_size=None, **kwargs):
        # === Functional Model ===
        image = keras.Input((None, None, 3), name="image")
        spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
        modulation = ModulationPoints(use_visual_modulator, False, mod_early_conv, width, "masktrack")
        # One copy of the frame per object from the start: the first convolution sees the object's guide.
        x = ObjectBroadcast(name="image_to_objects")(image, reference=spatial_guide)
        modulation.shared = False
        x = keras.layers.Concatenate(name="combined_image")([spatial_guide, x])
        if aligned_size is not None:
            x = AlignedPadding(aligned_size, name="aligned_image")(x)
        x, _ = apply_vgg16(x, width, "masktrack", after_conv=modulation)
        logits = score_up(apply_aspp(x, width, dropout_rate, "fc8"), image)
        super().__init__(inputs=[image, spatial_guide, *modulation.inputs], outputs=logits, **kwargs)

        # === Config ===
        self.width = width
        self.use_visual_modulator = use_visual_modulator
        self.mod_early_conv = mod_early_conv
        self.dropout_rate = dropout_rate
        self.aligned_size = None if aligned_size is None else list(aligned_size)
