"""Loading the original's TF1 checkpoints: variants, skipped variables, clear errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import osmn_tf
from osmn_tf.weights import checkpoints
from osmn_tf.weights.checkpoints import CheckpointError, load_tf1_checkpoint, tf1_variable_map, variant_config

from conftest import run_tool_process
from test_model import small_inputs

VARIANTS = ["full", "no_spatial", "no_visual", "mod_early_conv", "lite", "deeplab", "masktrack"]


def write_checkpoint(prefix, tensors):
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(tensors[n]) for n in names],
    )
    return str(prefix)


def small_checkpoint(tmp_path, config, drop=(), change=None, extra=None):
    """A checkpoint with the original's names for a small model, optionally damaged."""
    model = osmn_tf.build_osmn(config)
    rng = np.random.default_rng(0)
    tensors = {n: rng.normal(0, 0.1, v.shape).astype("float32") for n, v in tf1_variable_map(model).items()}
    tensors["global_step"] = np.array(7, "int64")
    tensors["osmn/seg/upscore-fuse/biases/Adam"] = np.zeros([1], "float32")
    tensors["beta1_power"] = np.array(0.5, "float32")
    tensors["osmn/seg/score-multi2-up/weights"] = np.zeros([4, 4, 16, 16], "float32")
    for name in drop:
        del tensors[name]
    tensors.update(change or {})
    tensors.update(extra or {})
    return write_checkpoint(tmp_path / "osmn.ckpt", tensors), tensors


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.slow
def test_small_checkpoint_loads_every_variable_and_skips_training_state(tmp_path, variant):
    config = variant_config(variant, width=0.125)
    prefix, tensors = small_checkpoint(tmp_path, config)
    assert checkpoints.config_from_tf1_checkpoint(prefix) == config
    model = osmn_tf.build_osmn(config)
    loaded = load_tf1_checkpoint(model, prefix)
    assert "global_step" not in loaded and not any("Adam" in n or "-up/" in n for n in loaded)
    for name, variable in tf1_variable_map(model).items():
        np.testing.assert_array_equal(variable.numpy(), tensors[name], err_msg=name)


@pytest.mark.parametrize("config", [
    dict(base_model="deeplab", mod_early_conv=True), dict(base_model="deeplab", use_spatial_modulator=False),
    dict(base_model="deeplab", use_visual_modulator=False), dict(base_model="masktrack", mod_early_conv=True),
    dict(base_model="masktrack", use_visual_modulator=False), dict(base_model="lite", width=0.25)])
@pytest.mark.slow
def test_every_base_models_options_are_detected_from_the_names(tmp_path, config):
    config = osmn_tf.OSMNConfig(**{"width": 0.125, **config})
    prefix, tensors = small_checkpoint(tmp_path, config)
    assert checkpoints.config_from_tf1_checkpoint(prefix) == config
    model = checkpoints.build_osmn_from_tf1_checkpoint(prefix)
    for name, variable in tf1_variable_map(model).items():
        np.testing.assert_array_equal(variable.numpy(), tensors[name], err_msg=name)


@pytest.mark.slow
def test_lite_without_visual_modulator_skips_the_spatial_modulator_the_release_builds_but_never_uses(tmp_path):
    # The release still creates osmn/modulator_sp/* there (SPEC 8.1): they load into nothing.
    config = osmn_tf.OSMNConfig(base_model="lite", width=0.125)
    full = {n: v.numpy() for n, v in tf1_variable_map(osmn_tf.build_osmn(config)).items() if "modulator_sp" in n}
    plain = osmn_tf.OSMNConfig(base_model="lite", width=0.125, use_visual_modulator=False)
    prefix, _ = small_checkpoint(tmp_path, plain, extra=full)
    detected = checkpoints.config_from_tf1_checkpoint(prefix)
    assert detected.base_model == "lite" and not detected.use_visual_modulator and not detected.use_spatial_modulator
    loaded = load_tf1_checkpoint(osmn_tf.build_osmn(detected), prefix)
    assert loaded and not any("modulator" in n for n in loaded)


def test_masktracks_first_convolution_takes_four_channels(tmp_path):
    config = variant_config("masktrack", width=0.125)
    three = {"osmn/seg/conv1/conv1_1/weights": np.zeros([3, 3, 3, 8], "f")}
    prefix, _ = small_checkpoint(tmp_path, config, change=three)
    with pytest.raises(CheckpointError, match=r"conv1_1/weights has shape \[3, 3, 3, 8\], but the first convolution "
                                              r"takes the 4 channels of the spatial guide and a BGR frame"):
        checkpoints.config_from_tf1_checkpoint(prefix)


def assert_untouched(model, before):
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.numpy(), b, err_msg=w.path)


@pytest.mark.slow
def test_shape_mismatch_names_variable_and_both_shapes_and_loads_nothing(tmp_path):
    config = variant_config("full", width=0.125)
    prefix, _ = small_checkpoint(tmp_path, config, change={"osmn/seg/conv3/conv3_2/weights": np.zeros([3, 3, 32, 7], "f")})
    model = osmn_tf.build_osmn(config)
    before = [w.numpy() for w in model.weights]
    with pytest.raises(CheckpointError) as err:
        load_tf1_checkpoint(model, prefix)
    message = str(err.value)
    assert "osmn/seg/conv3/conv3_2/weights" in message
    assert "[3, 3, 32, 32]" in message and "[3, 3, 32, 7]" in message
    assert_untouched(model, before)


