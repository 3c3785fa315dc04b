"""tools/benchmark.py: a quick run of every measurement, and the outputs it writes."""
import json
import pytest

import numpy as np

from conftest import run_tool
from osmn_tf.data.davis import read_mask


@pytest.mark.slow
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
        np.testing.assert_allclose(row["end_to_end_speedup"], row["end_to_end_frames_per_second"]
                                   / results["precision"]["float32"]["end_to_end_frames_per_second"])
        if name != "int8":
            np.testing.assert_allclose(row["speedup_of_raw"], row["speedup"] / row["raw_conv_speedup"])
            np.testing.assert_allclose(row["end_to_end_speedup_of_raw"],
                                       row["end_to_end_speedup"] / row["raw_conv_speedup"])
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


@pytest.mark.slow
def test_trained_model_parity_reads_a_training_run(tmp_path, small_weights):
    """`--trained-model`: the run's model at its evaluation size, every precision and INT8 against float32."""
    import dataclasses
    import shutil

    from osmn_tf.benchmarks import BenchmarkConfig
    from osmn_tf.benchmarks.measurements import measure_trained_parity
    from osmn_tf.data.synthetic import SyntheticConfig, write_davis

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(small_weights, run / "model.keras")
    (run / "train_config.json").write_text(json.dumps({"eval_working_size": [64, 48], "image_size": [32, 32]}))
    synthetic = SyntheticConfig(image_size=(64, 48), num_frames=5, seed=4)
    write_davis(run / "data", synthetic, 2, split="train")
    write_davis(run / "data", synthetic, 2, split="val")
    config = dataclasses.replace(BenchmarkConfig.quick(), trained_model=str(run), precisions=("mixed_bfloat16",))
    parity = measure_trained_parity(config, tmp_path / "parity", log=lambda line: None)
    assert set(parity) == {"float32", "mixed_bfloat16", "int8"}
    # Masks at the evaluation size were written for each, and compared with float32's.
    for name in parity:
        assert read_mask(tmp_path / "parity" / name / "synth-val-0000" / "00001.png").shape == (48, 64)
    assert parity["float32"]["mask_agreement"] == 1.0
    # INT8 masks agree mostly (a better quantization may reach 1.0).
    assert 0.5 < parity["int8"]["mask_agreement"] <= 1.0


def test_a_trained_model_folder_without_its_files_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    code, message = run_tool("benchmark", "--quick", "--output", tmp_path / "out", "--trained-model", tmp_path / "run")
    assert code != 0 and f"--trained-model {tmp_path / 'run'}: no model.keras there" in str(message)
