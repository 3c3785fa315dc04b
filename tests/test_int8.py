"""The INT8 per-frame network (the `int8` extra, OpenVINO + NNCF): parity with float32, saving, the tools.

These tests need the extra (`pip install -e ".[int8]"`, part of `.[test]`);
without it they fail with the import error, except the missing-extra tests,
which block the import themselves.
"""
import sys

import numpy as np
import pytest
from conftest import run_tool, synthetic_video, write_frames

SIZE = (80, 60)
FRAMES = 8
# Per-frame fraction of pixels whose mask agrees with float32, and mean |probability difference|.
# Measured: 0.985..0.992 and 0.008..0.014. A network that lost its weights, mixed its inputs up or
# saturates (bad calibration ranges) is far outside: all background alone agrees on ~0.73 of this video.
MIN_AGREEMENT = 0.97
MAX_MEAN_DIFFERENCE = 0.03


@pytest.fixture(scope="module")
def video():
    return synthetic_video(FRAMES, SIZE)


@pytest.fixture(scope="module")
def int8_network(small_model, video):
    from osmn_tf.quantization import calibration_samples, quantize

    frames, first = video
    samples = calibration_samples(small_model, [(iter(frames), first)], SIZE, FRAMES)
    return quantize(small_model, samples, SIZE)


def _probabilities(model, video, frame_network=None):
    from osmn_tf.inference.segmenter import VideoSegmenter

    frames, first = video
    segmenter = VideoSegmenter(model, SIZE, frame_network=frame_network)
    return [r.probabilities for r in segmenter.track(frames, first)][1:]


@pytest.mark.slow
def test_int8_masks_agree_with_float32(small_model, video, int8_network):
    expected = _probabilities(small_model, video)
    got = _probabilities(small_model, video, int8_network)
    assert len(got) == FRAMES - 1
    for t, (e, g) in enumerate(zip(expected, got), start=1):
        assert g.shape == e.shape
        agreement = np.mean((g > 0.5) == (e > 0.5))
        assert agreement >= MIN_AGREEMENT, f"frame {t}: masks agree on {agreement:.4f} of the pixels"
        assert np.mean(np.abs(g - e)) <= MAX_MEAN_DIFFERENCE, f"frame {t}"
        # The bound is not met by a trivial output on this video.
        assert np.mean((e > 0.5) == False) < MIN_AGREEMENT  # noqa: E712


@pytest.mark.slow
def test_int8_network_is_quantized(int8_network):
    # Convolutions run in INT8: NNCF put FakeQuantize nodes in front of them, none on the modulation.
    types = [op.get_type_name() for op in int8_network.ov_model.get_ops()]
    assert types.count("FakeQuantize") >= 10
    multiplies = [op for op in int8_network.ov_model.get_ops() if op.get_type_name() == "Multiply"]
    for op in multiplies:
        for value in op.inputs():
            assert value.get_source_output().get_node().get_type_name() != "FakeQuantize"


def test_save_and_load(small_model, int8_network, video, tmp_path):
    from osmn_tf.quantization import Int8FrameNetwork
    from osmn_tf.quantization.calibration import random_samples

    path = tmp_path / "model.int8"
    int8_network.save(path)
    loaded = Int8FrameNetwork.load(path)
    assert loaded.working_size == SIZE
    sample = random_samples(small_model.frame_model(fold_batch_norm=True), SIZE, 1)[0]
    np.testing.assert_allclose(loaded(sample), int8_network(sample), atol=1e-5)
    loaded.check_model(small_model)
    assert not list(tmp_path.glob(".*")), "a temporary folder was left behind"


def test_refuses_another_model_and_size(small_model, int8_network):
    import osmn_tf
    from osmn_tf.inference.segmenter import VideoSegmenter

    other = osmn_tf.build_osmn(width=0.125)
    with pytest.raises(ValueError, match="not the model this INT8 network was quantized from"):
        int8_network.check_model(other)
    with pytest.raises(ValueError, match="working size 80x60"):
        VideoSegmenter(small_model, (64, 48), frame_network=int8_network)


def test_load_and_save_errors(tmp_path, int8_network):
    from osmn_tf.quantization import Int8FrameNetwork
    from osmn_tf.utils.outputs import OutputError

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(FileNotFoundError, match="--int8-model .*notes: not an INT8 network folder"):
        Int8FrameNetwork.load(tmp_path / "notes")
    with pytest.raises(OutputError, match="not an INT8 network"):
        int8_network.save(tmp_path / "notes")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def _write_video(folder, video):
    from osmn_tf.data.davis import write_mask

    frames, first = video
    write_frames(folder / "frames", frames)
    write_mask(folder / "first.png", first)
    return folder / "frames", folder / "first.png"


@pytest.mark.slow
def test_tools_quantize_then_segment(small_model, small_weights, int8_network, video, tmp_path):
    from osmn_tf.data.davis import read_mask
    from osmn_tf.inference.segmenter import VideoSegmenter

    frames, first = _write_video(tmp_path, video)
    size = f"{SIZE[0]}x{SIZE[1]}"
    code, message = run_tool("quantize", "--weights", small_weights, "--frames", frames, "--first-mask", first,
                             "--working-size", size, "--output", tmp_path / "model.int8")
    assert code == 0, message
    code, message = run_tool("segment", "--weights", small_weights, "--frames", frames, "--first-mask", first,
                             "--working-size", size, "--output", tmp_path / "int8",
                             "--int8-model", tmp_path / "model.int8")
    assert code == 0, message
    # The same weights and calibration frames (PNG is lossless): the tools' masks are the library's INT8 masks.
    expected = [r.labels for r in VideoSegmenter(small_model, SIZE, frame_network=int8_network).track(*video)]
    for t in range(1, FRAMES):
        got = read_mask(tmp_path / "int8" / f"{t:05d}.png")
        assert np.mean(got == expected[t]) >= 0.999, f"frame {t}"

    code, message = run_tool("segment", "--weights", small_weights, "--frames", frames, "--first-mask", first,
                             "--working-size", "64x48", "--output", tmp_path / "other",
                             "--int8-model", tmp_path / "model.int8")
    assert code != 0 and "--int8-model" in message and "--working-size 80x60" in message, message


def test_missing_extra_says_which_pip_install(monkeypatch, small_model, small_weights, video, tmp_path):
    from osmn_tf.quantization import MissingExtraError, quantize

    # None in sys.modules makes `import openvino` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingExtraError, match=r'pip install -e "\.\[int8\]"'):
        quantize(small_model, [{}], SIZE)
    frames, first = _write_video(tmp_path, video)
    code, message = run_tool("quantize", "--weights", small_weights, "--frames", frames, "--first-mask", first,
                             "--working-size", "80x60", "--output", tmp_path / "model.int8")
    assert code != 0 and 'pip install -e ".[int8]"' in message, message
    assert not (tmp_path / "model.int8").exists()
    (tmp_path / "model.int8").mkdir()
    code, message = run_tool("segment", "--weights", small_weights, "--frames", frames, "--first-mask", first,
                             "--working-size", "80x60", "--output", tmp_path / "out", "--int8-model",
                             tmp_path / "model.int8")
    assert code != 0 and 'pip install -e ".[int8]"' in message, message
