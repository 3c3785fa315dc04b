"""Loading the original release's TF1 checkpoints (SPEC 4.5) and `.keras` files."""
import os
import re
import zipfile
import zlib

import keras
import numpy as np
import tensorflow as tf

from osmn_tf.config import (MOBILENET_V1_BLOCKS, MOBILENET_V1_FIRST_CHANNELS, VGG16_BLOCKS, OSMNConfig,
                            num_modulation_params, scaled)
from osmn_tf.models.osmn import OSMN, build_osmn
from osmn_tf.utils.errors import CheckpointError

# What a training checkpoint holds besides the model: never loaded. The `-up` kernels are
# the fixed bilinear up-sampling (osvos' `score-multiK-up`, deeplab's and masktrack's
# `score-up`), which the original overwrote too.
_SKIPPED = re.compile(r"(^global_step$|^beta[12]_power(_\d+)?$|/Adam(_\d+)?$|-up/weights$)")
_BATCH_NORM = ("beta", "gamma", "moving_mean", "moving_variance")


def tf1_scope(network, layer_name):
    """The original's variable scope of layer `layer_name` of OSMN's `network` (SPEC 4.5, 8).

    Layers carry the original's names, so this is a prefix, with three
    exceptions: VGG16's `conv3_1` lives in `conv3/conv3_1`, a BatchNorm
    `<conv>_bn` in `<conv>/BatchNorm`, and lite's visual modulator heads
    (`Conv2d_out_k`), its Logits convolution and its segmentation head
    (`conv3_16` .. `conv13_16`, `score`) lie outside their network's scope.
    """
    name = layer_name[: -len("_bn")] if layer_name.endswith("_bn") else layer_name
    vgg = re.fullmatch(r"conv(\d)_\d", name)
    if vgg:
        name = f"conv{vgg[1]}/{name}"
    if network == "visual_modulator":
        if name.startswith("Conv2d_out_"):
            return f"osmn/{name}"
        return f"osmn/modulator/Logits/{name}" if name == "Conv2d_1c_1x1" else f"osmn/modulator/{name}"
    if network == "spatial_modulator":
        return f"osmn/modulator_sp/{name}"
    return f"osmn/{name}" if re.fullmatch(r"conv\d+_16|score", name) else f"osmn/seg/{name}"


def _layer_variables(layer, scope):
    if isinstance(layer, keras.layers.BatchNormalization):
        return {f"{scope}/BatchNorm/{attr}": getattr(layer, attr) for attr in _BATCH_NORM}
    kernel = "depthwise_weights" if isinstance(layer, keras.layers.DepthwiseConv2D) else "weights"
    variables = {f"{scope}/{kernel}": layer.kernel}
    if getattr(layer, "bias", None) is not None:
        variables[f"{scope}/biases"] = layer.bias
    return variables


def tf1_variable_map(model):
    """Maps every variable name of the original inference graph to this model's variable.

    The names are those of `tf1_variables.json` (SPEC 4.5, 8.4); which of them
    exist depends on the model's base model and variant. Every weight of the
    model is in the map.
    """
    if not isinstance(model, OSMN):
        raise TypeError(f"expected an osmn_tf.OSMN model, got {type(model).__name__}")
    if model.batch_norm_folded:
        raise ValueError("the model's BatchNorms are folded (fold_batch_norm): map the model before folding")
    variables = {}
    for network in ("visual_modulator", "spatial_modulator", "segmentation_network"):
        if getattr(model, network) is None:
            continue
        for layer in getattr(model, network).layers:
            if layer.weights:
                variables.update(_layer_variables(layer, tf1_scope(network, layer.name)))
    return variables


def unused_tf1_variables(config):
    """A pattern of variables the release creates for `config` but never uses (None: all are used).

    lite without its visual modulator still builds the spatial modulator,
    whose maps it never adds (SPEC 8.1).
    """
    if config.base_model == "lite" and not config.use_visual_modulator:
        return re.compile(r"^osmn/modulator_sp/")
    return None


