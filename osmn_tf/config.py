"""Configuration of the OSMN network (SPEC sections 4 and 8), kept apart from the code that reads it."""
import dataclasses
import math

# The release's `--base_model` choices (SPEC 8): osvos is section 4's network.
BASE_MODELS = ("osvos", "lite", "deeplab", "masktrack")
# VGG16's convolution blocks: (block index, number of convolutions, channels at width 1.0).
VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
VGG16_FC_CHANNELS = 4096
# MobileNet v1 (SPEC 8.1): Conv2d_0 is a 3x3/2 convolution to 32 channels, then Conv2d_1 .. Conv2d_13 are
# depthwise-separable blocks, (stride of the depthwise convolution, channels of the pointwise one).
MOBILENET_V1_FIRST_CHANNELS = 32
MOBILENET_V1_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512),
                       (1, 512), (1, 512), (2, 1024), (1, 1024))
# lite modulates the pointwise convolutions of these blocks, at strides 4, 8, 16 and 32.
LITE_MODULATED_BLOCKS = (3, 5, 11, 13)
# lite's visual modulator: MobileNet's Logits convolution to this many channels, before the four heads.
LITE_FEATURE_CHANNELS = 2048
# lite's network needs frame sizes that are multiples of its total stride (SPEC 8.1, a quirk).
LITE_STRIDE = 32
# The visual modulator's input: the object's crop, resized to a square.
GUIDE_SIZE = 224
# VGG16's five poolings: fc6's kernel covers the guide's size / 32 (7 at 224).
GUIDE_STRIDE = 32
# Pixel scale of the network's inputs after the mean is subtracted (SPEC 1, 8.1): 1.0 for VGG16;
# lite's 0.00787 (about 2 / 255, MobileNet's [-1, 1] range) is what the release's comment asks for
# (its `--scale_value` flag itself defaults to 1.0) and what its lite fixture used.
DEFAULT_INPUT_SCALE = {"osvos": 1.0, "lite": 0.00787, "deeplab": 1.0, "masktrack": 1.0}
# B, G, R values subtracted from every network input (ImageNet VGG16's, the release's `--mean_value` default).
DEFAULT_INPUT_MEAN = (104.0, 117.0, 123.0)


