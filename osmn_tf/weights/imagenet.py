"""ImageNet initialisation of OSMN (SPEC 4.4, 8) from the files users have.

VGG16, for osvos, deeplab and masktrack: TF-slim's `vgg_16.ckpt` (what the
original release used) and Keras' `vgg16_weights_tf_dim_ordering_tf_kernels.h5`
(or its `_notop` version, which lacks fc6/fc7). Their conv1_1 .. conv5_3 go
into both the segmentation network and the visual modulator; fc6/fc7 (dense
layers in the Keras file) are reshaped into the visual modulator's 7x7 and
1x1 convolutions.

MobileNet v1, for lite: TF-slim's `mobilenet_v1_1.0_224.ckpt` and Keras'
`mobilenet_1_0_224_tf.h5` (or `_no_top`). Conv2d_0 .. Conv2d_13 with their
BatchNorms go into both MobileNets. See weights/README.md for where to get the files.
"""
import os

import numpy as np
import tensorflow as tf

from osmn_tf.config import GUIDE_SIZE, MOBILENET_V1_BLOCKS, VGG16_BLOCKS
from osmn_tf.utils.errors import CheckpointError

_BATCH_NORM = ("gamma", "beta", "moving_mean", "moving_variance")


def _conv_names():
    return [(b, f"conv{b}_{i}") for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1)]


def _mobilenet_convs():
    """Our MobileNet convolutions with TF-slim's names, and Keras' name of each."""
    names = {"Conv2d_0": "conv1"}
    for i in range(1, len(MOBILENET_V1_BLOCKS) + 1):
        names[f"Conv2d_{i}_depthwise"] = f"conv_dw_{i}"
        names[f"Conv2d_{i}_pointwise"] = f"conv_pw_{i}"
    return names


def _slim_reader(path):
    path = os.fspath(path)
    if not os.path.exists(path + ".index") and not os.path.exists(path):
        raise CheckpointError(f"{path}: does not exist")
    try:
        return tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read as a TF checkpoint: {e}") from e


def _h5_groups(path):
    """An open HDF5 file's layer groups (`model_weights` or the root), and the file to close."""
    import h5py  # a Keras dependency; only these readers need it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read as HDF5: {e}") from e
    return f, (f["model_weights"] if "model_weights" in f else f)


def _h5_weights(group):
    """A Keras layer group's weights, `{short name: array}` (`kernel`, `gamma`, ...), in `weight_names` order."""
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
    return {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n]) for n in names}


def read_vgg16_slim(path):
    """Reads TF-slim's `vgg_16.ckpt` as {layer: (kernel, bias)} with layers conv1_1 .. conv5_3, fc6, fc7."""
    reader = _slim_reader(path)
    available = reader.get_variable_to_shape_map()
    scopes = {name: f"vgg_16/conv{b}/{name}" for b, name in _conv_names()}
    scopes.update(fc6="vgg_16/fc6", fc7="vgg_16/fc7")
    layers = {}
    for layer, scope in scopes.items():
        kernel, bias = f"{scope}/weights", f"{scope}/biases"
        if kernel not in available or bias not in available:
            raise CheckpointError(f"{path}: not TF-slim's VGG16: it has no variable {kernel} or {bias}")
        layers[layer] = (reader.get_tensor(kernel), reader.get_tensor(bias))
    return layers


def read_vgg16_keras_h5(path):
    """Reads Keras' VGG16 `.h5` as {layer: (kernel, bias)}; fc6/fc7 come from fc1/fc2 when present.

    Works with the files Keras downloads (`vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5`),
    whose layer groups list their weights, kernel first, in a `weight_names` attribute.
    """
    f, root = _h5_groups(path)
    with f:
        def read(group_name):
            weights = list(_h5_weights(root[group_name]).values())
            if len(weights) != 2:
                raise CheckpointError(f"{path}: layer {group_name} has {len(weights)} weights, expected a kernel "
                                      f"and a bias")
            return weights[0], weights[1]

        layers = {}
        for b, name in _conv_names():
            group_name = f"block{b}_conv{name[-1]}"
            if group_name not in root:
                raise CheckpointError(f"{path}: not Keras' VGG16 weights: it has no layer {group_name}")
            layers[name] = read(group_name)
        if "fc1" in root and "fc2" in root:
            # Keras flattens pool5 in (height, width, channel) order, so the dense
            # kernel reshapes directly into the 7x7 convolution.
            fc1, fc1_bias = read("fc1")
            fc2, fc2_bias = read("fc2")
            layers["fc6"] = (fc1.reshape(7, 7, -1, fc1.shape[-1]), fc1_bias)
            layers["fc7"] = (fc2.reshape(1, 1, *fc2.shape), fc2_bias)
        return layers


