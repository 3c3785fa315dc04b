"""The whole OSMN model: visual modulator + spatial modulator + segmentation network."""
import keras

from osmn_tf.config import GUIDE_SIZE, OSMNConfig, num_modulation_params
from osmn_tf.models.folding import fold_spatial_modulator
from osmn_tf.models.segmentation_network import SegmentationNetwork
from osmn_tf.models.spatial_modulator import SpatialModulator
from osmn_tf.models.visual_modulator import VisualModulator
from osmn_tf.precision import copy_model


@keras.saving.register_keras_serializable(package="osmn_tf")
class OSMN(keras.Model):
    """OSMN: segments the object shown by a visual guide, near a spatial guide, in a frame.

    Composes three functional sub-models, reachable with `get_layer`:
    `visual_modulator`, `spatial_modulator` and `segmentation_network`.
    For video, run the visual modulator once per object and the per-frame
    part (`frame_model()`) on every frame.

    Args: the fields of `OSMNConfig`, and `batch_norm_folded` (the spatial
    modulator's BatchNorm folded into its convolutions: an inference-only
    model, made by `fold_batch_norm`).

    Inputs, in order: `guide_image` `[N, S, S, 3]` (S = `guide_size`, 224 by
    default; if the visual modulator
    is used), `spatial_guide` `[N, H, W, 1]` (if the spatial modulator is used),
    `image` `[N, H, W, 3]`. Output: `logits` `[N, H, W, 1]`.
    """

    def __init__(
        self,
        use_visual_modulator=True,
        use_spatial_modulator=True,
        mod_early_conv=False,
        width=1.0,
        dropout_rate=0.5,
        guide_size=GUIDE_SIZE,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1e-3,
        synchronized_batch_norm=False,
        batch_norm_folded=False,
        **kwargs,
    ):
        # Validates the arguments in one place.
        config = OSMNConfig(
            use_visual_modulator=use_visual_modulator,
            use_spatial_modulator=use_spatial_modulator,
            mod_early_conv=mod_early_conv,
            width=width,
            dropout_rate=dropout_rate,
            guide_size=guide_size,
            batch_norm_momentum=batch_norm_momentum,
            batch_norm_epsilon=batch_norm_epsilon,
            synchronized_batch_norm=synchronized_batch_norm,
        )
        # === Layers ===
        visual_modulator = None
        if use_visual_modulator:
            visual_modulator = VisualModulator(
                width=width, mod_early_conv=mod_early_conv, dropout_rate=dropout_rate,
                guide_size=config.guide_size, name="visual_modulator",
            )
        spatial_modulator = None
        if use_spatial_modulator:
            spatial_modulator = SpatialModulator(
                width=width,
                mod_early_conv=mod_early_conv,
                batch_norm_momentum=batch_norm_momentum,
                batch_norm_epsilon=batch_norm_epsilon,
                synchronized_batch_norm=synchronized_batch_norm,
                batch_norm_folded=batch_norm_folded,
                name="spatial_modulator",
            )
        segmentation_network = SegmentationNetwork(
            width=width,
            use_visual_modulator=use_visual_modulator,
            use_spatial_modulator=use_spatial_modulator,
            mod_early_conv=mod_early_conv,
            name="segmentation_network",
        )

        # === Functional Model ===
        inputs = []
        seg_inputs = [keras.Input((None, None, 3), name="image")]
        if visual_modulator is not None:
            guide_image = keras.Input((config.guide_size, config.guide_size, 3), name="guide_image")
            inputs.append(guide_image)
            seg_inputs.append(visual_modulator(guide_image))
        if spatial_modulator is not None:
            spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
            inputs.append(spatial_guide)
            seg_inputs.extend(spatial_modulator(spatial_guide))
        inputs.append(seg_inputs[0])
        logits = segmentation_network(seg_inputs)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self.config = config
        self.batch_norm_folded = bool(batch_norm_folded)
        self.visual_modulator = visual_modulator
        self.spatial_modulator = spatial_modulator
        self.segmentation_network = segmentation_network
        self._frame_model = None

    @property
    def num_modulation_params(self):
        """Length of the visual modulation vector (0 without a visual modulator)."""
        if not self.config.use_visual_modulator:
            return 0
        return num_modulation_params(self.config.mod_early_conv, self.config.width)

    def frame_model(self, precision=None, fold_batch_norm=False):
        """The per-frame part as a Keras model.

        Inputs, in order: `image` `[N, H, W, 3]`, `spatial_guide` `[N, H, W, 1]`,
        `modulation_params` `[N, P]` (inputs of a disabled modulator are left out).
        Output: `logits` `[N, H, W, 1]`.

        With `precision` None or this model's own, it shares this model's
        weights (and is built once). With another (`osmn_tf.precision`), it is
        built from copies of the spatial modulator and the segmentation
        network under that precision, holding their weights as they are now;
        the visual modulator, not part of it, is not copied.

        `fold_batch_norm`: for inference, the spatial modulator is a folded
        copy (`fold_spatial_modulator`); the segmentation network is still
        shared when the precision is this model's own.
        """
        same_precision = precision is None or precision == self.dtype_policy.name
        fold = fold_batch_norm and self.spatial_modulator is not None and not self.batch_norm_folded
        if same_precision and not fold:
            if self._frame_model is None:
                self._frame_model = self._compose_frame_model(self.spatial_modulator, self.segmentation_network)
            return self._frame_model
        spatial_modulator = self.spatial_modulator
        if fold:
            spatial_modulator = fold_spatial_modulator(spatial_modulator, precision)
        elif spatial_modulator is not None:
            spatial_modulator = copy_model(spatial_modulator, precision)
        segmentation_network = self.segmentation_network
        if not same_precision:
            segmentation_network = copy_model(segmentation_network, precision)
        return self._compose_frame_model(spatial_modulator, segmentation_network)

    def _compose_frame_model(self, spatial_modulator, segmentation_network):
        image = keras.Input((None, None, 3), name="image")
        inputs, seg_inputs = [image], [image]
        if spatial_modulator is not None:
            spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
            inputs.append(spatial_guide)
        if self.visual_modulator is not None:
            params = keras.Input((self.num_modulation_params,), name="modulation_params")
            inputs.append(params)
            seg_inputs.append(params)
        if spatial_modulator is not None:
            seg_inputs.extend(spatial_modulator(spatial_guide))
        logits = segmentation_network(seg_inputs)
        return keras.Model(inputs, logits, name="osmn_frame")

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.config.to_dict(),
                "batch_norm_folded": self.batch_norm_folded}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_osmn(config=None, **overrides):
    """Builds an OSMN model from an `OSMNConfig` (default: the released model).

    Keyword arguments override fields of `config`, e.g. `build_osmn(width=0.25)`.
    """
    config = config or OSMNConfig()
    fields = {**config.to_dict(), **overrides}
    return OSMN(**fields)
