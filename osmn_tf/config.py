"""Configuration of the OSMN network (SPEC section 4), kept apart from the code that reads it."""
import dataclasses

# VGG16's convolution blocks: (block index, number of convolutions, channels at width 1.0).
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
VGG16_FC_CHANNELS = 4096
# The visual modulator's input: the object's crop, resized to a square.
GUIDE_SIZE = 224
# VGG16's five poolings: fc6's kernel covers the guide's size / 32 (7 at 224).
GUIDE_STRIDE = 32


@dataclasses.dataclass(frozen=True)
class OSMNConfig:
    """What varies between OSMN models; the defaults are the released model.

    Attributes:
        use_visual_modulator: scale channels with the visual modulator's output
            (the release's `--no_visual_modulator` turns it off).
        use_spatial_modulator: add the spatial modulator's per-pixel biases
            (`--no_spatial_modulator` turns it off).
        mod_early_conv: also modulate conv1_1 .. conv2_2 (`--mod_early_conv`).
        width: multiplier on every VGG16 channel count and on fc6/fc7; 1.0 is the
            paper's network, 0.125 or 0.25 make tests and CPU demos fast.
        dropout_rate: dropout after fc6 and fc7 of the visual modulator in training.
        guide_size: side of the square visual guide; fc6's kernel is
            `guide_size / 32`. 224 is the paper's (and ImageNet VGG16's); smaller
            sizes (e.g. 64) make the visual modulator cheap for CPU training.
        batch_norm_momentum, batch_norm_epsilon: the spatial modulator's BatchNorm
            (TF-slim's defaults, as in the original).
        synchronized_batch_norm: aggregate BatchNorm statistics over replicas under
            tf.distribute, so multi-replica training matches one device.
    """

    use_visual_modulator: bool = True
    use_spatial_modulator: bool = True
    mod_early_conv: bool = False
    width: float = 1.0
    dropout_rate: float = 0.5
    guide_size: int = GUIDE_SIZE
    batch_norm_momentum: float = 0.99
    batch_norm_epsilon: float = 1e-3
    synchronized_batch_norm: bool = False

    def __post_init__(self):
        if not self.width > 0:
            raise ValueError(f"OSMNConfig.width must be > 0, got {self.width!r}")
        if not 0 <= self.dropout_rate < 1:
            raise ValueError(f"OSMNConfig.dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        check_guide_size(self.guide_size)

    def to_dict(self):
        return dataclasses.asdict(self)


def check_guide_size(guide_size, name="OSMNConfig.guide_size"):
    """`guide_size` as an int, if it is a positive multiple of 32 (VGG16's total stride)."""
    if isinstance(guide_size, bool) or int(guide_size) != guide_size or guide_size < GUIDE_STRIDE \
            or guide_size % GUIDE_STRIDE:
        raise ValueError(f"{name} must be a multiple of {GUIDE_STRIDE} of at least {GUIDE_STRIDE} "
                         f"(VGG16 pools five times), got {guide_size!r}")
    return int(guide_size)


def scaled(channels, width):
    """A VGG channel count at `width`, at least 1."""
    return max(1, int(channels * width))


def modulated_layers(mod_early_conv):
    """Names and channel counts (at width 1.0) of the modulated convolutions, in network order.

    This order is the layout of the visual modulator's output vector and of the
    spatial modulator's bias maps (SPEC 4.1, 4.2).
    """
    first_block = 1 if mod_early_conv else 3
    return [
        (f"conv{block}_{i}", channels)
        for block, num_convs, channels in VGG16_BLOCKS
        if block >= first_block
        for i in range(1, num_convs + 1)
    ]


def num_modulation_params(mod_early_conv=False, width=1.0):
    """Length of the visual modulator's output: 3840 for the paper's model, 4224 with mod_early_conv."""
    return sum(scaled(c, width) for _, c in modulated_layers(mod_early_conv))