@dataclasses.dataclass(frozen=True)
class OSMNConfig:
    """What varies between OSMN models; the defaults are the released model.

    Attributes:
        base_model: the network the modulators adapt (the release's `--base_model`):
            `osvos` (SPEC 4, VGG16 hypercolumn FCN), `lite` (MobileNet v1, 8.1),
            `deeplab` (dilated VGG16 with ASPP, 8.2) or `masktrack` (MaskTrack's
            VGG16 with the spatial guide as a 4th input channel, 8.3).
        use_visual_modulator: scale channels with the visual modulator's output
            (the release's `--no_visual_modulator` turns it off; lite then
            modulates nothing, as the release).
        use_spatial_modulator: add the spatial modulator's per-pixel biases
            (`--no_spatial_modulator` turns it off; lite cannot be built so with
            its visual modulator on; masktrack has no spatial modulator: set to False).
        mod_early_conv: also modulate conv1_1 .. conv2_2 (`--mod_early_conv`; VGG16 base models).
        width: multiplier on every channel count (VGG16 or MobileNet, fc6/fc7, ASPP);
            1.0 is the paper's network, 0.125 or 0.25 make tests and CPU demos fast.
        dropout_rate: dropout after fc6 and fc7 of the VGG16 visual modulator and in
            the ASPP branches of deeplab and masktrack, in training.
        guide_size: side of the square visual guide; fc6's kernel is
            `guide_size / 32`. 224 is the paper's (and ImageNet VGG16's); smaller
            sizes (e.g. 64) make the visual modulator cheap for CPU training. lite
            pools MobileNet's last map globally, so its guide is at most 224.
        batch_norm_momentum, batch_norm_epsilon: the spatial modulator's BatchNorm
            (TF-slim's defaults, as in the original).
        synchronized_batch_norm: aggregate BatchNorm statistics over replicas under
            tf.distribute, so multi-replica training matches one device.
        aligned_size: `(W, H)` masktrack zero-pads its 4-channel input to (the
            release's `--aligned_size`, e.g. (865, 481) for 854 x 480 frames); the
            logits are still cropped with the unpadded offset (a quirk, SPEC 8.3).
            deeplab accepts it and, as the release, ignores it. None: no padding.
        input_scale: the pixel scale of the preprocessing (frame and visual guide,
            after the mean is subtracted); None is the base model's default,
            `DEFAULT_INPUT_SCALE` (`input_scale_of` resolves it). The graph does not
            use it: it records how the model's inputs are made.
        input_mean: the B, G, R values the preprocessing subtracts (the release's
            `--mean_value`); None is `DEFAULT_INPUT_MEAN` (`input_mean_of`). Like
            `input_scale`, a record of how the inputs are made.
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
    base_model: str = "osvos"
    aligned_size: tuple | None = None
    input_scale: float | None = None
    input_mean: tuple | None = None

    def __post_init__(self):
        if self.base_model not in BASE_MODELS:
            raise ValueError(f"OSMNConfig.base_model must be one of {BASE_MODELS}, got {self.base_model!r}")
        if not self.width > 0:
            raise ValueError(f"OSMNConfig.width must be > 0, got {self.width!r}")
        if not 0 <= self.dropout_rate < 1:
            raise ValueError(f"OSMNConfig.dropout_rate must be in [0, 1), got {self.dropout_rate!r}")
        check_guide_size(self.guide_size)
        if self.input_scale is not None and not self.input_scale > 0:
            raise ValueError(f"OSMNConfig.input_scale must be > 0 (or None), got {self.input_scale!r}")
        if self.input_mean is not None:
            object.__setattr__(self, "input_mean", check_mean(self.input_mean, "OSMNConfig.input_mean"))
        if self.aligned_size is not None:
            object.__setattr__(self, "aligned_size", _check_aligned_size(self.aligned_size, self.base_model))
        if self.base_model == "masktrack":
            # Its spatial guide is an input channel, never a modulator (the release ignores the flag).
            object.__setattr__(self, "use_spatial_modulator", False)
        if self.base_model == "lite":
            self._check_lite()

    def _check_lite(self):
        if self.mod_early_conv:
            raise ValueError("OSMNConfig: mod_early_conv is for the VGG16 base models; lite modulates Conv2d_3, 5, 11 "
                             "and 13 only (the release ignores --mod_early_conv there)")
        if self.guide_size > GUIDE_SIZE:
            raise ValueError(f"OSMNConfig.guide_size for lite must be at most {GUIDE_SIZE} (its 7x7 average pool "
                             f"covers MobileNet's last map only up to there), got {self.guide_size!r}")
        if not self.use_visual_modulator:
            # The release multiplies and adds only where it has visual parameters: nothing is modulated.
            object.__setattr__(self, "use_spatial_modulator", False)
        elif not self.use_spatial_modulator:
            raise ValueError("OSMNConfig: lite with the visual modulator but no spatial modulator cannot be built: "
                             "the release fails on it (it indexes the missing spatial maps, None[0]); turn both "
                             "off, or keep the spatial modulator")

    def to_dict(self):
        return dataclasses.asdict(self)


def _check_aligned_size(aligned_size, base_model):
    if base_model not in ("masktrack", "deeplab"):
        raise ValueError(f"OSMNConfig.aligned_size is a masktrack option (deeplab ignores it, as the release); "
                         f"{base_model} has none, got {aligned_size!r}")
    try:
        width, height = (int(v) for v in aligned_size)
    except (TypeError, ValueError):
        raise ValueError(f"OSMNConfig.aligned_size must be (W, H), got {aligned_size!r}") from None
    if width < 1 or height < 1 or tuple(aligned_size) != (width, height):
        raise ValueError(f"OSMNConfig.aligned_size must be two positive integers (W, H), got {aligned_size!r}")
    return (width, height)


def check_mean(mean, name="mean"):
    """`mean` (the values subtracted from B, G, R) as three floats; ValueError naming `name` otherwise."""
    try:
        values = tuple(float(v) for v in mean)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers (B, G, R), got {mean!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must be three finite numbers (B, G, R), got {mean!r}")
    return values


def input_mean_of(config):
    """The B, G, R mean `config`'s inputs are made with: its `input_mean`, or `DEFAULT_INPUT_MEAN`."""
    return DEFAULT_INPUT_MEAN if config.input_mean is None else tuple(config.input_mean)


def input_scale_of(config):
    """The pixel scale `config`'s inputs are made with: its `input_scale`, or its base model's default."""
    return DEFAULT_INPUT_SCALE[config.base_model] if config.input_scale is None else float(config.input_scale)


