"""What every segmentation network shares: its modulation inputs and where they enter (SPEC 4.3, 8)."""
import keras

from osmn_tf.config import modulation_layout, spatial_bias_channels
from osmn_tf.layers import Modulation, ObjectBroadcast


class ModulationPoints:
    """Adds a segmentation network's modulation inputs and applies them after each modulated layer.

    Inputs it adds, in order: `modulation_params` `[N, P]` if `use_visual_modulator`;
    one spatial bias map `spatial_biases<block>` per modulated block if
    `use_spatial_modulator`. Call it as the block builders' `after_conv(name, x)`:
    after a modulated layer it adds a `Modulation` layer
    (`<name>_modulation`); other layers pass through.

    The layers before the first modulation depend on the frame alone. Given
    one image `[1, H, W, 3]` and K objects' modulation inputs, the network
    computes them once and broadcasts their output to the K objects
    (`ObjectBroadcast`, `<name>_to_objects`) right before the first
    modulation; given K copies of the image it is the plain per-example network.
    """

    def __init__(self, use_visual_modulator, use_spatial_modulator, mod_early_conv=False, width=1.0,
                 base_model="osvos"):
        self.inputs = []
        self.scales = None
        if use_visual_modulator:
            self.scales = keras.Input((None,), name="modulation_params")
            self.inputs.append(self.scales)
        self.bias_maps = {}
        if use_spatial_modulator:
            for block, channels in spatial_bias_channels(mod_early_conv, width, base_model).items():
                self.bias_maps[block] = keras.Input((None, None, channels), name=f"spatial_biases{block}")
                self.inputs.append(self.bias_maps[block])
        self.layout = {conv.name: conv for conv in modulation_layout(mod_early_conv, width, base_model)}
        # The objects' batch: any modulation input (none: the image's own batch).
        self.objects = self.scales if self.scales is not None else next(iter(self.bias_maps.values()), None)
        self.shared = self.objects is not None  # the features still depend on the frame alone
        self.first_block = min(conv.block for conv in self.layout.values())

    def __call__(self, name, x):
        conv = self.layout.get(name)
        if conv is None or (self.scales is None and not self.bias_maps):
            return x
        x = self.to_objects(x, name)
        return Modulation(conv.scale_offset, conv.bias_offset, name=f"{name}_modulation")(
            x, scales=self.scales, biases=self.bias_maps.get(conv.block))

    def to_objects(self, x, name):
        """`x` broadcast to the objects if it is still the frame's (once: later layers follow it)."""
        if self.shared:
            x = ObjectBroadcast(name=f"{name}_to_objects")(x, reference=self.objects)
            self.shared = False
        return x

    def is_shared(self, block):
        """Whether block `block`'s output is computed once per frame (before the first modulation)."""
        return self.objects is not None and block < self.first_block
