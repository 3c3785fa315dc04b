"""TF1 checkpoints and tools/convert_checkpoint.py: a damaged or foreign checkpoint is named, the output is safe."""
import os
import stat

import numpy as np
import pytest
import tensorflow as tf

import osmn_tf
from osmn_tf.weights import checkpoints
from osmn_tf.weights.checkpoints import CheckpointError

from conftest import run_tool


def save_tf1(prefix, variables):
    """Writes `{name: array}` as a TF1 (V2-format) checkpoint with exactly these names."""
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[n]) for n in names])
    return str(prefix)


@pytest.fixture(scope="module")
def tiny_variables():
    model = osmn_tf.build_osmn(width=0.125)
    return {name: variable.numpy() for name, variable in checkpoints.tf1_variable_map(model).items()}


def test_a_small_tf1_checkpoint_loads(tmp_path, tiny_variables):
    prefix = save_tf1(tmp_path / "osmn.ckpt", tiny_variables)
    model = checkpoints.build_osmn_from_tf1_checkpoint(prefix)
    assert model.config.width == 0.125
    kernel = model.segmentation_network.get_layer("conv1_1").kernel.numpy()
    np.testing.assert_array_equal(kernel, tiny_variables["osmn/seg/conv1/conv1_1/weights"])


def test_a_truncated_data_file_is_named(tmp_path, tiny_variables):
    prefix = save_tf1(tmp_path / "osmn.ckpt", tiny_variables)
    data = next(tmp_path.glob("osmn.ckpt.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    model = osmn_tf.build_osmn(width=0.125)
    with pytest.raises(CheckpointError, match=rf"^{prefix}: damaged checkpoint: cannot read osmn/\S+ \("
                                              rf"IndexError: Read less bytes than requested\); is {prefix}.data-\* "
                                              r"complete\?$"):
        checkpoints.load_tf1_checkpoint(model, prefix)
    code, message = run_tool("convert_checkpoint", prefix, tmp_path / "out.keras")
    assert code != 0 and message.startswith(f"error: {prefix}: damaged checkpoint: cannot read ")
    assert not (tmp_path / "out.keras").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_segment_reports_a_damaged_tf1_checkpoint_by_name(tmp_path, tiny_variables):
    from osmn_tf.data.davis import write_mask
    from PIL import Image

    prefix = save_tf1(tmp_path / "osmn.ckpt", tiny_variables)
    data = next(tmp_path.glob("osmn.ckpt.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    (tmp_path / "frames").mkdir()
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(tmp_path / "frames/00000.png")
    mask = np.zeros((48, 64), np.uint8)
    mask[10:20, 10:20] = 1
    write_mask(tmp_path / "m.png", mask)
    code, message = run_tool("segment", "--weights", prefix, "--frames", tmp_path / "frames", "--first-mask",
                             tmp_path / "m.png", "--output", tmp_path / "out")
    assert code != 0 and message.startswith(f"error: {prefix}: damaged checkpoint: cannot read "), message
    assert not (tmp_path / "out").exists()


def test_a_conv1_1_of_the_wrong_size_is_named_not_the_width_misdetected(tmp_path, tiny_variables):
    broken = dict(tiny_variables)
    broken["osmn/seg/conv1/conv1_1/weights"] = np.zeros((3, 3, 3, 60), np.float32)
    broken["osmn/seg/conv1/conv1_1/biases"] = np.zeros((60,), np.float32)
    prefix = save_tf1(tmp_path / "osmn.ckpt", broken)
    with pytest.raises(CheckpointError) as error:
        checkpoints.config_from_tf1_checkpoint(prefix)
    assert str(error.value) == (f"{prefix}: the other convolutions are of width 0.125, but "
                                "osmn/seg/conv1/conv1_1/weights has 60 output channels (width 0.125 needs 8)")


def test_a_conv1_1_of_the_wrong_input_channels_is_named(tmp_path, tiny_variables):
    broken = dict(tiny_variables)
    broken["osmn/seg/conv1/conv1_1/weights"] = np.zeros((3, 3, 4, 8), np.float32)
    prefix = save_tf1(tmp_path / "osmn.ckpt", broken)
    code, message = run_tool("convert_checkpoint", prefix, tmp_path / "out.keras")
    assert code != 0
    assert message == (f"error: {prefix}: osmn/seg/conv1/conv1_1/weights has shape [3, 3, 4, 8], but the first "
                       "convolution takes the 3 channels of a BGR frame ([3, 3, 3, C])")


def test_converted_keras_file_gets_the_users_umask(tmp_path, tiny_variables):
    prefix = save_tf1(tmp_path / "osmn.ckpt", tiny_variables)
    old = os.umask(0o022)
    try:
        code, message = run_tool("convert_checkpoint", prefix, tmp_path / "out.keras")
    finally:
        os.umask(old)
    assert code == 0, message
    assert stat.S_IMODE((tmp_path / "out.keras").stat().st_mode) == 0o644


def test_an_output_folder_is_refused_even_with_overwrite(tmp_path, tiny_variables):
    prefix = save_tf1(tmp_path / "osmn.ckpt", tiny_variables)
    (tmp_path / "out.keras").mkdir()
    (tmp_path / "out.keras" / "notes.txt").write_text("mine")
    code, message = run_tool("convert_checkpoint", prefix, tmp_path / "out.keras", "--overwrite")
    assert code != 0 and message == f"error: output {tmp_path / 'out.keras'} is a folder, not a .keras file"
    assert (tmp_path / "out.keras" / "notes.txt").read_text() == "mine"


def test_stale_temporaries_of_a_killed_conversion_are_removed(tmp_path, tiny_variables):
    import subprocess
    import sys

    prefix = save_tf1(tmp_path / "osmn.ckpt", tiny_variables)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.tmp-{dead.pid}-0000abcd.keras"
    stale.write_bytes(b"half")
    assert run_tool("convert_checkpoint", prefix, tmp_path / "out.keras")[0] == 0
    assert not stale.exists()


NOT_A_ZIP = "not a complete .keras archive (a .keras file is a zip archive: this one is cut short or is not one)"


@pytest.mark.parametrize("how,reason", [
    ("truncated", NOT_A_ZIP),
    ("not a zip", NOT_A_ZIP),
    ("changed", "Bad CRC-32 for file 'model.weights.h5'"),
])
def test_a_damaged_keras_file_is_named(how, reason, small_weights, tmp_path):
    data = small_weights.read_bytes()
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes({"truncated": data[: len(data) // 2], "not a zip": b"hello",
                         "changed": data[:5000] + bytes(b ^ 0xFF for b in data[5000:5100]) + data[5100:]}[how])
    expected = f"{damaged}: damaged: {reason}; save or convert it again"
    with pytest.raises(CheckpointError) as error:
        checkpoints.load_model(damaged)
    assert str(error.value) == expected
    code, message = run_tool("export", "--weights", damaged, "--output", tmp_path / "osmn" / "1")
    assert (code, message) == (1, f"error: {expected}")
    assert not (tmp_path / "osmn").exists() or not any((tmp_path / "osmn").iterdir())