def check_guide_size(guide_size, name="OSMNConfig.guide_size"):
    """`guide_size` as an int, if it is a positive multiple of 32 (VGG16's total stride)."""
    if isinstance(guide_size, bool) or int(guide_size) != guide_size or guide_size < GUIDE_STRIDE \
            or guide_size % GUIDE_STRIDE:
        raise ValueError(f"{name} must be a multiple of {GUIDE_STRIDE} of at least {GUIDE_STRIDE} "
                         f"(VGG16 pools five times), got {guide_size!r}")
    return int(guide_size)


def scaled(channels, width):
    """A channel count at `width`, at least 1."""
    return max(1, int(channels * width))


@dataclasses.dataclass(frozen=True)
class ModulatedConv:
    """One modulated convolution and where its modulation parameters lie.

    Attributes:
        name: the convolution's name, `conv<block>_<i>` (VGG16) or `Conv2d_<block>_pointwise` (lite).
        block: its VGG16 block, or lite's MobileNet block; the spatial modulator's
            map for it is `conv<block>`.
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


def modulation_layout(mod_early_conv=False, width=1.0, base_model="osvos"):
    """The modulated convolutions (`ModulatedConv`) in network order (SPEC 4.1, 4.2, 8.1).

    VGG16 base models: conv3_1 .. conv5_3, and conv1_1 .. conv2_2 with
    `mod_early_conv`. lite: the pointwise convolutions of Conv2d_3, 5, 11, 13,
    each with a spatial map of its own. The visual modulator's vector holds their
    scales one after the other in this order; the spatial modulator's map for a
    block holds that block's convolutions' biases side by side in the channel axis.
    """
    layout, scale_offset = [], 0
    if base_model == "lite":
        for block in LITE_MODULATED_BLOCKS:
            channels = scaled(MOBILENET_V1_BLOCKS[block - 1][1], width)
            layout.append(ModulatedConv(f"Conv2d_{block}_pointwise", block, channels, scale_offset, 0))
            scale_offset += channels
        return layout
    first_block = 1 if mod_early_conv else 3
    for block, num_convs, channels in VGG16_BLOCKS:
        if block < first_block:
            continue
        channels = scaled(channels, width)
        for i in range(num_convs):
            layout.append(ModulatedConv(f"conv{block}_{i + 1}", block, channels, scale_offset, i * channels))
            scale_offset += channels
    return layout


def spatial_bias_channels(mod_early_conv=False, width=1.0, base_model="osvos"):
    """`{block: channels of its spatial bias map}` for the blocks that receive spatial biases, in order.

    Empty for masktrack, which has no spatial modulator.
    """
    if base_model == "masktrack":
        return {}
    channels = {}
    for conv in modulation_layout(mod_early_conv, width, base_model):
        channels[conv.block] = conv.bias_offset + conv.channels
    return channels


def num_modulation_params(mod_early_conv=False, width=1.0, base_model="osvos"):
    """Length of the visual modulator's output: 3840 for the paper's model, 4224 with mod_early_conv, 1920 for lite."""
    return sum(conv.channels for conv in modulation_layout(mod_early_conv, width, base_model))


@dataclasses.dataclass(frozen=True)
class SpatialPooling:
    """How the spatial modulator reaches each bias map's resolution (SPEC 4.2, 8.1, 8.2).

    Attributes:
        pools: the average poolings applied one after the other, each
            `(name, size, padding)` with the stride equal to the size.
        levels: `{block: number of those poolings its map's 1x1 convolution reads after}`.
    """

    pools: tuple
    levels: dict


def spatial_pooling(base_model="osvos", mod_early_conv=False):
    """The spatial modulator's poolings for `base_model` (`SpatialPooling`)."""
    if base_model == "lite":
        # The MobileNet arg scope makes these VALID (floor), unlike the network's SAME strides.
        pools = (("pool4", 4, "valid"), ("pool8", 2, "valid"), ("pool16", 2, "valid"), ("pool32", 2, "valid"))
        return SpatialPooling(pools, {3: 1, 5: 2, 11: 3, 13: 4})
    levels = {1: 0, 2: 1, 3: 2, 4: 3, 5: 3 if base_model == "deeplab" else 4}  # deeplab's conv5 works at 1/8
    blocks = spatial_bias_channels(mod_early_conv, 1.0, base_model)
    levels = {block: levels[block] for block in blocks}
    pools = tuple((f"pool{d}", 2, "same") for d in range(1, max(levels.values()) + 1))
    return SpatialPooling(pools, levels)