@pytest.mark.slow
def test_missing_variable_is_named(tmp_path):
    config = variant_config("full", width=0.125)
    prefix, _ = small_checkpoint(tmp_path, config, drop=["osmn/modulator_sp/conv4/BatchNorm/moving_variance"])
    with pytest.raises(CheckpointError, match=r"missing variable osmn/modulator_sp/conv4/BatchNorm/moving_variance"):
        load_tf1_checkpoint(osmn_tf.build_osmn(config), prefix)


def test_wrong_variant_is_an_error_that_says_what_the_checkpoint_is(tmp_path):
    prefix, _ = small_checkpoint(tmp_path, variant_config("no_spatial", width=0.125))
    model = osmn_tf.build_osmn(variant_config("full", width=0.125))
    before = [w.numpy() for w in model.weights]
    with pytest.raises(CheckpointError, match="use_spatial_modulator=False") as err:
        load_tf1_checkpoint(model, prefix)
    assert "missing variable osmn/modulator_sp/conv3/weights" in str(err.value)
    assert_untouched(model, before)


@pytest.mark.slow
def test_unknown_variable_is_an_error(tmp_path):
    config = variant_config("full", width=0.125)
    prefix, _ = small_checkpoint(tmp_path, config, extra={"osmn/seg/extra_layer/weights": np.zeros([2], "f")})
    with pytest.raises(CheckpointError, match="unexpected variable osmn/seg/extra_layer/weights"):
        load_tf1_checkpoint(osmn_tf.build_osmn(config), prefix)


def test_bad_paths_say_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoints.load_model(tmp_path / "nothing.ckpt")
    with pytest.raises(CheckpointError, match="give the prefix"):
        checkpoints.config_from_tf1_checkpoint(str(tmp_path / "nothing.ckpt.index"))
    junk = tmp_path / "junk.ckpt"
    (tmp_path / "junk.ckpt.index").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        checkpoints.config_from_tf1_checkpoint(junk)
    other = write_checkpoint(tmp_path / "other.ckpt", {"vgg_16/conv1/conv1_1/weights": np.zeros([3], "f")})
    with pytest.raises(CheckpointError, match="not an OSMN checkpoint"):
        checkpoints.config_from_tf1_checkpoint(other)
    not_osmn = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)]).save(not_osmn)
    with pytest.raises(CheckpointError, match="not an osmn_tf.OSMN model"):
        checkpoints.load_model(not_osmn)
    (tmp_path / "broken.keras").write_bytes(b"zip? no")
    with pytest.raises(CheckpointError, match="broken.keras"):
        checkpoints.load_model(tmp_path / "broken.keras")


def assert_converts(prefix, out, variant, expected_config, size):
    """`tools/convert_checkpoint.py prefix out` writes only `out`, a model equal to the checkpoint's."""
    result = run_tool_process("convert_checkpoint", prefix, out)
    assert result.returncode == 0, result.stderr
    assert f"({variant}, width {expected_config.width})" in result.stdout
    converted = checkpoints.load_model(out)
    assert converted.config == expected_config
    direct = checkpoints.build_osmn_from_tf1_checkpoint(prefix)
    inputs = small_inputs(direct, batch=1, height=size[0], width=size[1])
    np.testing.assert_array_equal(converted(inputs, training=False), direct(inputs, training=False))
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left behind


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_convert_tool_writes_a_ready_keras_model_for_every_variant(tmp_path, variant):
    config = variant_config(variant, width=0.125)
    prefix, _ = small_checkpoint(tmp_path, config)
    (tmp_path / "out").mkdir()
    # lite's modulated network takes multiples of 32 (SPEC 8.1).
    size = (64, 96) if variant == "lite" else (33, 47)
    assert_converts(prefix, tmp_path / "out" / f"{variant}.keras", variant, config, size)


@pytest.mark.large
def test_convert_tool_converts_the_full_size_original_checkpoint(tmp_path, tf1_checkpoint):
    assert_converts(tf1_checkpoint("full"), tmp_path / "full.keras", "full", variant_config("full"), (33, 47))


@pytest.mark.slow
def test_convert_tool_errors(tmp_path):
    prefix, _ = small_checkpoint(tmp_path, variant_config("no_visual", width=0.125))
    result = run_tool_process("convert_checkpoint", prefix, tmp_path / "out.keras", "--variant", "full")
    assert result.returncode != 0
    assert "missing variable osmn/modulator/fc8/weights" in result.stderr
    assert not (tmp_path / "out.keras").exists()
    assert run_tool_process("convert_checkpoint", prefix, tmp_path / "out.h5").returncode != 0
    missing = run_tool_process("convert_checkpoint", tmp_path / "missing", tmp_path / "out.keras")
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'missing'}: not a TF1 checkpoint prefix")
    ok = run_tool_process("convert_checkpoint", prefix, tmp_path / "out.keras")
    assert ok.returncode == 0, ok.stderr
    again = run_tool_process("convert_checkpoint", prefix, tmp_path / "out.keras")
    assert again.returncode != 0 and "exists" in again.stderr


@pytest.mark.parametrize("path, imagenet", [("weights/vgg_16.ckpt", True), ("vgg16_weights_tf_dim_ordering.h5", True),
                                            ("runs/coco/model.keras", False), ("osmn/model.ckpt-300000", False)])
def test_imagenet_vgg16_files_are_told_apart_by_name(path, imagenet):
    assert checkpoints.is_imagenet_vgg16_file(path) is imagenet
