"""tools/benchmark.py: a quick run of every measurement, and the outputs it writes."""
import json

import numpy as np

from conftest import run_tool


def test_quick_benchmark_runs_every_measurement_and_writes_json_and_a_chart(tmp_path):
    code, message = run_tool("benchmark", "--quick", "--output", tmp_path)
    assert code == 0, message
    results = json.loads((tmp_path / "benchmark.json").read_text())
    for key in ("modulation_ratio", "flops_efficiency", "objects_ratio_shared", "io_ratio", "peak_rss_mb",
                "time_to_first_mask_seconds", "finetune", "precision", "stream", "xla", "cpu", "auto_precision"):
        assert key in results, key
    precisions = ("float32", "mixed_bfloat16", "mixed_float16")
    per_precision = {f"{p}/{row}" for p in precisions for row in ("io_ratio", "flops_efficiency")}
    assert set(results["targets"]) >= {"modulation_ratio", "objects_ratio_shared", "no_retracing",
                                       "objects_identical", *per_precision}
    # What holds at any size: one trace for every frame size, identical masks when objects share layers.
    assert results["stream"]["traces"] == 1
    assert all(o["masks_identical"] for o in results["objects"].values())
    # The INT8 network (the int8 extra, which the test extra installs) is timed beside the precisions.
    assert set(results["precision"]) == {*precisions, "int8"}
    assert results["precision"]["int8"]["raw_conv_speedup"] is None and "int8/io_ratio" in results["targets"]
    # Each precision's ratios are those of its own numbers; float32 is the reference of the speed-ups.
    for name, row in results["precision"].items():
        np.testing.assert_allclose(row["io_ratio"], row["end_to_end_frames_per_second"] * row["seconds_1_objects"])
        np.testing.assert_allclose(row["speedup"], results["precision"]["float32"]["seconds_1_objects"]
                                   / row["seconds_1_objects"])
        if name != "int8":
            np.testing.assert_allclose(row["speedup_of_raw"], row["speedup"] / row["raw_conv_speedup"])
    assert results["precision"]["float32"]["mask_agreement"] == 1.0
    assert results["io_ratio"] == results["precision"]["float32"]["io_ratio"]
    # The fine-tuning comparison is the paper's: 1000 steps plus 69 bare-FCN frames vs one encoding plus 69 OSMN frames.
    finetune, frame = results["finetune"], results["per_frame_seconds"]
    np.testing.assert_allclose(finetune["finetune_video_seconds"], 1000 * finetune["step_seconds"] + 69 * frame["fcn"])
    np.testing.assert_allclose(finetune["osmn_video_seconds"], finetune["encode_seconds"] + 69 * frame["osmn"])
    np.testing.assert_allclose(finetune["speedup"], finetune["finetune_video_seconds"] / finetune["osmn_video_seconds"])
    assert finetune["speedup"] > 5  # a thousand training steps cost far more than one encoding
    assert (tmp_path / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_name_the_flag(tmp_path, capsys):
    code, _ = run_tool("benchmark", "--quick", "--output", tmp_path, "--frame-size", "12by5")
    assert code != 0 and "--frame-size" in capsys.readouterr().err
