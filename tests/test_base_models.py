"""The base models (SPEC 8): config checks, counts, shapes, quirks, saving, folding, objects, preprocessing."""
import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest

import osmn_tf
from osmn_tf.config import OSMNConfig, input_scale_of, num_modulation_params, spatial_bias_channels
from osmn_tf.data.frames import preprocess_frame, resize_mask
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.data.mask_guides import dilated_mask_guide
from osmn_tf.layers import AlignedPadding, LegacyBilinearResize, Modulation
from osmn_tf.weights.checkpoints import tf1_variable_map, variant_config

from conftest import (DATA, assert_layer_round_trips, assert_models_reload_in_a_fresh_process, base_model_fixture,
                      randomize_weights, small_osmn)

SMALL = dict(width=0.125, guide_size=64)
BASE_MODELS = ["osvos", "lite", "deeplab", "masktrack"]
# Frame sizes each base model takes: lite's modulated network needs multiples of 32.
SIZES = {"osvos": (37, 51), "lite": (64, 96), "deeplab": (37, 51), "masktrack": (37, 51)}


def inputs_for(model, batch=2, size=None, seed=0):
    height, width = size or SIZES[model.config.base_model]
    rng = np.random.default_rng(seed)
    guide, scale = model.config.guide_size, input_scale_of(model.config)
    values = {"guide_image": rng.normal(0, 50 * scale, (batch, guide, guide, 3)),
              "spatial_guide": rng.uniform(0, 1, (batch, height, width, 1)),
              "image": rng.normal(0, 50 * scale, (batch, height, width, 3))}
    return [values[t.name].astype("float32") for t in model.inputs]


# --- config ---

def test_base_model_and_the_releases_impossible_combinations_are_refused_by_name():
    with pytest.raises(ValueError, match=r"base_model must be one of \('osvos', 'lite', 'deeplab', 'masktrack'\)"):
        OSMNConfig(base_model="resnet")
    with pytest.raises(ValueError, match=r"lite with the visual modulator but no spatial modulator cannot be built"):
        OSMNConfig(base_model="lite", use_spatial_modulator=False)
    with pytest.raises(ValueError, match="mod_early_conv is for the VGG16 base models"):
        OSMNConfig(base_model="lite", mod_early_conv=True)
    with pytest.raises(ValueError, match="guide_size for lite must be at most 224"):
        OSMNConfig(base_model="lite", guide_size=256)
    for base_model in ("osvos", "lite"):
        with pytest.raises(ValueError, match="aligned_size is a masktrack option"):
            OSMNConfig(base_model=base_model, aligned_size=(865, 481))
    for bad in ((865,), (0, 481), (865.5, 481), "865x481"):
        with pytest.raises(ValueError, match=r"aligned_size must be"):
            OSMNConfig(base_model="masktrack", aligned_size=bad)
    with pytest.raises(ValueError, match="input_scale must be > 0"):
        OSMNConfig(input_scale=0)


def test_the_release_s_ignored_options_are_normalised():
    # masktrack has no spatial modulator whatever the flag; lite without its visual modulator modulates nothing.
    assert OSMNConfig(base_model="masktrack").use_spatial_modulator is False
    assert OSMNConfig(base_model="lite", use_visual_modulator=False).use_spatial_modulator is False
    # deeplab accepts --aligned_size and ignores it, as the release.
    assert OSMNConfig(base_model="deeplab", aligned_size=[865, 481]).aligned_size == (865, 481)
    assert input_scale_of(OSMNConfig(base_model="lite")) == 0.00787
    assert input_scale_of(OSMNConfig()) == 1.0 and input_scale_of(OSMNConfig(base_model="lite", input_scale=1)) == 1.0


def test_counts_per_base_model():
    assert [num_modulation_params(base_model=b) for b in BASE_MODELS] == [3840, 1920, 3840, 3840]
    assert num_modulation_params(True, 1.0, "deeplab") == 4224
    assert spatial_bias_channels(base_model="lite") == {3: 128, 5: 256, 11: 512, 13: 1024}
    assert spatial_bias_channels(base_model="deeplab") == {3: 768, 4: 1536, 5: 1536}
    assert spatial_bias_channels(base_model="masktrack") == {}
    assert spatial_bias_channels(False, 0.25, "lite") == {3: 32, 5: 64, 11: 128, 13: 256}
    model = osmn_tf.build_osmn(base_model="lite", **SMALL)
    assert model.num_modulation_params == 240 and model.visual_modulator.output.shape == (None, 240)


@pytest.mark.parametrize("variant", ["lite", pytest.param("deeplab", marks=pytest.mark.large),
                                     pytest.param("masktrack", marks=pytest.mark.large)])