def _reader(prefix):
    prefix = os.fspath(prefix)
    if not os.path.exists(prefix + ".index"):
        hint = ""
        if prefix.endswith(".index") or re.search(r"\.data-\d+-of-\d+$", prefix):
            hint = " (give the prefix, without .index or .data-*)"
        raise CheckpointError(f"{prefix}: not a TF1 checkpoint prefix, {prefix}.index does not exist{hint}")
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"{prefix}: cannot read the checkpoint: {_first_line(e)}") from e


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_tensors(reader, prefix, names):
    """`{name: value}` read from a checkpoint; a damaged one raises `CheckpointError` naming it."""
    values = {}
    for name in names:
        try:
            values[name] = reader.get_tensor(name)
        except Exception as e:  # TF raises IndexError, OpError, ... for truncated or corrupt data files
            raise CheckpointError(
                f"{prefix}: damaged checkpoint: cannot read {name} ({type(e).__name__}: {_first_line(e)}); "
                f"is {prefix}.data-* complete?") from e
    return values


def _base_model(prefix, shapes):
    """The base model of a checkpoint, from a variable only it has."""
    if "osmn/seg/Conv2d_0/weights" in shapes:
        return "lite"
    if "osmn/seg/fc8_voc12_1/weights" in shapes:
        return "deeplab"
    if "osmn/seg/fc8_1/weights" in shapes:
        return "masktrack"
    if "osmn/seg/conv1/conv1_1/weights" in shapes:
        return "osvos"
    raise CheckpointError(f"{prefix}: not an OSMN checkpoint: it has no variable osmn/seg/conv1/conv1_1/weights "
                          f"(nor lite's osmn/seg/Conv2d_0/weights)")


def _segmentation_convs(base_model):
    """(first convolution, its input channels, what they are), `{convolution: output channels at width 1}`."""
    if base_model == "lite":
        convs = {"osmn/seg/Conv2d_0/weights": MOBILENET_V1_FIRST_CHANNELS}
        convs.update({f"osmn/seg/Conv2d_{i}_pointwise/weights": channels
                      for i, (_, channels) in enumerate(MOBILENET_V1_BLOCKS, 1)})
        return ("osmn/seg/Conv2d_0/weights", 3, "a BGR frame"), convs
    convs = {f"osmn/seg/conv{block}/conv{block}_{i}/weights": channels
             for block, num_convs, channels in VGG16_BLOCKS for i in range(1, num_convs + 1)}
    if base_model == "masktrack":
        return ("osmn/seg/conv1/conv1_1/weights", 4, "the spatial guide and a BGR frame"), convs
    return ("osmn/seg/conv1/conv1_1/weights", 3, "a BGR frame"), convs


def _detect_width(prefix, shapes, base_model="osvos"):
    """The width of the segmentation network, from the convolutions most of which agree on it.

    One convolution of the wrong size (a damaged or edited checkpoint) is
    named, rather than mis-detecting the width and listing every layer.
    """
    (first_name, in_channels, what), convs = _segmentation_convs(base_model)
    first = shapes[first_name]
    if len(first) != 4 or first[2] != in_channels:
        raise CheckpointError(
            f"{prefix}: {first_name} has shape {list(first)}, but the first convolution "
            f"takes the {in_channels} channels of {what} ([3, 3, {in_channels}, C])")
    present = {name: shapes[name] for name in convs if name in shapes and len(shapes[name]) == 4}
    candidates = sorted({shape[-1] / convs[name] for name, shape in present.items()})
    fits = {w: [n for n, shape in present.items() if shape[-1] == scaled(convs[n], w)] for w in candidates}
    width = max(candidates, key=lambda w: (len(fits[w]), w == first[-1] / convs[first_name]))
    wrong = sorted(set(present) - set(fits[width]))
    if wrong and len(fits[width]) > len(present) // 2:
        details = ", ".join(f"{n} has {present[n][-1]} output channels (width {width:g} needs "
                            f"{scaled(convs[n], width)})" for n in wrong)
        raise CheckpointError(f"{prefix}: the other convolutions are of width {width:g}, but {details}")
    return width


