"""lite, deeplab and masktrack at frame sizes the fixtures do not cover, against the release's graphs written in TF ops.

The original cannot run here, so each base model's graph (SPEC 8.1 - 8.3) is
transcribed below with the TensorFlow ops TF-slim's layers call
(`tf.nn.conv2d`, `depthwise_conv2d`, `batch_normalization`, `avg_pool2d`,
`max_pool2d`, `conv2d_transpose` with the bilinear kernel, TF1's
`resize_bilinear`, `crop_features`, `padding_image`), reading the weights
by their TF1 names (`tf1_variable_map`). The transcription shares no code
with `osmn_tf.models`; the fidelity fixtures check it at one size, this
file checks the port at others, odd and tiny ones included.
"""
import numpy as np
import pytest
import tensorflow as tf

from osmn_tf.config import MOBILENET_V1_BLOCKS, input_scale_of
from osmn_tf.weights.checkpoints import tf1_variable_map

from conftest import small_osmn
from test_jax_backend import TOLERANCE, relative_error

SMALL = dict(width=0.125, guide_size=64)


def release_weights(model, seed=0):
    """`model`'s weights by TF1 name, BatchNorm statistics made far from the identity first (in the model too)."""
    rng = np.random.default_rng(seed)
    variables = tf1_variable_map(model)
    for name, variable in variables.items():
        if name.endswith(("moving_variance", "moving_mean", "beta", "gamma")):
            low, high = (0.3, 2.0) if name.endswith(("variance", "gamma")) else (-0.3, 0.3)
            variable.assign(rng.uniform(low, high, variable.shape).astype("float32"))
    return {name: tf.constant(np.asarray(variable)) for name, variable in variables.items()}


def conv(v, x, scope, stride=1, rate=1, activation=tf.nn.relu, bias=True, batch_norm=False):
    """slim.conv2d / separable_conv2d (filters None) as the release's arg scopes configure them, in eval mode."""
    if f"{scope}/depthwise_weights" in v:
        x = tf.nn.depthwise_conv2d(x, v[f"{scope}/depthwise_weights"], [1, stride, stride, 1], "SAME",
                                   dilations=[rate, rate])
    else:
        x = tf.nn.conv2d(x, v[f"{scope}/weights"], stride, "SAME", dilations=rate)
    if batch_norm:
        bn = f"{scope}/BatchNorm"
        x = tf.nn.batch_normalization(x, v[f"{bn}/moving_mean"], v[f"{bn}/moving_variance"], v[f"{bn}/beta"],
                                      v[f"{bn}/gamma"], 1e-3)
    elif bias:
        x = x + v[f"{scope}/biases"]
    return activation(x) if activation else x


# --- lite (osmn_lite, visual_modulator_lite, mobilenet_v1 of the release) ---

def mobilenet(v, x, scope, modulate=None):
    """TF-slim's mobilenet_v1_base; `modulate(block, x)` after the pointwise convolutions of blocks 3, 5, 11, 13."""
    x = conv(v, x, f"{scope}/Conv2d_0", 2, activation=tf.nn.relu6, batch_norm=True)
    for i, (stride, _) in enumerate(MOBILENET_V1_BLOCKS, 1):
        x = conv(v, x, f"{scope}/Conv2d_{i}_depthwise", stride, activation=tf.nn.relu6, batch_norm=True)
        x = conv(v, x, f"{scope}/Conv2d_{i}_pointwise", activation=tf.nn.relu6, batch_norm=True)
        if modulate is not None and i in (3, 5, 11, 13):
            x = modulate(i, x)
    return x