def test_base_models_have_exactly_the_original_variables(variant):
    with open(DATA / "tf1_variables.json") as f:
        manifest = json.load(f)[variant]
    # Without the step and the fixed up-sampling kernel (score-up), which the port does not keep.
    expected = {v["name"]: v["shape"] for v in manifest
                if not v["name"].endswith("-up/weights") and v["name"] != "global_step"}
    model = osmn_tf.build_osmn(variant_config(variant))
    actual = {name: list(var.shape) for name, var in tf1_variable_map(model).items()}
    assert actual == expected
    assert len(model.weights) == len(actual)  # nothing in the model is left out of the mapping
    # SPEC 8.4's counts (with global_step).
    assert len(manifest) == {"lite": 311, "deeplab": 99, "masktrack": 84}[variant]


# --- shapes, inputs, quirks ---

@pytest.mark.parametrize("base_model", BASE_MODELS)
def test_inputs_outputs_and_parts_of_every_base_model(base_model):
    model = osmn_tf.build_osmn(base_model=base_model, **SMALL)
    assert [t.name for t in model.inputs] == ["guide_image", "spatial_guide", "image"]
    for name in ("visual_modulator", "segmentation_network"):
        assert model.get_layer(name) is getattr(model, name)
    assert (model.spatial_modulator is None) == (base_model == "masktrack")
    logits = model(inputs_for(model), training=False)
    assert logits.shape == (2, *SIZES[base_model], 1) and logits.dtype == "float32"
    frame = model.frame_model()
    assert [t.name for t in frame.inputs] == ["image", "spatial_guide", "modulation_params"]


@pytest.mark.parametrize("size", [(1, 1), (17, 96), (33, 47)])
@pytest.mark.parametrize("base_model", ["deeplab", "masktrack"])
def test_dilated_base_models_take_any_frame_size(base_model, size):
    model = osmn_tf.build_osmn(base_model=base_model, **SMALL)
    logits = model(inputs_for(model, size=size), training=False)
    assert logits.shape == (2, *size, 1) and np.all(np.isfinite(logits))


@pytest.mark.slow
def test_lite_takes_multiples_of_32_and_names_the_quirk_otherwise():
    model = osmn_tf.build_osmn(base_model="lite", **SMALL)
    for size in ((32, 32), (64, 160)):
        assert model(inputs_for(model, size=size), training=False).shape == (2, *size, 1)
    # 40 columns: 2 at 1/32 by MobileNet's SAME strides, 1 by the VALID pools (which would broadcast silently).
    with pytest.raises(ValueError, match=r"multiples of 32 .* got 40x64 \(WxH\)"):
        model(inputs_for(model, size=(64, 40)), training=False)
    frame_inputs = [np.zeros((1, 480, 854, 3), "float32"), np.zeros((1, 480, 854, 1), "float32"),
                    np.ones((1, model.num_modulation_params), "float32")]
    with pytest.raises(ValueError, match=r"multiples of 32 .* got 854x480"):
        model.frame_model(fold_batch_norm=True)(frame_inputs, training=False)
    # Unmodulated (no visual modulator: the release modulates nothing) any size works.
    plain = osmn_tf.build_osmn(base_model="lite", use_visual_modulator=False, **SMALL)
    assert [t.name for t in plain.inputs] == ["image"] and plain.spatial_modulator is None
    assert not any(isinstance(layer, Modulation) for layer in plain.segmentation_network.layers)
    assert plain(inputs_for(plain, size=(37, 51)), training=False).shape == (2, 37, 51, 1)


def test_a_modulation_map_of_another_size_is_an_error_not_a_broadcast():
    layer = Modulation(name="m")
    with pytest.raises(ValueError, match="m: the spatial biases are 1x2 .* features 2x2"):
        layer(np.zeros((1, 2, 2, 3), "float32"), biases=np.zeros((1, 2, 1, 3), "float32"))


@pytest.mark.slow
def test_masktrack_aligned_size_pads_as_the_release_and_crops_with_the_unpadded_offset():
    model = small_osmn(base_model="masktrack", **SMALL)
    inputs = inputs_for(model, size=(37, 51))
    same = osmn_tf.build_osmn(model.config, aligned_size=(51, 37))
    same.set_weights(model.get_weights())
    # Padding to the frame's own size changes nothing.
    np.testing.assert_array_equal(same(inputs, training=False), model(inputs, training=False))
    padded = osmn_tf.build_osmn(model.config, aligned_size=(60, 44))
    padded.set_weights(model.get_weights())
    seg = padded.segmentation_network
    probe = keras.Model(seg.inputs, seg.get_layer("aligned_image").output)
    combined = probe([inputs[2], inputs[1], inputs[0][:, :1, 0, 0]])
    assert combined.shape == (2, 44, 60, 4)
    # (44 - 37) // 2 = 3 rows on top, (60 - 51) // 2 = 4 columns on the left, mask channel first.
    np.testing.assert_array_equal(combined[:, 3:40, 4:55, 0:1], inputs[1])
    np.testing.assert_array_equal(combined[:, 3:40, 4:55, 1:], inputs[2])
    assert np.all(np.asarray(combined)[:, :3] == 0) and np.all(np.asarray(combined)[:, 40:] == 0)
    logits = padded(inputs, training=False)
    assert logits.shape == (2, 37, 51, 1)
    assert np.abs(logits - model(inputs, training=False)).max() > 1e-3  # the quirk: shifted, not equal
    with pytest.raises(ValueError, match="aligned_size is 60x44 .* the input is 61x37"):
        padded(inputs_for(padded, size=(37, 61)), training=False)