def config_from_tf1_checkpoint(prefix):
    """Detects the base model, variant and width of an original OSMN checkpoint from its variable names."""
    shapes = _reader(prefix).get_variable_to_shape_map()
    base_model = _base_model(prefix, shapes)
    width = _detect_width(prefix, shapes, base_model)
    use_visual = any(n.startswith("osmn/modulator/") for n in shapes)
    use_spatial = any(n.startswith("osmn/modulator_sp/") for n in shapes)
    if base_model == "lite":
        mod_early_conv = False
    elif use_spatial:
        mod_early_conv = "osmn/modulator_sp/conv1/weights" in shapes
    else:
        fc8 = shapes.get("osmn/modulator/fc8/biases", [0])
        mod_early_conv = fc8[-1] == num_modulation_params(True, width)
    return OSMNConfig(
        base_model=base_model,
        use_visual_modulator=use_visual,
        use_spatial_modulator=use_spatial,
        mod_early_conv=mod_early_conv,
        width=width,
    )


def load_tf1_checkpoint(model, prefix):
    """Loads an original OSMN checkpoint (the prefix a TF1 Saver wrote) into `model`.

    Skips what training checkpoints also hold (`global_step`, Adam slots, beta
    powers) and the fixed up-sampling kernels. Every variable is checked
    before any is assigned: a missing variable, a shape mismatch or a
    variable the model has no place for raises `CheckpointError` listing each
    problem, and the model is left untouched. A damaged checkpoint (a data
    file cut short) raises `CheckpointError` naming the prefix and the first
    variable that does not read.

    Returns:
        the sorted list of checkpoint variable names that were loaded.
    """
    reader = _reader(prefix)
    shapes = reader.get_variable_to_shape_map()
    expected = tf1_variable_map(model)
    problems = []
    for name, variable in sorted(expected.items()):
        if name not in shapes:
            problems.append(f"missing variable {name} (expected shape {list(variable.shape)})")
        elif list(shapes[name]) != list(variable.shape):
            problems.append(
                f"shape mismatch for {name}: the model expects {list(variable.shape)}, "
                f"the checkpoint has {list(shapes[name])}"
            )
    unused = unused_tf1_variables(model.config)
    unexpected = sorted(n for n in shapes if n not in expected and not _SKIPPED.search(n)
                        and not (unused and unused.search(n)))
    problems.extend(f"unexpected variable {n} {list(shapes[n])}: the model has no place for it" for n in unexpected)
    if problems:
        try:
            found = f"; the checkpoint looks like {config_from_tf1_checkpoint(prefix)}"
        except CheckpointError:
            found = ""
        raise CheckpointError(
            f"{prefix} does not fit the model ({model.config}){found}:\n  " + "\n  ".join(problems)
        )
    values = read_tensors(reader, prefix, sorted(expected))
    for name, variable in expected.items():
        variable.assign(np.asarray(values[name], dtype=variable.dtype))
    return sorted(expected)


def build_osmn_from_tf1_checkpoint(prefix):
    """Builds the model an original OSMN checkpoint describes and loads it."""
    model = build_osmn(config_from_tf1_checkpoint(prefix))
    load_tf1_checkpoint(model, prefix)
    return model


