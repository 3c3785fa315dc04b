"""ImageNet VGG16 initialisation of OSMN (SPEC 4.4) from the files users have.

Two sources are read: TF-slim's `vgg_16.ckpt` (what the original release
used) and Keras' `vgg16_weights_tf_dim_ordering_tf_kernels.h5` (or its
`_notop` version, which lacks fc6/fc7). Their conv1_1 .. conv5_3 go into both
the segmentation network and the visual modulator; fc6/fc7 (dense layers in
the Keras file) are reshaped into the visual modulator's 7x7 and 1x1
convolutions. See weights/README.md for where to get the files.
"""
import os

import numpy as np
import tensorflow as tf

from osmn_tf.checkpoints import CheckpointError
from osmn_tf.config import GUIDE_SIZE, VGG16_BLOCKS


def _conv_names():
    return [(b, f"conv{b}_{i}") for b, n, _ in VGG16_BLOCKS for i in range(1, n + 1)]


def read_vgg16_slim(path):
    """Reads TF-slim's `vgg_16.ckpt` as {layer: (kernel, bias)} with layers conv1_1 .. conv5_3, fc6, fc7."""
    path = os.fspath(path)
    if not os.path.exists(path + ".index") and not os.path.exists(path):
        raise CheckpointError(f"{path}: does not exist")
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot read as a TF checkpoint: {e}") from e
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
    import h5py  # a Keras dependency; only this reader needs it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read as HDF5: {e}") from e
    with f:
        root = f["model_weights"] if "model_weights" in f else f

        def read(group_name):
            group = root[group_name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs.get("weight_names", [])]
            if len(names) != 2:
                raise CheckpointError(f"{path}: layer {group_name} has weights {names}, expected a kernel and a bias")
            return np.asarray(group[names[0]]), np.asarray(group[names[1]])

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


def load_imagenet_vgg16(model, path):
    """Initialises `model`'s VGG16 layers from ImageNet weights (SPEC 4.4).

    conv1_1 .. conv5_3 of the segmentation network and of the visual
    modulator, and the visual modulator's fc6/fc7, are set; everything else
    keeps its initialiser. All shapes are checked before anything is assigned.

    Returns:
        the list of `sub_model/layer` names that were set.
    Raises:
        CheckpointError: the file is missing, not VGG16, or its shapes do not fit
            the model (e.g. `width` != 1), naming the layer and both shapes; or
            fc6/fc7 are needed but absent (a `_notop` file with a visual modulator).
    """
    layers = read_vgg16(path)
    targets = [(model.segmentation_network, name) for _, name in _conv_names()]
    if model.visual_modulator is not None:
        if "fc6" not in layers:
            raise CheckpointError(
                f"{path}: has no fc1/fc2 (a _notop file?), which the visual modulator's fc6/fc7 need; "
                "use vgg16_weights_tf_dim_ordering_tf_kernels.h5"
            )
        targets += [(model.visual_modulator, name) for _, name in _conv_names()]
        targets += [(model.visual_modulator, "fc6"), (model.visual_modulator, "fc7")]
    problems, assignments = [], []
    for network, name in targets:
        layer = network.get_layer(name)
        for variable, value in zip((layer.kernel, layer.bias), layers[name]):
            if tuple(variable.shape) != value.shape:
                problems.append(
                    f"{network.name}/{variable.path}: the model expects {list(variable.shape)}, "
                    f"{path} has {list(value.shape)}"
                )
            assignments.append((variable, value))
    if problems:
        hint = ""
        if model.visual_modulator is not None and model.config.guide_size != GUIDE_SIZE:
            hint = f"\n(ImageNet's fc6 is 7x7 on 224x224 inputs; this model's guide_size is {model.config.guide_size})"
        raise CheckpointError("ImageNet VGG16 weights do not fit the model:\n  " + "\n  ".join(problems) + hint)
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))
    return [f"{network.name}/{name}" for network, name in targets]
