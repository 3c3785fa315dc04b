"""Model structure: variants, shapes, the custom layers, any frame size."""
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import osmn_tf
from osmn_tf.layers import BilinearUpsampling, Modulation, ObjectBroadcast, SideOutputFusion
from osmn_tf.weights.checkpoints import tf1_variable_map, variant_config

from conftest import DATA, assert_layer_round_trips

SMALL = 0.125


def small_inputs(model, batch=2, height=37, width=51, seed=0):
    rng = np.random.default_rng(seed)
    guide = model.config.guide_size
    values = {
        "guide_image": rng.normal(0, 50, (batch, guide, guide, 3)),
        "spatial_guide": rng.uniform(0, 1, (batch, height, width, 1)),
        "image": rng.normal(0, 50, (batch, height, width, 3)),
    }
    return [values[t.name].astype("float32") for t in model.inputs]


@pytest.mark.large
@pytest.mark.parametrize("variant", ["full", "no_spatial", "no_visual", "mod_early_conv"])
def test_variants_have_exactly_the_original_variables(variant):
    with open(DATA / "tf1_variables.json") as f:
        manifest = json.load(f)[variant]
    # The original's graph also holds the fixed up-sampling kernels and the step,
    # which this port does not keep as variables.
    expected = {
        v["name"]: v["shape"] for v in manifest if not v["name"].endswith("-up/weights") and v["name"] != "global_step"
    }
    model = osmn_tf.build_osmn(variant_config(variant))
    actual = {name: list(var.shape) for name, var in tf1_variable_map(model).items()}
    assert actual == expected
    # Nothing in the model is left out of the mapping.
    assert len(model.weights) == len(actual)
    if model.visual_modulator is not None:
        assert model.get_layer("visual_modulator").output.shape[-1] == (4224 if variant == "mod_early_conv" else 3840)


@pytest.mark.parametrize("height,width", [(37, 51), (32, 32), (1, 1), (17, 96)])
@pytest.mark.parametrize("variant", ["full", "no_spatial", "no_visual", "mod_early_conv"])
@pytest.mark.slow
def test_any_frame_size_gives_logits_of_that_size(variant, height, width):
    model = osmn_tf.build_osmn(variant_config(variant, width=SMALL))
    logits = model(small_inputs(model, height=height, width=width))
    assert logits.shape == (2, height, width, 1)
    assert logits.dtype == "float32"
    assert np.all(np.isfinite(logits))


def test_input_names_follow_the_variant():
    names = lambda m: [t.name for t in m.inputs]  # noqa: E731
    assert names(osmn_tf.build_osmn(width=SMALL)) == ["guide_image", "spatial_guide", "image"]
    assert names(osmn_tf.build_osmn(width=SMALL, use_visual_modulator=False)) == ["spatial_guide", "image"]
    assert names(osmn_tf.build_osmn(width=SMALL, use_spatial_modulator=False)) == ["guide_image", "image"]


def test_width_scales_channels_and_modulation_params():
    model = osmn_tf.build_osmn(width=0.25)
    vm = model.get_layer("visual_modulator")
    assert vm.get_layer("conv1_1").kernel.shape == (3, 3, 3, 16)
    assert vm.get_layer("fc6").kernel.shape == (7, 7, 128, 1024)
    assert vm.output.shape == (None, 960) and model.num_modulation_params == 960
    assert model.get_layer("segmentation_network").get_layer("conv5_3").kernel.shape == (3, 3, 128, 128)


def test_modulation_layout_places_each_convolutions_scales_and_biases():
    from osmn_tf.config import ModulatedConv, modulation_layout, spatial_bias_channels

    layout = modulation_layout()
    assert [c.name for c in layout] == ["conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2", "conv4_3",
                                        "conv5_1", "conv5_2", "conv5_3"]
    assert layout[0] == ModulatedConv("conv3_1", 3, 256, 0, 0)
    assert layout[3] == ModulatedConv("conv4_1", 4, 512, 768, 0)
    assert layout[-1] == ModulatedConv("conv5_3", 5, 512, 3328, 1024)
    assert spatial_bias_channels() == {3: 768, 4: 1536, 5: 1536}
    early = modulation_layout(mod_early_conv=True, width=0.5)
    assert early[0] == ModulatedConv("conv1_1", 1, 32, 0, 0)
    assert early[3] == ModulatedConv("conv2_2", 2, 64, 32 + 32 + 64, 64)
    assert early[-1] == ModulatedConv("conv5_3", 5, 256, 2112 - 256, 512)
    assert spatial_bias_channels(True, 0.5) == {1: 64, 2: 128, 3: 384, 4: 768, 5: 768}
    # The model's Modulation layers read the same places.
    seg = osmn_tf.build_osmn(width=SMALL, mod_early_conv=True, guide_size=64).segmentation_network
    for conv in modulation_layout(True, SMALL):
        layer = seg.get_layer(f"{conv.name}_modulation")
        assert (layer.scale_offset, layer.bias_offset) == (conv.scale_offset, conv.bias_offset)


