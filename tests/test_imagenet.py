"""ImageNet VGG16 initialisation from TF-slim's checkpoint and Keras' .h5 (files written here with the real names)."""
import h5py
import numpy as np
import pytest
import tensorflow as tf

import osmn_tf
from osmn_tf.weights.checkpoints import CheckpointError
from osmn_tf.weights.imagenet import load_imagenet_vgg16

WIDTH = 0.125
# VGG16 at width 0.125: (block, convolutions, channels).
BLOCKS = [(1, 2, 8), (2, 2, 16), (3, 3, 32), (4, 3, 64), (5, 3, 64)]
FC = 512


def vgg16_layers(seed=0):
    """Random VGG16 weights at WIDTH, named by (block, index), plus fc6/fc7 as convolutions."""
    rng = np.random.default_rng(seed)
    layers, cin = {}, 3
    for b, n, c in BLOCKS:
        for i in range(1, n + 1):
            layers[(b, i)] = (rng.normal(size=(3, 3, cin, c)).astype("f"), rng.normal(size=(c,)).astype("f"))
            cin = c
    layers["fc6"] = (rng.normal(size=(7, 7, cin, FC)).astype("f"), rng.normal(size=(FC,)).astype("f"))
    layers["fc7"] = (rng.normal(size=(1, 1, FC, FC)).astype("f"), rng.normal(size=(FC,)).astype("f"))
    return layers


def write_slim(prefix, layers):
    tensors = {}
    for key, (kernel, bias) in layers.items():
        scope = f"vgg_16/{key}" if isinstance(key, str) else f"vgg_16/conv{key[0]}/conv{key[0]}_{key[1]}"
        tensors[f"{scope}/weights"], tensors[f"{scope}/biases"] = kernel, bias
    tensors["vgg_16/fc8/weights"] = np.zeros((1, 1, FC, 1000), "f")  # ImageNet classes: not used
    tensors["global_step"] = np.array(1, "int64")
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return str(prefix)


def write_keras_h5(path, layers, top=True):
    # The layout of Keras' own file: a group per layer, `weight_names` listing kernel then bias.
    with h5py.File(path, "w") as f:
        groups = []
        for key, (kernel, bias) in layers.items():
            if isinstance(key, str):
                if not top:
                    continue
                name = {"fc6": "fc1", "fc7": "fc2"}[key]
                kernel = kernel.reshape(-1, kernel.shape[-1])  # dense kernels, as Keras stores them
            else:
                name = f"block{key[0]}_conv{key[1]}"
            g = f.create_group(name)
            weight_names = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            g.attrs["weight_names"] = weight_names
            g[weight_names[0].decode()] = kernel
            g[weight_names[1].decode()] = bias
            groups.append(name.encode())
        f.attrs["layer_names"] = groups
    return str(path)


def assert_initialised(model, layers):
    for network in (model.get_layer("segmentation_network"), model.get_layer("visual_modulator")):
        for (b, n, _) in BLOCKS:
            for i in range(1, n + 1):
                layer = network.get_layer(f"conv{b}_{i}")
                np.testing.assert_array_equal(layer.kernel, layers[(b, i)][0])
                np.testing.assert_array_equal(layer.bias, layers[(b, i)][1])
    vm = model.get_layer("visual_modulator")
    for fc in ("fc6", "fc7"):
        np.testing.assert_array_equal(vm.get_layer(fc).kernel, layers[fc][0])
        np.testing.assert_array_equal(vm.get_layer(fc).bias, layers[fc][1])


