"""tools/benchmark.py --base-model: the base models side by side (issue 27). Numbers are printed by the
benchmark, never checked here; these tests check what is counted and that the run reports it."""
import json

import keras
import numpy as np
import pytest

from conftest import run_tool
from osmn_tf.benchmarks.base_models import BaseModelBenchmark, flops_by_layer_type, frame_flops, layer_type
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.models import build_osmn


def test_flops_are_counted_by_layer_type():
    x = keras.Input((8, 10, 4))
    a = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    b = keras.layers.Conv2D(6, 1)(a)
    c = keras.layers.Conv2D(5, 3, padding="same")(b)
    d = keras.layers.Conv2D(2, 5, strides=2, padding="same")(c)
    network = keras.Model(x, d)
    flops = flops_by_layer_type(network, [np.zeros((2, 8, 10, 4), np.float32)])
    positions = 2 * 8 * 10
    assert flops == {"depthwise": 2 * positions * 9 * 4, "pointwise": 2 * positions * 4 * 6,
                     "3x3": 2 * positions * 9 * 6 * 5, "other": 2 * (2 * 4 * 5) * 25 * 5 * 2}
    assert [layer_type(layer) for layer in network.layers] == [None, "depthwise", "pointwise", "3x3", "other"]


@pytest.mark.slow
def test_lite_frame_flops_by_layer_type_and_a_fraction_of_vgg16s():
    size = (96, 64)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    masks = np.zeros((1, size[1], size[0]), bool)
    masks[0, 10:30, 20:50] = True
    flops = {}
    for base_model in ("osvos", "lite"):
        model = build_osmn(width=0.25, base_model=base_model)
        flops[base_model] = frame_flops(model, VideoSegmenter(model, size, pad=base_model == "lite"), frame, masks)
    lite, osvos = flops["lite"], flops["osvos"]
    assert lite["depthwise"] > 0 and osvos["depthwise"] == 0
    # lite's 3x3 convolutions, by hand: Conv2d_0 (3 -> 8, stride 2) and the 16-channel side outputs
    # conv3_16 .. conv13_16 on 32, 64, 128, 256 channels at strides 4, 8, 16, 32 of the 96x64 frame.
    positions = {2: 48 * 32, 4: 24 * 16, 8: 12 * 8, 16: 6 * 4, 32: 3 * 2}
    assert lite["3x3"] == 2 * 9 * (positions[2] * 3 * 8 + positions[4] * 32 * 16 + positions[8] * 64 * 16
                                   + positions[16] * 128 * 16 + positions[32] * 256 * 16)
    assert lite["pointwise"] > 5 * lite["depthwise"]
    assert sum(lite.values()) < 0.1 * sum(osvos.values())


def test_config_refuses_unknown_base_models_and_precisions_and_puts_float32_first():
    with pytest.raises(ValueError, match="base_models"):
        BaseModelBenchmark(base_models=("vgg19",))
    with pytest.raises(ValueError, match="precisions"):
        BaseModelBenchmark(precisions=("int4",))
    assert BaseModelBenchmark(precisions=("int8",)).precisions == ("float32", "int8")


@pytest.mark.slow
def test_tool_compares_base_models_and_writes_json(tmp_path, capsys):
    code, message = run_tool("benchmark", "--quick", "--base-model", "osvos", "lite", "--output", tmp_path)
    assert code == 0, message
    results = json.loads((tmp_path / "base_models.json").read_text())
    assert sorted(results["rows"]) == ["lite/float32", "osvos/float32"]
    row = results["rows"]["lite/float32"]
    for key in ("network_seconds_1", "network_seconds_3", "end_to_end_seconds_1", "end_to_end_seconds_3",
                "gflops_per_second_1", "reference_efficiency_1"):
        assert row[key] > 0, key
    assert row["network_size"] == [96, 64]  # 80x60 padded to multiples of 32
    assert set(results["reference_gflops_per_second"]["float32"]) == {"depthwise", "pointwise", "3x3"}
    assert results["ratio_to_osvos"]["lite/float32"]["end_to_end_seconds_1"] > 0
    out = capsys.readouterr().out
    assert results["cpu"] in out and "lite/float32 / osvos" in out


def test_tool_refuses_full_run_options_with_base_model(tmp_path, capsys):
    code, _ = run_tool("benchmark", "--base-model", "lite", "--no-xla", "--output", tmp_path)
    assert code == 2 and "--no-xla" in capsys.readouterr().err
    code, _ = run_tool("benchmark", "--precisions", "int8", "--output", tmp_path)
    assert code == 2 and "--precisions" in capsys.readouterr().err