def read_vgg16(path):
    """Reads ImageNet VGG16 weights from a `.h5` file or a TF-slim checkpoint."""
    path = os.fspath(path)
    return read_vgg16_keras_h5(path) if path.endswith((".h5", ".hdf5")) else read_vgg16_slim(path)


def read_mobilenet_v1_slim(path):
    """Reads TF-slim's `mobilenet_v1_1.0_224.ckpt` as `{layer: {kernel, gamma, beta, moving_mean, moving_variance}}`.

    Layers `Conv2d_0`, `Conv2d_i_depthwise`, `Conv2d_i_pointwise` (i = 1 .. 13),
    the variables `MobilenetV1/<layer>/weights` (`depthwise_weights`) and
    `MobilenetV1/<layer>/BatchNorm/*`.
    """
    reader = _slim_reader(path)
    available = reader.get_variable_to_shape_map()
    layers = {}
    for layer in _mobilenet_convs():
        scope = f"MobilenetV1/{layer}"
        names = {"kernel": f"{scope}/{'depthwise_weights' if 'depthwise' in layer else 'weights'}"}
        names.update({attr: f"{scope}/BatchNorm/{attr}" for attr in _BATCH_NORM})
        missing = [n for n in names.values() if n not in available]
        if missing:
            raise CheckpointError(f"{path}: not TF-slim's MobileNet v1: it has no variable {missing[0]}")
        layers[layer] = {key: reader.get_tensor(name) for key, name in names.items()}
    return layers


def read_mobilenet_v1_keras_h5(path):
    """Reads Keras' MobileNet `.h5` (`mobilenet_1_0_224_tf[_no_top].h5`) as `read_mobilenet_v1_slim` does.

    Keras names the layers `conv1`, `conv_dw_i`, `conv_pw_i` and their
    BatchNorms `<layer>_bn`; its depthwise kernels are `[3, 3, C, 1]` as TF-slim's.
    """
    f, root = _h5_groups(path)
    with f:
        layers = {}
        for layer, keras_name in _mobilenet_convs().items():
            if keras_name not in root or f"{keras_name}_bn" not in root:
                raise CheckpointError(f"{path}: not Keras' MobileNet weights: it has no layer {keras_name} "
                                      f"or {keras_name}_bn")
            conv, bn = _h5_weights(root[keras_name]), _h5_weights(root[f"{keras_name}_bn"])
            kernel = conv.get("depthwise_kernel", conv.get("kernel"))
            if kernel is None or any(attr not in bn for attr in _BATCH_NORM):
                raise CheckpointError(f"{path}: layer {keras_name} has weights {sorted(conv)} and {keras_name}_bn "
                                      f"{sorted(bn)}: expected a kernel and BatchNorm's {list(_BATCH_NORM)}")
            layers[layer] = {"kernel": kernel, **{attr: bn[attr] for attr in _BATCH_NORM}}
        return layers


def read_mobilenet_v1(path):
    """Reads ImageNet MobileNet v1 weights from a `.h5` file or a TF-slim checkpoint."""
    path = os.fspath(path)
    return read_mobilenet_v1_keras_h5(path) if path.endswith((".h5", ".hdf5")) else read_mobilenet_v1_slim(path)


def _assign_checked(assignments, what, hint=""):
    """Assigns `(network, variable, value)` triples after checking every shape; raises naming each mismatch."""
    problems = [f"{network.name}/{variable.path}: the model expects {list(variable.shape)}, {what} has "
                f"{list(value.shape)}" for network, variable, value in assignments
                if tuple(variable.shape) != value.shape]
    if problems:
        raise CheckpointError(f"{what} does not fit the model:\n  " + "\n  ".join(problems) + hint)
    for _, variable, value in assignments:
        variable.assign(value.astype(variable.dtype))


PARTS = ("segmentation_network", "visual_modulator")
"""The sub-models ImageNet weights go into (the release loaded each from its own file when asked)."""


def _check_parts(parts):
    parts = tuple(parts)
    if not parts or any(part not in PARTS for part in parts):
        raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {parts!r}")
    return parts


