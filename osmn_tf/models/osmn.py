"""The whole OSMN model: visual modulator + spatial modulator + segmentation network, for every base model."""
import dataclasses

import keras

from osmn_tf.config import OSMNConfig, num_modulation_params
from osmn_tf.models.base import Network
from osmn_tf.models.deeplab import DeepLabSegmentationNetwork
from osmn_tf.models.folding import fold_network, has_batch_norm
from osmn_tf.models.lite import LiteSegmentationNetwork, LiteVisualModulator
from osmn_tf.models.masktrack import MaskTrackSegmentationNetwork
from osmn_tf.models.segmentation_network import SegmentationNetwork
from osmn_tf.models.spatial_modulator import SpatialModulator
from osmn_tf.models.visual_modulator import VisualModulator
from osmn_tf.utils import precision as precision_module  # the module: see models/folding.py

# The networks of each base model: (visual modulator, segmentation network). The spatial
# modulator is one class whose poolings follow the base model.
BASE_MODEL_NETWORKS = {
    "osvos": (VisualModulator, SegmentationNetwork),
    "lite": (LiteVisualModulator, LiteSegmentationNetwork),
    "deeplab": (VisualModulator, DeepLabSegmentationNetwork),
    "masktrack": (VisualModulator, MaskTrackSegmentationNetwork),
}
_CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(OSMNConfig))


@keras.saving.register_keras_serializable(package="osmn_tf")
class OSMN(Network):
    """OSMN: segments the object shown by a visual guide, near a spatial guide, in a frame.

    Composes three functional networks, reachable with `get_layer`:
    `visual_modulator`, `spatial_modulator` and `segmentation_network`, of
    the classes of the config's `base_model` (`BASE_MODEL_NETWORKS`). For
    video, run the visual modulator once per object and the per-frame part
    (`frame_model()`) on every frame.

    Args: the fields of `OSMNConfig` (keywords), and `batch_norm_folded`
    (the per-frame networks' BatchNorms folded into their convolutions: an
    inference-only model, made by `fold_batch_norm`).

    Inputs, in order: `guide_image` `[N, S, S, 3]` (S = `guide_size`, 224 by
    default; if the visual modulator is used), `spatial_guide` `[N, H, W, 1]`
    (if the spatial modulator is used; masktrack's 4th input channel),
    `image` `[N, H, W, 3]`. Output: `logits` `[N, H, W, 1]`.
    """

    def __init__(self, batch_norm_folded=False, **kwargs):
        # Validates the fields in one place; what is left is Keras' (name, trainable, dtype).
        config = OSMNConfig(**{name: kwargs.pop(name) for name in _CONFIG_FIELDS if name in kwargs})
        visual_class, segmentation_class = BASE_MODEL_NETWORKS[config.base_model]
        # === Layers ===
        visual_modulator = None
        if config.use_visual_modulator:
            visual_modulator = visual_class.from_osmn_config(config, name="visual_modulator")
        spatial_modulator = None
        if config.use_spatial_modulator:
            spatial_modulator = SpatialModulator.from_osmn_config(
                config, batch_norm_folded=batch_norm_folded, name="spatial_modulator")
        segmentation_network = segmentation_class.from_osmn_config(
            config, batch_norm_folded=batch_norm_folded, name="segmentation_network")

        # === Functional Model ===
        inputs, available = [], {}
        if visual_modulator is not None:
            guide_image = keras.Input((config.guide_size, config.guide_size, 3), name="guide_image")
            inputs.append(guide_image)
            available["modulation_params"] = visual_modulator(guide_image)
        if spatial_modulator is not None or _takes(segmentation_network, "spatial_guide"):
            spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
            inputs.append(spatial_guide)
            available.update(_spatial_inputs(spatial_modulator, spatial_guide))
        inputs.append(keras.Input((None, None, 3), name="image"))
        available["image"] = inputs[-1]
        logits = segmentation_network([available[t.name] for t in segmentation_network.inputs])
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
        return num_modulation_params(self.config.mod_early_conv, self.config.width, self.config.base_model)

    def frame_model(self, precision=None, fold_batch_norm=False):
        """The per-frame part as a Keras model.

        Inputs, in order: `image` `[N, H, W, 3]` (or `[1, H, W, 3]` for all
        objects), `spatial_guide` `[N, H, W, 1]`, `modulation_params` `[N, P]`
        (inputs of a disabled modulator are left out). Output: `logits` `[N, H, W, 1]`.

        With `precision` None or this model's own, it shares this model's
        weights (and is built once). With another (`osmn_tf.utils.precision`), it is
        built from copies of the spatial modulator and the segmentation
        network under that precision, holding their weights as they are now;
        the visual modulator, not part of it, is not copied.

        `fold_batch_norm`: for inference, each per-frame network holding
        BatchNorm (the spatial modulator; lite's segmentation network) is a
        folded copy (`osmn_tf.models.folding`); the others are still shared
        when the precision is this model's own.
        """
        same_precision = precision is None or precision == self.dtype_policy.name
        networks = [self.spatial_modulator, self.segmentation_network]
        fold = [fold_batch_norm and n is not None and has_batch_norm(n) for n in networks]
        if same_precision and not any(fold):
            if self._frame_model is None:
                self._frame_model = self._compose_frame_model(*networks)
            return self._frame_model
        for k, network in enumerate(networks):
            if fold[k]:
                networks[k] = fold_network(network, precision)
            elif network is not None and not same_precision:
                networks[k] = precision_module.copy_model(network, precision)
        return self._compose_frame_model(*networks)

    def _compose_frame_model(self, spatial_modulator, segmentation_network):
        image = keras.Input((None, None, 3), name="image")
        inputs, available = [image], {"image": image}
        if spatial_modulator is not None or _takes(segmentation_network, "spatial_guide"):
            spatial_guide = keras.Input((None, None, 1), name="spatial_guide")
            inputs.append(spatial_guide)
            available.update(_spatial_inputs(spatial_modulator, spatial_guide))
        if self.visual_modulator is not None:
            available["modulation_params"] = keras.Input((self.num_modulation_params,), name="modulation_params")
            inputs.append(available["modulation_params"])
        logits = segmentation_network([available[t.name] for t in segmentation_network.inputs])
        return keras.Model(inputs, logits, name="osmn_frame")

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self.config.to_dict(),
                "batch_norm_folded": self.batch_norm_folded}


def _takes(network, input_name):
    return any(t.name == input_name for t in network.inputs)


def _spatial_inputs(spatial_modulator, spatial_guide):
    """The segmentation network's inputs made from the spatial guide: the guide, and the bias maps by block."""
    available = {"spatial_guide": spatial_guide}
    if spatial_modulator is not None:
        maps = spatial_modulator(spatial_guide)
        maps = maps if isinstance(maps, (list, tuple)) else [maps]
        available.update({f"spatial_biases{block}": m for block, m in zip(spatial_modulator.blocks, maps)})
    return available


def build_osmn(config=None, **overrides):
    """Builds an OSMN model from an `OSMNConfig` (default: the released model).

    Keyword arguments override fields of `config`, e.g. `build_osmn(width=0.25)`
    or `build_osmn(base_model="lite")`.
    """
    config = config or OSMNConfig()
    fields = {**config.to_dict(), **overrides}
    return OSMN(**fields)
