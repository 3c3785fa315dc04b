"""tools/quantize.py and INT8 network folders: only its own files are replaced, a damaged one is named.

Needs the int8 extra (OpenVINO, NNCF), as tests/test_int8.py.
"""
import hashlib
import shutil

import pytest

from osmn_tf.data.davis import write_mask

from conftest import run_tool, synthetic_video, write_frames

SIZE = "64x48"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A folder of 3 PNG frames and its first mask."""
    folder = tmp_path_factory.mktemp("video")
    frames, first = synthetic_video(3)
    write_frames(folder / "frames", frames)
    write_mask(folder / "first.png", first)
    return folder / "frames", folder / "first.png"


def quantize(weights, video, output):
    return run_tool("quantize", "--weights", weights, "--frames", video[0], "--first-mask", video[1],
                    "--working-size", SIZE, "--calibration-frames", "3", "--output", output)


@pytest.fixture(scope="module")
def network(small_weights, video, tmp_path_factory):
    """An INT8 network folder tools/quantize.py wrote."""
    output = tmp_path_factory.mktemp("int8") / "model.int8"
    code, message = quantize(small_weights, video, output)
    assert code == 0, message
    return output


@pytest.mark.slow
def test_the_weights_and_notes_in_the_output_folder_are_kept(small_weights, video, network, tmp_path):
    from osmn_tf.quantization import Int8FrameNetwork
    from osmn_tf.weights.checkpoints import load_model

    output = shutil.copytree(network, tmp_path / "model.int8")
    weights = shutil.copy(small_weights, output / "small.keras")
    (output / "notes.txt").write_text("calibrated on the test video")
    kept = hashlib.sha256((output / "small.keras").read_bytes()).hexdigest()
    code, message = quantize(weights, video, output)
    assert code == 0, message
    assert hashlib.sha256((output / "small.keras").read_bytes()).hexdigest() == kept
    assert (output / "notes.txt").read_text() == "calibrated on the test video"
    Int8FrameNetwork.load(output).check_model(load_model(weights))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


@pytest.mark.parametrize("output,expected", [
    (".", "error: --output .: refusing to write results into the current directory; give a folder of their own"),
    ("a_file", "error: --output a_file: exists and is not a folder"),
])
def test_an_output_that_puts_files_at_risk_is_refused(output, expected, small_weights, video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "osmn_int8.json").write_text("{}")  # even a folder that looks like an INT8 network
    assert quantize(small_weights, video, output) == (1, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "osmn_int8.json"]


def damage(network, tmp_path, how):
    copy = shutil.copytree(network, tmp_path / "damaged.int8")
    data = (copy / "model.bin").read_bytes()
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # bytes changed in place: OpenVINO reads it without complaint
        data = data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:]
    (copy / "model.bin").write_bytes(data)
    return copy


@pytest.mark.parametrize("how", ["truncated", "changed"])
@pytest.mark.slow
def test_a_damaged_model_bin_is_named(how, network, tmp_path):
    from osmn_tf.quantization import Int8FrameNetwork

    damaged = damage(network, tmp_path, how)
    with pytest.raises(ValueError) as error:
        Int8FrameNetwork.load(damaged)
    message = str(error.value)
    assert message.startswith(f"--int8-model {damaged / 'model.bin'}: damaged") and "\n" not in message, message
    assert "quantize again" in message


@pytest.mark.slow
def test_segment_names_a_damaged_int8_model_in_one_line(small_weights, network, video, tmp_path):
    damaged = damage(network, tmp_path, "truncated")
    code, message = run_tool("segment", "--weights", small_weights, "--frames", video[0], "--first-mask", video[1],
                             "--working-size", SIZE, "--output", tmp_path / "out", "--int8-model", damaged)
    assert code == 1 and message.startswith(f"error: --int8-model {damaged / 'model.bin'}: damaged"), message
    assert "\n" not in message and "core.cpp" not in message


def test_an_interrupted_save_leaves_the_previous_network(network, tmp_path, monkeypatch):
    import openvino as ov

    from osmn_tf.quantization import Int8FrameNetwork

    output = shutil.copytree(network, tmp_path / "model.int8")
    before = {p.name: p.read_bytes() for p in output.iterdir()}
    loaded = Int8FrameNetwork.load(output)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ov, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        loaded.save(output)
    assert {p.name: p.read_bytes() for p in output.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8"]