def test_untrained_visual_modulator_gives_unit_scales():
    # fc8 starts at weights 0 and biases 1 (SPEC 4.1): an untrained modulator changes nothing.
    model = osmn_tf.build_osmn(width=SMALL)
    params = model.get_layer("visual_modulator")(small_inputs(model)[0], training=False)
    np.testing.assert_array_equal(params, np.ones((2, 480), "float32"))


def test_frame_model_with_precomputed_params_equals_whole_model():
    model = osmn_tf.build_osmn(width=SMALL)
    # Non-trivial scales, so that a wrong slice would show.
    fc8 = model.get_layer("visual_modulator").get_layer("fc8")
    fc8.kernel.assign(np.random.default_rng(1).normal(0, 0.01, fc8.kernel.shape))
    guide, spatial_guide, image = small_inputs(model)
    params = model.get_layer("visual_modulator")(guide, training=False).numpy()
    frame = model.frame_model()
    assert [t.name for t in frame.inputs] == ["image", "spatial_guide", "modulation_params"]
    np.testing.assert_allclose(
        frame([image, spatial_guide, params]), model([guide, spatial_guide, image]), rtol=1e-5, atol=1e-6
    )
    assert model.frame_model() is frame


@pytest.mark.slow
def test_frame_model_under_another_precision_copies_only_the_per_frame_part():
    import gc

    from osmn_tf.models.visual_modulator import VisualModulator

    model = osmn_tf.build_osmn(width=SMALL)
    guide, spatial_guide, image = small_inputs(model)
    params = model.get_layer("visual_modulator")(guide, training=False).numpy()
    reference = np.asarray(model.frame_model()([image, spatial_guide, params]))

    def visual_modulators():
        gc.collect()
        return sum(isinstance(o, VisualModulator) for o in gc.get_objects())

    before = visual_modulators()
    mixed = model.frame_model("mixed_bfloat16")
    assert mixed is not model.frame_model() and model.frame_model("float32") is model.frame_model()
    conv = mixed.get_layer("segmentation_network").get_layer("conv3_1")
    assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
    logits = np.asarray(mixed([image, spatial_guide, params]))
    assert logits.dtype == np.float32
    agreement = np.mean((logits > 0) == (reference > 0))
    print(f"\nbfloat16 / float32 sign agreement of the logits: {agreement:.4f}")
    assert agreement > 0.99
    # The visual modulator runs once per object at the model's own precision: no second copy is kept.
    assert visual_modulators() == before


def original_bilinear_kernel(size):
    # SPEC 4.3, written out independently: factor = (k + 1) // 2, centre = factor - 0.5.
    factor = (size + 1) // 2
    centre = factor - 0.5
    k = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            k[i, j] = (1 - abs(i - centre) / factor) * (1 - abs(j - centre) / factor)
    return k