@pytest.mark.parametrize("kind", ["slim", "keras"])
@pytest.mark.slow
def test_vgg16_initialises_both_networks_and_keeps_the_rest(tmp_path, kind):
    layers = vgg16_layers()
    path = write_slim(tmp_path / "vgg_16.ckpt", layers) if kind == "slim" else write_keras_h5(tmp_path / "vgg16.h5", layers)
    model = osmn_tf.build_osmn(width=WIDTH)
    fc8_before = model.get_layer("visual_modulator").get_layer("fc8").bias.numpy()
    side_before = model.get_layer("segmentation_network").get_layer("conv3_3_16").kernel.numpy()
    names = load_imagenet_vgg16(model, path)
    assert len(names) == 13 + 13 + 2
    assert_initialised(model, layers)
    # Layers that are not VGG16 keep their own initialisation.
    np.testing.assert_array_equal(model.get_layer("visual_modulator").get_layer("fc8").bias, fc8_before)
    np.testing.assert_array_equal(model.get_layer("segmentation_network").get_layer("conv3_3_16").kernel, side_before)


def test_keras_h5_dense_fc_layers_become_the_same_convolutions(tmp_path):
    # fc1 applied to flattened pool5 must equal fc6 applied as a 7x7 convolution.
    layers = vgg16_layers(1)
    path = write_keras_h5(tmp_path / "vgg16.h5", layers)
    model = osmn_tf.build_osmn(width=WIDTH)
    load_imagenet_vgg16(model, path)
    pool5 = np.random.default_rng(2).normal(size=(1, 7, 7, 64)).astype("f")
    with h5py.File(path) as f:
        dense = f["fc1"]["fc1_W_1:0"][()]
    conv = model.get_layer("visual_modulator").get_layer("fc6").kernel.numpy()
    np.testing.assert_allclose(pool5.reshape(1, -1) @ dense, np.einsum("nhwc,hwcd->nd", pool5, conv), rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_notop_file_initialises_a_model_without_visual_modulator_only(tmp_path):
    layers = vgg16_layers()
    path = write_keras_h5(tmp_path / "vgg16_notop.h5", layers, top=False)
    with pytest.raises(CheckpointError, match="fc6/fc7"):
        load_imagenet_vgg16(osmn_tf.build_osmn(width=WIDTH), path)
    model = osmn_tf.build_osmn(width=WIDTH, use_visual_modulator=False)
    assert len(load_imagenet_vgg16(model, path)) == 13


@pytest.mark.slow
def test_width_mismatch_names_layer_and_shapes_and_assigns_nothing(tmp_path):
    path = write_slim(tmp_path / "vgg_16.ckpt", vgg16_layers())
    model = osmn_tf.build_osmn(width=0.25)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(CheckpointError, match=r"conv1_1/kernel: the model expects \[3, 3, 3, 16\].*has \[3, 3, 3, 8\]"):
        load_imagenet_vgg16(model, path)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)


