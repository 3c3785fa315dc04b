"""tools/benchmark.py: a quick run of every measurement, and the outputs it writes."""
import json

from conftest import run_tool


def test_quick_benchmark_runs_every_measurement_and_writes_json_and_a_chart(tmp_path):
    code, message = run_tool("benchmark", "--quick", "--output", tmp_path)
    assert code == 0, message
    results = json.loads((tmp_path / "benchmark.json").read_text())
    for key in ("modulation_ratio", "flops_efficiency", "objects_ratio_shared", "io_ratio", "peak_rss_mb",
                "time_to_first_mask_seconds", "finetune", "precision", "stream"):
        assert key in results, key
    assert set(results["targets"]) >= {"modulation_ratio", "flops_efficiency", "objects_ratio_shared", "io_ratio",
                                       "no_retracing", "objects_identical"}
    # What holds at any size: one trace for every frame size, identical masks when objects share layers.
    assert results["stream"]["traces"] == 1
    assert all(o["masks_identical"] for o in results["objects"].values())
    assert set(results["precision"]) == {"float32", "mixed_bfloat16", "mixed_float16", "xla"}
    assert results["finetune"]["speedup"] > 1
    assert (tmp_path / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_name_the_flag(tmp_path, capsys):
    code, _ = run_tool("benchmark", "--quick", "--output", tmp_path, "--frame-size", "12by5")
    assert code != 0 and "--frame-size" in capsys.readouterr().err