# --- custom layers ---

@pytest.mark.parametrize("in_size,out_size", [((4, 6), (8, 12)), ((13, 17), (97, 131)), ((32, 48), (64, 96)),
                                              ((9, 7), (4, 3)), ((5, 5), (5, 5))])
def test_legacy_bilinear_resize_equals_tf1_resize_bilinear(in_size, out_size):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(2, *in_size, 3)).astype("float32")
    reference = np.zeros((2, *out_size, 1), "float32")
    expected = tf.compat.v1.image.resize_bilinear(x, out_size, align_corners=False, half_pixel_centers=False)
    np.testing.assert_allclose(LegacyBilinearResize(1)(x, reference=reference), expected, rtol=1e-6, atol=1e-6)
    halved = LegacyBilinearResize(2)(x, reference=np.zeros((2, 2 * out_size[0] + 1, 2 * out_size[1] + 1, 1)))
    np.testing.assert_allclose(halved, expected, rtol=1e-6, atol=1e-6)  # H // 2, as the release's Python 2 division


def test_aligned_padding_centres_the_input():
    x = np.arange(2 * 3 * 4 * 1, dtype="float32").reshape(2, 3, 4, 1) + 1
    y = np.asarray(AlignedPadding((7, 6))(x))
    assert y.shape == (2, 6, 7, 1)
    np.testing.assert_array_equal(y[:, 1:4, 1:5], x)
    assert y.sum() == x.sum()


@pytest.mark.parametrize("layer", [LegacyBilinearResize(2, name="r"), AlignedPadding((865, 481), name="p")])
def test_new_layers_round_trip_their_config(layer):
    assert_layer_round_trips(layer)


# --- saving, folding, objects ---

SAVED = {"osvos": {}, "lite": {"base_model": "lite"}, "deeplab": {"base_model": "deeplab"},
         "masktrack_aligned": {"base_model": "masktrack", "aligned_size": (60, 40)},
         "lite_plain": {"base_model": "lite", "use_visual_modulator": False}}


@pytest.mark.slow
def test_every_base_model_reloads_from_a_keras_file_in_a_fresh_process(tmp_path):
    models = {}
    for seed, (name, options) in enumerate(SAVED.items()):
        model = osmn_tf.build_osmn(**SMALL, **options)
        randomize_weights(model, seed=seed)  # BatchNorm statistics included
        models[name] = (model, inputs_for(model))
    assert_models_reload_in_a_fresh_process(models, tmp_path)


@pytest.mark.slow
def test_keras_files_of_the_model_before_base_models_still_load(tmp_path):
    # tests/data/keras_layout_88fc13c.json records, for .keras files written at commit 88fc13c (before this
    # change), their config and where each weight lies in model.weights.h5 (Keras addresses weights by
    # layer class and order). A file is assembled from it with random values; each must land in its layer.
    record = json.loads((DATA / "keras_layout_88fc13c.json").read_text())
    rng = np.random.default_rng(0)
    for name, layout in record["files"].items():
        buffer, values = io.BytesIO(), {}
        with h5py.File(buffer, "w") as f:
            for path, weight in layout["weights"].items():
                value = rng.uniform(0.5, 1.5, weight["shape"]).astype("float32")
                f[path] = values[weight["variable"]] = value
        path = tmp_path / f"{name}.keras"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("metadata.json", json.dumps({"keras_version": record["keras_version"]}))
            z.writestr("config.json", json.dumps(layout["config"]))
            z.writestr("model.weights.h5", buffer.getvalue())
        model = osmn_tf.load_model(path)
        assert model.config.base_model == "osvos"
        loaded = {f"{network.name}/{layer.name}/{var.name}": var
                  for network in (model.visual_modulator, model.spatial_modulator, model.segmentation_network)
                  if network is not None for layer in network.layers for var in layer.weights}
        assert sorted(loaded) == sorted(values), name
        for label, variable in loaded.items():
            np.testing.assert_array_equal(np.asarray(variable), values[label], err_msg=f"{name}: {label}")