def test_files_that_are_not_vgg16_are_named(tmp_path):
    model = osmn_tf.build_osmn(width=WIDTH)
    with pytest.raises(CheckpointError, match="missing.h5: does not exist"):
        load_imagenet_vgg16(model, tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.h5: cannot read as HDF5"):
        load_imagenet_vgg16(model, tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_group("dense_1")
    with pytest.raises(CheckpointError, match="no layer block1_conv1"):
        load_imagenet_vgg16(model, tmp_path / "other.h5")
    prefix = tmp_path / "other.ckpt"
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=["x"], shape_and_slices=[""], tensors=[tf.constant(1.0)])
    with pytest.raises(CheckpointError, match="not TF-slim's VGG16"):
        load_imagenet_vgg16(model, prefix)


# --- MobileNet v1 for lite (SPEC 8.1) ---

LITE_WIDTH = 0.25


def mobilenet_layers(seed=0):
    """Random MobileNet v1 weights at LITE_WIDTH: {TF-slim layer name: {kernel, gamma, beta, moving_*}}."""
    from osmn_tf.config import MOBILENET_V1_BLOCKS, scaled

    rng = np.random.default_rng(seed)

    def layer(kernel_shape):
        c = kernel_shape[-1] if kernel_shape[-1] != 1 else kernel_shape[2]
        return {"kernel": rng.normal(size=kernel_shape).astype("f"), "gamma": rng.normal(1, 0.1, c).astype("f"),
                "beta": rng.normal(size=c).astype("f"), "moving_mean": rng.normal(size=c).astype("f"),
                "moving_variance": rng.uniform(0.5, 2, c).astype("f")}

    cin = scaled(32, LITE_WIDTH)
    layers = {"Conv2d_0": layer((3, 3, 3, cin))}
    for i, (_, channels) in enumerate(MOBILENET_V1_BLOCKS, 1):
        layers[f"Conv2d_{i}_depthwise"] = layer((3, 3, cin, 1))
        cout = scaled(channels, LITE_WIDTH)
        layers[f"Conv2d_{i}_pointwise"] = layer((1, 1, cin, cout))
        cin = cout
    return layers


def write_mobilenet_slim(prefix, layers):
    tensors = {}
    for name, values in layers.items():
        kernel = "depthwise_weights" if "depthwise" in name else "weights"
        tensors[f"MobilenetV1/{name}/{kernel}"] = values["kernel"]
        tensors.update({f"MobilenetV1/{name}/BatchNorm/{k}": values[k] for k in ("gamma", "beta", "moving_mean",
                                                                                  "moving_variance")})
    tensors["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] = np.zeros((1, 1, 256, 1001), "f")  # classifier: not used
    tensors["global_step"] = np.array(1, "int64")
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return str(prefix)


def write_mobilenet_keras_h5(path, layers, drop=()):
    # The layout of Keras' mobilenet_1_0_224_tf.h5: conv1, conv_dw_i, conv_pw_i and <layer>_bn groups whose
    # `weight_names` (`conv1/kernel:0`, `conv1_bn/gamma:0`, ...) name their datasets; BatchNorm gamma first.
    def keras_name(name):  # Conv2d_3_depthwise -> conv_dw_3
        if name == "Conv2d_0":
            return "conv1"
        block, kind = name[len("Conv2d_"):].split("_")
        return f"conv_{'dw' if kind == 'depthwise' else 'pw'}_{block}"

    with h5py.File(path, "w") as f:
        groups = []
        for name, values in layers.items():
            conv = keras_name(name)
            if conv in drop:
                continue
            kernel = "depthwise_kernel" if "depthwise" in name else "kernel"
            for group_name, weights in ((conv, {kernel: values["kernel"]}),
                                        (f"{conv}_bn", {k: values[k] for k in ("gamma", "beta", "moving_mean",
                                                                               "moving_variance")})):
                g = f.create_group(group_name)
                weight_names = [f"{group_name}/{k}:0" for k in weights]
                g.attrs["weight_names"] = [n.encode() for n in weight_names]
                for n, value in zip(weight_names, weights.values()):
                    g[n] = value
                groups.append(group_name.encode())
        f.attrs["layer_names"] = groups
    return str(path)


@pytest.mark.parametrize("kind", ["slim", "keras"])
@pytest.mark.slow
def test_mobilenet_v1_initialises_both_of_lites_mobilenets_and_keeps_the_rest(tmp_path, kind):
    from osmn_tf.weights.imagenet import load_imagenet

    layers = mobilenet_layers()
    path = (write_mobilenet_slim(tmp_path / "mobilenet_v1_1.0_224.ckpt", layers) if kind == "slim"
            else write_mobilenet_keras_h5(tmp_path / "mobilenet_1_0_224_tf.h5", layers))
    model = osmn_tf.build_osmn(base_model="lite", width=LITE_WIDTH)
    untouched = {name: model.get_layer(network).get_layer(name).kernel.numpy()
                 for network, name in [("visual_modulator", "Conv2d_1c_1x1"), ("visual_modulator", "Conv2d_out_1"),
                                       ("segmentation_network", "conv3_16"), ("spatial_modulator", "conv3")]}
    names = load_imagenet(model, path)
    assert len(names) == 2 * 27
    for network in (model.segmentation_network, model.visual_modulator):
        for name, values in layers.items():
            np.testing.assert_array_equal(network.get_layer(name).kernel, values["kernel"], err_msg=name)
            bn = network.get_layer(f"{name}_bn")
            for attr in ("gamma", "beta", "moving_mean", "moving_variance"):
                np.testing.assert_array_equal(getattr(bn, attr), values[attr], err_msg=f"{name} {attr}")
    for name, before in untouched.items():
        network = "segmentation_network" if name == "conv3_16" else "spatial_modulator" if name == "conv3" \
            else "visual_modulator"
        np.testing.assert_array_equal(model.get_layer(network).get_layer(name).kernel, before, err_msg=name)


@pytest.mark.slow
def test_mobilenet_files_are_checked_before_anything_is_assigned(tmp_path):
    from osmn_tf.weights.checkpoints import is_imagenet_file, load_weights
    from osmn_tf.weights.imagenet import load_imagenet_mobilenet_v1

    slim = write_mobilenet_slim(tmp_path / "mobilenet_v1_1.0_224.ckpt", mobilenet_layers())
    assert is_imagenet_file(slim) and is_imagenet_file("weights/mobilenet_1_0_224_tf.h5")
    wide = osmn_tf.build_osmn(base_model="lite", width=0.5)
    before = [w.numpy() for w in wide.weights]
    with pytest.raises(CheckpointError, match=r"Conv2d_0/kernel: the model expects \[3, 3, 3, 16\].*has \[3, 3, 3, 8"):
        load_weights(wide, slim)  # the training tools' entry point picks MobileNet for lite
    for w, b in zip(wide.weights, before):
        np.testing.assert_array_equal(w.numpy(), b)
    with pytest.raises(CheckpointError, match="fit base_model lite only; this model is osvos"):
        load_imagenet_mobilenet_v1(osmn_tf.build_osmn(width=WIDTH), slim)
    lite = osmn_tf.build_osmn(base_model="lite", width=LITE_WIDTH)
    with pytest.raises(CheckpointError, match="VGG16 weights do not fit base_model lite"):
        load_imagenet_vgg16(lite, write_slim(tmp_path / "vgg_16.ckpt", vgg16_layers()))
    with pytest.raises(CheckpointError, match="not TF-slim's MobileNet v1: it has no variable MobilenetV1/Conv2d_0/"):
        load_imagenet_mobilenet_v1(lite, tmp_path / "vgg_16.ckpt")
    partial = write_mobilenet_keras_h5(tmp_path / "partial.h5", mobilenet_layers(), drop=("conv_dw_3",))
    with pytest.raises(CheckpointError, match="not Keras' MobileNet weights: it has no layer conv_dw_3"):
        load_imagenet_mobilenet_v1(lite, partial)


@pytest.mark.parametrize("first_conv", ["release", "imagenet"])
@pytest.mark.slow
def test_masktracks_four_channel_conv1_1_is_initialised_as_the_release_or_from_imagenet(tmp_path, first_conv):
    layers = vgg16_layers()
    path = write_slim(tmp_path / "vgg_16.ckpt", layers)
    model = osmn_tf.build_osmn(base_model="masktrack", width=WIDTH)
    conv1 = model.segmentation_network.get_layer("conv1_1")
    before = conv1.kernel.numpy()
    assert before.shape == (3, 3, 4, 8)
    load_imagenet_vgg16(model, path, masktrack_first_conv=first_conv)
    np.testing.assert_array_equal(conv1.bias, layers[(1, 1)][1])
    if first_conv == "release":
        # The release assigns only variables of equal shapes: the 4-channel kernel keeps its initialiser.
        np.testing.assert_array_equal(conv1.kernel, before)
    else:
        np.testing.assert_array_equal(conv1.kernel[:, :, 1:], layers[(1, 1)][0])
        np.testing.assert_array_equal(conv1.kernel[:, :, :1], before[:, :, :1])
    np.testing.assert_array_equal(model.segmentation_network.get_layer("conv1_2").kernel, layers[(1, 2)][0])
    np.testing.assert_array_equal(model.visual_modulator.get_layer("conv1_1").kernel, layers[(1, 1)][0])
