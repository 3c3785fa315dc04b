"""Arguments shared by the tools, so that a flag has one name and its value one meaning in every tool.

Types (`size`, `learning_rate`, `positive_int`, ...) check a value; `add_*`
functions add a group of flags under the one name every tool uses.
"""
import argparse
import math
import os
import sys

from osmn_tf.utils.quiet import quiet_tensorflow  # noqa: F401 (every tool's main calls it)

# osmn_tf.utils.precision's names, here so that `--help` imports no Keras.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
AUTO = "auto"
# osmn_tf.config.BASE_MODELS, for the same reason (a test checks they agree).
BASE_MODELS = ("osvos", "lite", "deeplab", "masktrack")


def size(text, minimum=1):
    """argparse type: `WxH`, or one number for a square, -> `(W, H)`."""
    from osmn_tf.data.frames import parse_size  # imported on use: `--help` stays fast

    try:
        width, height = parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if width < minimum or height < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return width, height


def size_at_least(minimum):
    """argparse type: a `size` of at least `minimum` x `minimum`."""
    def parse(text):
        return size(text, minimum)

    parse.__name__ = "size"  # argparse names the type in its messages
    return parse


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def finite(text):
    """argparse type: a finite number."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
    return value


def _positive_finite(text, what):
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{what} must be a positive finite number, got {text}")
    return value


def pixel_scale(text):
    """argparse type: the factor pixels are multiplied by after the mean (the release's --scale_value)."""
    return _positive_finite(text, "a pixel scale")


def learning_rate(text):
    """argparse type: a positive, finite learning rate."""
    return _positive_finite(text, "a learning rate")


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def width(text):
    """argparse type: a model width, the VGG16 channel multiplier (1.0 = the paper's)."""
    return _positive_finite(text, "a model width")


def refuse_negative_learning_rates(parser, argv, options):
    """Reports `--lr -1e-3` as a bad learning rate: argparse would take `-1e-3` for an option."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    for index, token in enumerate(argv):
        if token not in options:
            continue
        for value in argv[index + 1:]:
            try:
                float(value)
            except ValueError:
                break
            if value.startswith("-"):
                parser.error(f"argument {token}: a learning rate must be a positive finite number, got {value}")


def add_weights(parser, required=True):
    """`--weights`: a model file to read, a `.keras` file or a TF1 checkpoint prefix of the original release."""
    parser.add_argument("--weights", required=required, metavar="W",
                        help=".keras model or TF1 checkpoint prefix of the original release")


def add_output(parser, help, required=True):
    """`--output`: where a tool writes (what it is, a folder or a file, is in `help`)."""
    parser.add_argument("--output", required=required, help=help)


def add_davis(parser, split="val", required=False, title=None):
    """`--davis-root`, `--year`, `--split`: a DAVIS split (in a group titled `title` when given)."""
    group = parser.add_argument_group(title) if title else parser
    group.add_argument("--davis-root", required=required,
                       help="DAVIS folder with JPEGImages/, Annotations/, ImageSets/")
    group.add_argument("--year", type=int, choices=[2016, 2017], default=2017,
                       help="ImageSets/<year>/ (default 2017)")
    group.add_argument("--split", default=split, help=f"ImageSets/<year>/<split>.txt (default {split})")
    return group


def add_variant(parser):
    """`--no-visual-modulator`, `--no-spatial-modulator`: the paper's ablations."""
    parser.add_argument("--no-visual-modulator", action="store_true", help="build the model without a visual modulator")
    parser.add_argument("--no-spatial-modulator", action="store_true",
                        help="build the model without a spatial modulator")


def add_base_model(parser, builds=True, help=None):
    """`--base-model`: the release's `--base_model` (osvos, lite, deeplab, masktrack).

    `builds`: the tool builds a model of it (train, benchmark); otherwise the
    base model comes from the weights and the flag only checks them (`check_base_model`).
    """
    default_help = ("network the modulators adapt: osvos (VGG16, the paper's), lite (MobileNet v1), deeplab, "
                    "masktrack" if builds else
                    "refuse weights of another base model (osvos, lite, deeplab, masktrack); the base model "
                    "always comes from the weights")
    parser.add_argument("--base-model", choices=BASE_MODELS, help=help or default_help)


def check_base_model(base_model, config, weights, flag="--weights"):
    """Raises ValueError (one line naming `--base-model` and `flag`) when `base_model` contradicts the weights.

    `config`: the `OSMNConfig` of the weights (None: not OSMN weights, nothing to check).
    """
    if base_model is None or config is None or config.base_model == base_model:
        return
    raise ValueError(f"--base-model {base_model} contradicts {flag} {weights}, which holds a "
                     f"{config.base_model} model: leave --base-model out or give {base_model} weights")


def variant_fields(args):
    """The `OSMNConfig` fields that `add_variant`'s flags set."""
    fields = {}
    if args.no_visual_modulator:
        fields["use_visual_modulator"] = False
    if args.no_spatial_modulator:
        fields["use_spatial_modulator"] = False
    return fields


def add_precision(parser, default="float32", help="compute precision (mixed: float32 weights, 16-bit compute; "
                                                  "for GPUs)", allow_auto=False):
    """`--precision` (with `auto` if `allow_auto`) and `--xla`."""
    parser.add_argument("--precision", default=default, choices=PRECISIONS + ((AUTO,) if allow_auto else ()),
                        help=help)
    parser.add_argument("--xla", action="store_true", default=None if default is None else False,
                        help="compile with XLA")


def check_inputs(*inputs):
    """Refuses missing inputs before any work: each of `inputs` is `(option, path or None, "file" or "folder")`.

    Raises FileNotFoundError naming the option and the path.
    """
    for option, path, kind in inputs:
        exists = os.path.isfile if kind == "file" else os.path.isdir
        if path and not exists(path):
            raise FileNotFoundError(f"{option}: no such {kind}: {path}")


def check_weights(path):
    """Refuses a `--weights` that is neither a file nor a TF1 checkpoint prefix (FileNotFoundError)."""
    if not (os.path.isfile(path) or os.path.exists(f"{path}.index")):
        raise FileNotFoundError(f"--weights: no such .keras file or TF1 checkpoint prefix: {path}")


def add_verbose(parser):
    """`--verbose`: show TensorFlow's log; without it the tool calls `quiet_tensorflow` (in `main`)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's log (its start-up lines, warnings); hidden by default")