@pytest.mark.parametrize("base_model", BASE_MODELS)
@pytest.mark.slow
def test_fold_batch_norm_keeps_the_logits_of_every_base_model(base_model):
    model = osmn_tf.build_osmn(base_model=base_model, **SMALL)
    rng = np.random.default_rng(0)
    for weight in model.weights:  # BatchNorm statistics far from the identity
        if "variance" in weight.path:
            weight.assign(rng.uniform(0.2, 2.0, weight.shape).astype("float32"))
        elif "moving_mean" in weight.path or "beta" in weight.path:
            weight.assign(rng.normal(0, 0.3, weight.shape).astype("float32"))
    inputs = inputs_for(model)
    logits = np.asarray(model(inputs, training=False))
    folded = osmn_tf.fold_batch_norm(model)
    per_frame = [n for n in (folded.spatial_modulator, folded.segmentation_network) if n is not None]
    if base_model in ("osvos", "deeplab", "lite"):
        assert folded is not model and folded.batch_norm_folded
        assert not any(isinstance(layer, keras.layers.BatchNormalization) for n in per_frame for layer in n.layers)
    else:
        assert folded is model  # masktrack: nothing per frame to fold
    tolerance = 1e-4 * np.abs(logits).max()
    np.testing.assert_allclose(folded(inputs, training=False), logits, rtol=1e-4, atol=tolerance)
    params = np.asarray(model.visual_modulator(inputs[0], training=False))
    frame_inputs = [inputs[2], inputs[1], params]
    np.testing.assert_allclose(model.frame_model(fold_batch_norm=True)(frame_inputs, training=False), logits,
                               rtol=1e-4, atol=tolerance)
    if base_model == "lite":
        # The visual modulator, run once per object, keeps its BatchNorms (they are trained with it).
        assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in folded.visual_modulator.layers)


@pytest.mark.parametrize("base_model", ["lite", "deeplab", "masktrack"])
@pytest.mark.slow
def test_one_frame_shared_by_objects_equals_one_copy_per_object(base_model):
    model = small_osmn(base_model=base_model, **SMALL)
    frame_model = model.frame_model()
    rng = np.random.default_rng(0)
    height, width = SIZES[base_model]
    scale = input_scale_of(model.config)
    values = {"image": rng.normal(0, 50 * scale, (1, height, width, 3)),
              "spatial_guide": rng.uniform(0, 1, (3, height, width, 1)),
              "modulation_params": rng.normal(1, 0.5, (3, model.num_modulation_params))}
    shared = [values[t.name].astype("float32") for t in frame_model.inputs]
    copies = [np.repeat(v, 3, 0) if t.name == "image" else v for t, v in zip(frame_model.inputs, shared)]
    together = np.asarray(frame_model(shared, training=False))
    np.testing.assert_allclose(together, frame_model(copies, training=False), rtol=1e-5, atol=1e-5)
    assert together.shape == (3, height, width, 1) and np.abs(together[0] - together[1]).max() > 1e-3
    # lite and deeplab compute the layers before the first modulation once (masktrack's first layer sees the guide).
    broadcasts = [layer.name for layer in model.segmentation_network.layers if layer.name.endswith("_to_objects")]
    assert broadcasts == {"lite": ["Conv2d_3_pointwise_to_objects"], "deeplab": ["conv3_1_to_objects"],
                          "masktrack": ["image_to_objects"]}[base_model]


# --- preprocessing of the base models, against the original's (exact) ---

def test_lite_preprocessing_scales_frame_and_visual_guide_as_the_original():
    f = base_model_fixture("lite")
    scale = input_scale_of(OSMNConfig(base_model="lite"))
    np.testing.assert_array_equal(preprocess_frame(f["raw_image"], (192, 128), scale), f["image"][0])
    np.testing.assert_array_equal(visual_guide(f["raw_image"], f["raw_mask"], scale=scale), f["guide_image"][0])
    np.testing.assert_array_equal(spatial_guide(resize_mask(f["raw_mask"], (192, 128))), f["spatial_guide"][0])


def test_masktrack_original_mask_is_the_releases_dilated_mask_times_255():
    f = base_model_fixture("masktrack_origmask_aligned")
    guide = dilated_mask_guide(resize_mask(f["raw_mask"], (131, 97)))
    np.testing.assert_array_equal(guide, f["spatial_guide"][0])
    assert set(np.unique(guide)) == {0.0, 255.0}
    # A single pixel grows into the disk of radius 5: 81 pixels.
    point = np.zeros((15, 15), bool)
    point[7, 7] = True
    assert dilated_mask_guide(point).sum() == 81 * 255