def lite_release(v, guide, spatial_guide, image):
    x = mobilenet(v, guide, "osmn/modulator")
    size = x.shape[1:3]
    x = tf.nn.avg_pool2d(x, [min(size[0], 7), min(size[1], 7)], 1, "VALID")  # AvgPool_1a
    features = tf.nn.relu(conv(v, x, "osmn/modulator/Logits/Conv2d_1c_1x1", activation=None))
    params = [conv(v, features, f"osmn/Conv2d_out_{k}", activation=None) for k in range(1, 5)]
    d = tf.nn.avg_pool2d(spatial_guide, 4, 4, "VALID")
    maps = []
    for k, block in enumerate((3, 5, 11, 13)):
        if k:
            d = tf.nn.avg_pool2d(d, 2, 2, "VALID")
        maps.append(conv(v, d, f"osmn/modulator_sp/conv{block}", batch_norm=True))
    ends = {}

    def modulate(block, x):  # y * v_k + s_k
        k = (3, 5, 11, 13).index(block)
        ends[block] = x * params[k] + maps[k]
        return ends[block]

    mobilenet(v, image, "osmn/seg", modulate)
    height, width = image.shape[1:3]
    sides = [tf.compat.v1.image.resize_bilinear(conv(v, ends[i], f"osmn/conv{i}_16", activation=None),
                                                [height // 2, width // 2]) for i in (3, 5, 11, 13)]
    score = conv(v, tf.concat(sides, 3), "osmn/score", activation=None)
    return tf.compat.v1.image.resize_bilinear(score, [height, width])


# --- deeplab and masktrack (osmn_deeplab, osmn_masktrack) ---

def bilinear_kernel(size):
    factor = (size + 1) // 2
    centre = factor - 0.5
    og = np.ogrid[:size, :size]
    return ((1 - abs(og[0] - centre) / factor) * (1 - abs(og[1] - centre) / factor)).astype("float32")


def score_up_and_crop(fc8, height, width):
    s = fc8.shape
    up = tf.nn.conv2d_transpose(fc8, bilinear_kernel(16)[:, :, None, None], [s[0], 8 * (s[1] - 1) + 16,
                                                                            8 * (s[2] - 1) + 16, 1], 8, "VALID")
    top, left = (up.shape[1] - height) // 2, (up.shape[2] - width) // 2  # crop_features, of the unpadded size
    return up[:, top:top + height, left:left + width]


def dilated_vgg(v, x, params, maps, pools, head):
    offset = 0
    for block, num_convs in enumerate((2, 2, 3, 3, 3), 1):
        channels = v[f"osmn/seg/conv{block}/conv{block}_1/biases"].shape[0]
        for i in range(1, num_convs + 1):
            x = conv(v, x, f"osmn/seg/conv{block}/conv{block}_{i}", rate=2 if block == 5 else 1)
            if block >= 3:
                x = x * params[:, None, None, offset:offset + channels]
                offset += channels
                if maps is not None:
                    x = x + maps[block][..., (i - 1) * channels:i * channels]
        size, stride = pools[block - 1]
        x = tf.nn.max_pool2d(x, size, stride, "SAME")
    heads = []
    for k, rate in enumerate((6, 12, 18, 24), 1):
        y = conv(v, conv(v, x, f"osmn/seg/fc6_{k}", rate=rate), f"osmn/seg/fc7_{k}")
        heads.append(conv(v, y, f"osmn/seg/{head}_{k}", activation=None))
    return tf.add_n(heads)


def deeplab_release(v, params, spatial_guide, image):
    d2 = tf.nn.avg_pool2d(tf.nn.avg_pool2d(spatial_guide, 2, 2, "SAME"), 2, 2, "SAME")
    d3 = tf.nn.avg_pool2d(d2, 2, 2, "SAME")
    maps = {3: conv(v, d2, "osmn/modulator_sp/conv3", batch_norm=True),
            4: conv(v, d3, "osmn/modulator_sp/conv4", batch_norm=True),
            5: conv(v, d3, "osmn/modulator_sp/conv5", batch_norm=True)}
    fc8 = dilated_vgg(v, image, params, maps, [(2, 2), (2, 2), (2, 2), (2, 1), (3, 1)], "fc8_voc12")
    return score_up_and_crop(fc8, *image.shape[1:3])


def masktrack_release(v, params, spatial_guide, image, aligned_size=None):
    x = tf.concat([spatial_guide, image], 3)
    if aligned_size:  # padding_image
        (width, height), (h, w) = aligned_size, x.shape[1:3]
        x = tf.pad(x, [[0, 0], [(height - h) // 2, height - h - (height - h) // 2],
                       [(width - w) // 2, width - w - (width - w) // 2], [0, 0]])
    fc8 = dilated_vgg(v, x, params, None, [(3, 2), (3, 2), (3, 2), (3, 1), (3, 1)], "fc8")
    return score_up_and_crop(fc8, *image.shape[1:3])


def model_inputs(model, size, batch=2, seed=1):
    rng = np.random.default_rng(seed)
    scale, guide = input_scale_of(model.config), model.config.guide_size
    return (rng.normal(0, 60 * scale, (batch, guide, guide, 3)).astype("float32"),
            rng.uniform(0, 1, (batch, *size, 1)).astype("float32"),
            rng.normal(0, 60 * scale, (batch, *size, 3)).astype("float32"))


@pytest.mark.parametrize("size", [(32, 32), (160, 224), (384, 384), (96, 64)])
@pytest.mark.slow
def test_lite_equals_the_releases_graph_at_multiples_of_32(size):
    model = small_osmn(base_model="lite", **SMALL)
    v = release_weights(model)
    guide, spatial_guide, image = model_inputs(model, size)
    expected = lite_release(v, guide, spatial_guide, image).numpy()
    actual = np.asarray(model([guide, spatial_guide, image], training=False))
    assert expected.std() > 1e-3
    print(f"lite {size}: relative error {relative_error(actual, expected):.1e}")
    assert relative_error(actual, expected) <= TOLERANCE


@pytest.mark.parametrize("size", [(1, 1), (8, 9), (33, 47), (61, 83)])
@pytest.mark.parametrize("base_model", ["deeplab", "masktrack"])
@pytest.mark.slow
def test_dilated_base_models_equal_the_releases_graph_at_any_size(base_model, size):
    model = small_osmn(base_model=base_model, **SMALL)
    v = release_weights(model)
    guide, spatial_guide, image = model_inputs(model, size)
    params = model.visual_modulator(guide, training=False)
    graph = deeplab_release if base_model == "deeplab" else masktrack_release
    expected = graph(v, params, spatial_guide, image).numpy()
    actual = np.asarray(model([guide, spatial_guide, image], training=False))
    print(f"{base_model} {size}: relative error {relative_error(actual, expected):.1e}")
    assert relative_error(actual, expected) <= TOLERANCE


@pytest.mark.parametrize("size,aligned", [((33, 47), (60, 40)), ((61, 83), (83, 61)), ((8, 9), (20, 17))])
def test_masktrack_aligned_size_equals_the_releases_graph(size, aligned):
    model = small_osmn(base_model="masktrack", aligned_size=aligned, **SMALL)
    v = release_weights(model)
    guide, spatial_guide, image = model_inputs(model, size)
    params = model.visual_modulator(guide, training=False)
    expected = masktrack_release(v, params, spatial_guide * 255, image, aligned).numpy()
    actual = np.asarray(model([guide, spatial_guide * 255, image], training=False))
    print(f"masktrack {size} aligned {aligned}: relative error {relative_error(actual, expected):.1e}")
    assert relative_error(actual, expected) <= TOLERANCE
