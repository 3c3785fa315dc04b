"""The INT8 routes of tools/benchmark_int8.py write their files whole: a failed build keeps the previous files.

Needs the int8 extra (OpenVINO, NNCF) and LiteRT, as tests/test_int8.py.
"""
import numpy as np
import pytest

from osmn_tf.quantization import routes

SIZE = (32, 24)


@pytest.fixture(scope="module")
def frame_model(small_model):
    return small_model.frame_model(fold_batch_norm=True)


@pytest.fixture(scope="module")
def samples(frame_model):
    from osmn_tf.quantization.calibration import random_samples

    return random_samples(frame_model, SIZE, 2)


@pytest.mark.slow
def test_a_failed_litert_build_leaves_the_previous_files_whole(frame_model, samples, tmp_path, monkeypatch):
    for name in ("litert.f32.tflite", "litert.int8.tflite"):
        (tmp_path / name).write_bytes(b"previous build")

    def fails(*args):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(routes, "litert_model_bytes", fails)
    with pytest.raises(RuntimeError, match="conversion failed"):
        routes.build_route("litert", frame_model, SIZE, samples, tmp_path)
    for name in ("litert.f32.tflite", "litert.int8.tflite"):
        assert (tmp_path / name).read_bytes() == b"previous build", name  # not truncated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame_saved_model", "litert.f32.tflite",
                                                         "litert.int8.tflite"]


@pytest.mark.slow
def test_the_openvino_route_writes_each_model_as_its_xml_and_bin(frame_model, samples, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    float_path, int8_path = routes.build_route("openvino", frame_model, SIZE, samples, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frame_saved_model", "notes.txt", "openvino.f32.bin", "openvino.f32.xml", "openvino.int8.bin",
        "openvino.int8.xml"]  # nothing hidden left behind
    sample = samples[0]
    expected = frame_model([sample[t.name] for t in frame_model.inputs], training=False).numpy()
    np.testing.assert_allclose(routes.load_runner("openvino", float_path)(sample), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())
    assert routes.load_runner("openvino", int8_path)(sample).shape == expected.shape