def load_model(path):
    """Loads OSMN weights from a `.keras` file or a TF1 checkpoint prefix (converted on the fly)."""
    path = os.fspath(path)
    if path.endswith(".keras"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such .keras file")
        # Keras says "File not found" for a file cut short (its zip directory is at the end).
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: damaged: not a complete .keras archive (a .keras file is a zip archive: "
                                  f"this one is cut short or is not one); save or convert it again")
        try:
            model = keras.models.load_model(path)
        except (zipfile.BadZipFile, zlib.error) as e:  # a member whose data does not check
            raise CheckpointError(f"{path}: damaged: {_first_line(e)}; save or convert it again") from e
        except Exception as e:  # Keras raises many kinds for a damaged or foreign file.
            raise CheckpointError(f"{path}: cannot load as a Keras model: {_first_line(e)}") from e
        if not isinstance(model, OSMN):
            raise CheckpointError(f"{path}: holds a {type(model).__name__}, not an osmn_tf.OSMN model")
        return model
    if os.path.exists(path + ".index"):
        return build_osmn_from_tf1_checkpoint(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: does not exist (neither a .keras file nor a TF1 checkpoint prefix)")
    raise CheckpointError(
        f"{path}: not OSMN weights: expected a .keras file or a TF1 checkpoint prefix (with {path}.index beside it)"
    )


def is_imagenet_vgg16_file(path):
    """Whether `path` names ImageNet VGG16 weights: a Keras `.h5` file, or TF-slim's `vgg_16.ckpt` by its name."""
    text = os.fspath(path)
    return text.endswith(".h5") or os.path.basename(text).startswith("vgg_16")


def is_imagenet_file(path):
    """Whether `path` names ImageNet weights: VGG16's (`is_imagenet_vgg16_file`) or TF-slim's `mobilenet_v1*`."""
    return is_imagenet_vgg16_file(path) or os.path.basename(os.fspath(path)).startswith("mobilenet_v1")


def load_weights(model, path):
    """Loads `path` into `model`: ImageNet weights (`.ckpt`/`.h5`), a TF1 OSMN prefix or a `.keras` OSMN.

    ImageNet weights are VGG16's, or MobileNet v1's for `base_model="lite"`
    (`osmn_tf.weights.imagenet.load_imagenet`). A `.keras` file must hold the same
    base model and variant at the same width.
    """
    text = os.fspath(path)
    if is_imagenet_file(text):
        from osmn_tf.weights.imagenet import load_imagenet

        load_imagenet(model, text)
    elif text.endswith(".keras"):
        source = load_model(text)
        theirs, ours = source.config.to_dict(), model.config.to_dict()
        mismatched = {k: (theirs[k], ours[k]) for k in ("base_model", "width", "use_visual_modulator",
                                                         "use_spatial_modulator", "mod_early_conv", "aligned_size")
                      if theirs[k] != ours[k]}
        if mismatched:
            raise ValueError(f"{text}: its model differs from the one to train in "
                             + ", ".join(f"{k} ({a!r} in the file, {b!r} asked)" for k, (a, b) in mismatched.items()))
        model.set_weights(source.get_weights())
    else:
        load_tf1_checkpoint(model, text)


def saved_config(path):
    """The `OSMNConfig` of the OSMN weights at `path` (a `.keras` file or a TF1 OSMN prefix), without building it.

    A `.keras` file's `config.json` is read from the archive; a TF1
    checkpoint's variable names are read (`config_from_tf1_checkpoint`).
    Returns None for anything else (ImageNet weights). Raises `CheckpointError`
    for a `.keras` file that does not hold an OSMN model.
    """
    import json

    text = os.fspath(path)
    if text.endswith(".keras") and zipfile.is_zipfile(text):
        try:
            with zipfile.ZipFile(text) as archive:
                saved = json.loads(archive.read("config.json"))
        except (KeyError, ValueError, zipfile.BadZipFile, zlib.error) as e:
            raise CheckpointError(f"{text}: damaged: cannot read its config.json ({_first_line(e)})") from e
        fields = saved.get("config", {}) if saved.get("class_name") == "OSMN" else None
        if fields is None:
            raise CheckpointError(f"{text}: holds a {saved.get('class_name')}, not an osmn_tf.OSMN model")
        known = {f: fields[f] for f in OSMNConfig.__dataclass_fields__ if f in fields}
        if isinstance(known.get("aligned_size"), list):
            known["aligned_size"] = tuple(known["aligned_size"])
        return OSMNConfig(**known)
    if not is_imagenet_file(text) and os.path.exists(text + ".index"):
        return config_from_tf1_checkpoint(text)
    return None


# The variants of `tf1_variables.json`: the release's flags they stand for.
VARIANTS = {
    "full": {},
    "no_spatial": {"use_spatial_modulator": False},
    "no_visual": {"use_visual_modulator": False},
    "mod_early_conv": {"mod_early_conv": True},
    "lite": {"base_model": "lite"},
    "deeplab": {"base_model": "deeplab"},
    "masktrack": {"base_model": "masktrack"},
}


def variant_config(variant, width=1.0):
    """The `OSMNConfig` of one of the original's variants (the names of `tf1_variables.json`)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return OSMNConfig(width=width, **VARIANTS[variant])


def variant_name(config):
    """The variant name of a config, or a description for combinations the release never shipped."""
    for name in VARIANTS:
        if variant_config(name, config.width) == OSMNConfig(
            base_model=config.base_model,
            use_visual_modulator=config.use_visual_modulator,
            use_spatial_modulator=config.use_spatial_modulator,
            mod_early_conv=config.mod_early_conv,
            width=config.width,
        ):
            return name
    return "custom"