@pytest.mark.parametrize("factor", [2, 4, 8, 16])
@pytest.mark.parametrize("in_size,out_size", [((4, 6), (7, 11)), ((7, 9), (97 // 1, 131 // 1)), ((3, 3), (5, 6))])
def test_bilinear_upsampling_equals_the_originals_diagonal_transposed_conv(factor, in_size, out_size):
    channels = 3
    x = np.random.default_rng(0).normal(size=(2, *in_size, channels)).astype("float32")
    out_size = (min(out_size[0], (in_size[0] + 1) * factor), min(out_size[1], (in_size[1] + 1) * factor))
    reference = np.zeros((2, *out_size, 1), "float32")
    # The original: conv2d_transpose with the bilinear kernel on the channel diagonal, VALID, then a centre crop.
    kernel = np.zeros((2 * factor, 2 * factor, channels, channels), "float32")
    for c in range(channels):
        kernel[:, :, c, c] = original_bilinear_kernel(2 * factor)
    up_h, up_w = (in_size[0] - 1) * factor + 2 * factor, (in_size[1] - 1) * factor + 2 * factor
    up = tf.nn.conv2d_transpose(x, kernel, [2, up_h, up_w, channels], strides=factor, padding="VALID").numpy()
    top, left = (up_h - out_size[0]) // 2, (up_w - out_size[1]) // 2
    expected = up[:, top : top + out_size[0], left : left + out_size[1]]
    actual = BilinearUpsampling(factor)(x, reference=reference)
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-6)

    # The gradient too: the transposed convolution's is a strided convolution.
    weights = np.random.default_rng(1).normal(size=expected.shape).astype("float32")
    x = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = tf.reduce_sum(BilinearUpsampling(factor)(x, reference=reference) * weights)
        up = tf.nn.conv2d_transpose(x, kernel, [2, up_h, up_w, channels], strides=factor, padding="VALID")
        theirs = tf.reduce_sum(up[:, top : top + out_size[0], left : left + out_size[1]] * weights)
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(theirs, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mod_early_conv", [False, True])
@pytest.mark.slow
def test_fold_batch_norm_gives_the_same_maps_and_logits_at_inference(mod_early_conv):
    model = osmn_tf.build_osmn(width=SMALL, mod_early_conv=mod_early_conv, guide_size=64)
    rng = np.random.default_rng(0)
    modulator = model.spatial_modulator
    for weight in modulator.weights:
        values = rng.uniform(0.2, 2.0, weight.shape) if "variance" in weight.path else rng.normal(0, 0.5, weight.shape)
        weight.assign(values.astype("float32"))
    # Side outputs large enough that the logits vary across pixels.
    seg = model.segmentation_network
    for name, std in [("conv2_2_16", 0.02), ("conv3_3_16", 0.02), ("conv4_3_16", 0.02), ("conv5_3_16", 0.02),
                      ("upscore-fuse", 1.0)]:
        seg.get_layer(name).kernel.assign(rng.normal(0, std, seg.get_layer(name).kernel.shape).astype("float32"))
    guide = rng.uniform(0, 1, (2, 37, 51, 1)).astype("float32")
    # The unfolded computation, layer by layer: pooling, conv, BatchNorm on its moving statistics, ReLU.
    x, pooled = guide, {1: guide}
    for d in range(1, modulator.blocks[-1]):
        pooled[d + 1] = x = modulator.get_layer(f"pool{d}")(x)
    expected = []
    for b in modulator.blocks:
        bn, conv = modulator.get_layer(f"conv{b}_bn"), modulator.get_layer(f"conv{b}")
        expected.append(np.maximum(bn(conv(pooled[b]), training=False), 0))

    folded = osmn_tf.fold_batch_norm(model)
    assert folded is not model and folded.batch_norm_folded and not model.batch_norm_folded
    layers = folded.spatial_modulator.layers
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)
    assert all(folded.spatial_modulator.get_layer(f"conv{b}").use_bias for b in modulator.blocks)
    maps = folded.spatial_modulator(guide, training=False)
    assert len(maps) == len(expected) == (5 if mod_early_conv else 3)
    for ours, theirs in zip(maps, expected):
        assert ours.shape == theirs.shape and np.abs(theirs).max() > 0.1
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    # The unfolded model itself runs its BatchNorm at inference, and gives the same logits.
    np.testing.assert_allclose(modulator(guide, training=False)[0], expected[0], rtol=1e-5, atol=1e-5)
    inputs = small_inputs(model)
    logits = np.asarray(model(inputs, training=False))
    assert logits.std() > 1e-3
    np.testing.assert_allclose(folded(inputs, training=False), logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    # Folding is idempotent, and a folded model rebuilds from its config.
    assert osmn_tf.fold_batch_norm(folded) is folded
    clone = osmn_tf.OSMN.from_config(folded.get_config())
    clone.set_weights(folded.get_weights())
    np.testing.assert_array_equal(clone(inputs, training=False), folded(inputs, training=False))
    # The per-frame part folds its spatial modulator alone and shares the segmentation network.
    frame = model.frame_model(fold_batch_norm=True)
    assert frame.get_layer("segmentation_network") is model.segmentation_network
    assert frame is not model.frame_model() and frame.get_layer("spatial_modulator").batch_norm_folded
    frame_inputs = [inputs[2], inputs[1], np.asarray(model.visual_modulator(inputs[0], training=False))]
    np.testing.assert_allclose(frame(frame_inputs, training=False), model.frame_model()(frame_inputs, training=False),
                               rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    # Training normalises with the batch's statistics: different maps.
    trained = modulator(guide, training=True)
    assert np.abs(trained[0] - expected[0]).max() > 0.1


def test_side_output_fusion_equals_a_1x1_conv_on_the_up_sampled_hypercolumn():
    # The original's order: up-sample every side output, concatenate, 1x1 convolution.
    rng = np.random.default_rng(0)
    factors, sizes = (2, 4, 8, 16), ((19, 26), (10, 13), (5, 7), (3, 4))
    sides = [tf.constant(rng.normal(size=(3, *size, 16)).astype("float32")) for size in sizes]
    reference = np.zeros((3, 37, 51, 1), "float32")
    fusion = SideOutputFusion(factors)
    fusion(sides, reference=reference)
    fusion.kernel.assign(rng.normal(size=(1, 1, 64, 1)).astype("float32"))
    fusion.bias.assign([0.25])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(sides)
        ours = fusion(sides, reference=reference)
        hypercolumn = tf.concat([BilinearUpsampling(f)(s, reference=reference) for f, s in zip(factors, sides)], -1)
        theirs = tf.nn.conv2d(hypercolumn, fusion.kernel, 1, "VALID") + fusion.bias
    assert ours.shape == (3, 37, 51, 1)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    sources = sides + [fusion.kernel]
    for g_ours, g_theirs in zip(tape.gradient(ours, sources), tape.gradient(theirs, sources)):
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="expects 4 side outputs, got 3"):
        SideOutputFusion(factors)(sides[:3], reference=reference)


@pytest.mark.parametrize("variant", [{}, {"mod_early_conv": True}, {"use_visual_modulator": False},
                                     {"use_spatial_modulator": False}])
def test_one_frame_shared_by_objects_equals_one_copy_per_object(variant):
    model = osmn_tf.build_osmn(width=SMALL, guide_size=64, **variant)
    frame_model = model.frame_model()
    rng = np.random.default_rng(0)
    objects = 3
    values = {"image": rng.normal(0, 50, (1, 37, 51, 3)), "spatial_guide": rng.uniform(0, 1, (objects, 37, 51, 1)),
              "modulation_params": rng.normal(1, 0.5, (objects, model.num_modulation_params))}
    shared_inputs = [values[t.name].astype("float32") for t in frame_model.inputs]
    values["image"] = np.repeat(values["image"], objects, axis=0)
    copied_inputs = [values[t.name].astype("float32") for t in frame_model.inputs]
    shared = frame_model(shared_inputs).numpy()
    copied = frame_model(copied_inputs).numpy()
    assert shared.shape == copied.shape == (objects, 37, 51, 1)
    # Not bit-identical: the convolution library blocks a batch of 1 and of 3 differently.
    np.testing.assert_allclose(shared, copied, rtol=1e-5, atol=1e-6 * np.abs(copied).max())
    # The shared part ends just before the first modulation.
    broadcasts = [layer.name for layer in model.segmentation_network.layers if isinstance(layer, ObjectBroadcast)]
    first = "conv1_1" if variant.get("mod_early_conv") else "conv3_1"
    expected = [f"{first}_to_objects"] + ([] if variant.get("mod_early_conv") else ["conv2_2_16_to_objects"])
    assert sorted(broadcasts) == sorted(expected)


def test_guide_size_sets_the_visual_modulators_input_and_fc6():
    model = osmn_tf.build_osmn(width=SMALL, guide_size=64)
    assert tuple(model.inputs[0].shape) == (None, 64, 64, 3)
    assert tuple(model.visual_modulator.get_layer("fc6").kernel.shape[:2]) == (2, 2)
    assert model.predict(small_inputs(model), verbose=0).shape == (2, 37, 51, 1)
    clone = osmn_tf.OSMN.from_config(model.get_config())
    assert clone.config.guide_size == 64
    for bad in (0, 48, 100, 64.5):
        with pytest.raises(ValueError, match="guide_size must be a multiple of 32"):
            osmn_tf.OSMNConfig(guide_size=bad)


def test_modulation_scales_per_channel_and_shifts_per_pixel():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    scales = rng.normal(size=(2, 20)).astype("float32")
    biases = rng.normal(size=(2, 3, 4, 15)).astype("float32")
    layer = Modulation(scale_offset=7, bias_offset=10)
    expected = x * scales[:, None, None, 7:12] + biases[..., 10:15]
    np.testing.assert_allclose(layer(x, scales=scales, biases=biases), expected, rtol=1e-6)
    np.testing.assert_allclose(layer(x, scales=scales), x * scales[:, None, None, 7:12], rtol=1e-6)
    np.testing.assert_allclose(layer(x, biases=biases), x + biases[..., 10:15], rtol=1e-6)


@pytest.mark.parametrize(
    "layer", [Modulation(scale_offset=3, bias_offset=5, name="m"), BilinearUpsampling(8, name="up"),
              ObjectBroadcast(name="b"), SideOutputFusion([2, 4], kernel_initializer="zeros", name="fuse")]
)
def test_custom_layers_round_trip_their_config(layer):
    assert_layer_round_trips(layer)


def test_bad_config_is_rejected_with_the_field_name():
    with pytest.raises(ValueError, match="width"):
        osmn_tf.OSMNConfig(width=0)
    with pytest.raises(ValueError, match="dropout_rate"):
        osmn_tf.OSMNConfig(dropout_rate=1.5)