def load_imagenet_vgg16(model, path, masktrack_first_conv="release", parts=PARTS):
    """Initialises `model`'s VGG16 layers from ImageNet weights (SPEC 4.4).

    conv1_1 .. conv5_3 of the segmentation network and of the visual
    modulator, and the visual modulator's fc6/fc7, are set; everything else
    keeps its initialiser. All shapes are checked before anything is assigned.

    masktrack's conv1_1 takes 4 channels (mask, B, G, R), VGG16's 3. With
    `masktrack_first_conv="release"` its kernel keeps its initialiser and
    only its bias is ImageNet's, as the release's loader (which assigns only
    variables of equal shapes) leaves it; `"imagenet"` also copies VGG16's
    kernel into the B, G, R slots (the mask channel keeps its initialiser).

    `parts`: only these sub-models (`PARTS`) are set, e.g.
    `("visual_modulator",)`, as the release's `--vis_mod_model_path` and
    `--seg_model_path` load one file each.

    Returns:
        the list of `sub_model/layer` names that were set.
    Raises:
        CheckpointError: the file is missing, not VGG16, or its shapes do not fit
            the model (e.g. `width` != 1), naming the layer and both shapes; or
            fc6/fc7 are needed but absent (a `_notop` file with a visual modulator).
    """
    if masktrack_first_conv not in ("release", "imagenet"):
        raise ValueError(f"masktrack_first_conv must be 'release' or 'imagenet', got {masktrack_first_conv!r}")
    if model.config.base_model == "lite":
        raise CheckpointError(f"{path}: VGG16 weights do not fit base_model lite (MobileNet v1): use "
                              "mobilenet_v1_1.0_224.ckpt or mobilenet_1_0_224_tf.h5")
    parts = _check_parts(parts)
    layers = read_vgg16(path)
    targets = [(model.segmentation_network, name) for _, name in _conv_names()] \
        if "segmentation_network" in parts else []
    if model.visual_modulator is not None and "visual_modulator" in parts:
        if "fc6" not in layers:
            raise CheckpointError(
                f"{path}: has no fc1/fc2 (a _notop file?), which the visual modulator's fc6/fc7 need; "
                "use vgg16_weights_tf_dim_ordering_tf_kernels.h5"
            )
        targets += [(model.visual_modulator, name) for _, name in _conv_names()]
        targets += [(model.visual_modulator, "fc6"), (model.visual_modulator, "fc7")]
    assignments = []
    for network, name in targets:
        layer = network.get_layer(name)
        kernel, bias = layers[name]
        if network is model.segmentation_network and name == "conv1_1" and model.config.base_model == "masktrack":
            if masktrack_first_conv == "imagenet" and layer.kernel.shape[2] == 4:
                kernel = np.concatenate([np.asarray(layer.kernel)[:, :, :1], kernel], axis=2)
                assignments.append((network, layer.kernel, kernel))
            assignments.append((network, layer.bias, bias))
            continue
        assignments += [(network, layer.kernel, kernel), (network, layer.bias, bias)]
    hint = ""
    if model.visual_modulator is not None and "visual_modulator" in parts and model.config.guide_size != GUIDE_SIZE:
        hint = f"\n(ImageNet's fc6 is 7x7 on 224x224 inputs; this model's guide_size is {model.config.guide_size})"
    _assign_checked(assignments, f"ImageNet VGG16 weights ({path})", hint)
    return [f"{network.name}/{name}" for network, name in targets]


def load_imagenet_mobilenet_v1(model, path, parts=PARTS):
    """Initialises a lite model's two MobileNets (Conv2d_0 .. Conv2d_13 and their BatchNorms) from ImageNet.

    The visual modulator's Logits convolution and heads, the spatial
    modulator and the segmentation head keep their initialisers (ImageNet's
    classifier has 1001 classes, not 2048 features). All shapes are checked
    before anything is assigned. `parts`: as `load_imagenet_vgg16`'s.

    Returns:
        the list of `sub_model/layer` names that were set.
    """
    if model.config.base_model != "lite":
        raise CheckpointError(f"{path}: MobileNet v1 weights fit base_model lite only; this model is "
                              f"{model.config.base_model} (use VGG16's)")
    if model.batch_norm_folded:
        raise ValueError("load ImageNet weights before folding BatchNorm (fold_batch_norm)")
    parts = _check_parts(parts)
    layers = read_mobilenet_v1(path)
    networks = [getattr(model, part) for part in parts if getattr(model, part) is not None]
    assignments, names = [], []
    for network in networks:
        for layer_name, values in layers.items():
            conv, bn = network.get_layer(layer_name), network.get_layer(f"{layer_name}_bn")
            assignments.append((network, conv.kernel, values["kernel"]))
            assignments += [(network, getattr(bn, attr), values[attr]) for attr in _BATCH_NORM]
            names.append(f"{network.name}/{layer_name}")
    _assign_checked(assignments, f"ImageNet MobileNet v1 weights ({path})")
    return names


def load_imagenet(model, path, parts=PARTS):
    """ImageNet initialisation for `model`'s base model: MobileNet v1 for lite, VGG16 for the others.

    `parts`: only these sub-models (`PARTS`).
    """
    if model.config.base_model == "lite":
        return load_imagenet_mobilenet_v1(model, path, parts=parts)
    return load_imagenet_vgg16(model, path, parts=parts)
