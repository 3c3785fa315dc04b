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


@dataclasses.dataclass(frozen=True)
class ModulatedConv:
    """One modulated convolution and where its modulation parameters lie.

    Attributes:
        name: the convolution's name, `conv<block>_<i>`.
        block: its VGG16 block.
        channels: its output channels at the model's width.
        scale_offset: where its scales start in the visual modulator's vector.
        bias_offset: where its biases start in the channels of its block's
            spatial bias map.
    """

    name: str
    block: int
    channels: int
    scale_offset: int
    bias_offset: int


def modulation_layout(mod_early_conv=False, width=1.0):
    """The modulated convolutions (`ModulatedConv`) in network order (SPEC 4.1, 4.2).

    conv3_1 .. conv5_3, and conv1_1 .. conv2_2 with `mod_early_conv`. The
    visual modulator's vector holds their scales one after the other in this
    order; the spatial modulator's map for a block holds that block's
    convolutions' biases side by side in the channel axis.
    """
    first_block = 1 if mod_early_conv else 3
    layout, scale_offset = [], 0
    for block, num_convs, channels in VGG16_BLOCKS:
        if block < first_block:
            continue
        channels = scaled(channels, width)
        for i in range(num_convs):
            layout.append(ModulatedConv(f"conv{block}_{i + 1}", block, channels, scale_offset, i * channels))
            scale_offset += channels
    return layout


def spatial_bias_channels(mod_early_conv=False, width=1.0):
    """`{block: channels of its spatial bias map}` for the blocks that receive spatial biases, in order."""
    channels = {}
    for conv in modulation_layout(mod_early_conv, width):
        channels[conv.block] = conv.bias_offset + conv.channels
    return channels


def num_modulation_params(mod_early_conv=False, width=1.0):
    """Length of the visual modulator's output: 3840 for the paper's model, 4224 with mod_early_conv."""
    return sum(conv.channels for conv in modulation_layout(mod_early_conv, width))
