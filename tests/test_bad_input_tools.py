"""tools/benchmark.py, benchmark_data.py, benchmark_beam.py, visualize_modulation.py, make_synthetic_davis.py: what they
refuse.

Each refusal is one line naming the option or file, with a non-zero exit
(2 for an option argparse refuses, 1 otherwise), before any work is done.
"""
import pytest

from conftest import run_tool


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not ours")
    return path


def refused(capsys, name, *args):
    """(exit code, the one message line): a `SystemExit` message, or argparse's last stderr line without
    the program name (in process, argparse names pytest)."""
    code, message = run_tool(name, *args)
    if code == 2:
        message = capsys.readouterr().err.strip().splitlines()[-1].split(": ", 1)[1]
    return code, message


def test_benchmark(tmp_path, a_file, capsys):
    assert refused(capsys, "benchmark", "--quick", "--output", a_file) == \
        (1, f"error: --output {a_file}: exists and is not a folder")
    assert a_file.read_text() == "not ours"
    assert refused(capsys, "benchmark", "--output", tmp_path, "--width", "0") == \
        (2, "error: argument --width: a model width must be a positive finite number, got 0")
    assert refused(capsys, "benchmark", "--output", tmp_path, "--repeats", "0") == \
        (2, "error: argument --repeats: must be >= 1, got 0")
    code, message = refused(capsys, "benchmark", "--output", tmp_path, "--frame-size", "0x5")
    assert code == 2 and message.startswith("error: argument --frame-size: expected WxH")


def test_benchmark_data(tmp_path, a_file, capsys):
    assert refused(capsys, "benchmark_data", "--davis-root", tmp_path / "nowhere") == \
        (1, f"error: --davis-root: no such folder: {tmp_path / 'nowhere'}")
    assert refused(capsys, "benchmark_data", "--coco-annotations", tmp_path / "none.json", "--coco-images", tmp_path) \
        == (1, f"error: --coco-annotations: no such file: {tmp_path / 'none.json'}")
    assert refused(capsys, "benchmark_data", "--work-dir", a_file) == \
        (1, f"error: --work-dir {a_file}: exists and is not a folder")
    assert refused(capsys, "benchmark_data", "--batches", "0") == \
        (2, "error: argument --batches: must be >= 1, got 0")
    assert refused(capsys, "benchmark_data", "--width", "-1") == \
        (2, "error: argument --width: a model width must be a positive finite number, got -1")


def test_visualize_modulation(tmp_path, a_file, small_weights, capsys):
    assert refused(capsys, "visualize_modulation", "--weights", tmp_path / "none.keras", "--synthetic", 2,
                   "--output", tmp_path / "figs") == \
        (1, f"error: --weights: no such .keras file or TF1 checkpoint prefix: {tmp_path / 'none.keras'}")
    assert refused(capsys, "visualize_modulation", "--weights", small_weights, "--synthetic", 2, "--output", a_file) \
        == (1, f"error: --output {a_file}: exists and is not a folder")
    assert a_file.read_text() == "not ours"
    assert refused(capsys, "visualize_modulation", "--weights", a_file, "--synthetic", 2,
                   "--output", tmp_path / "figs")[0] == 1
    assert refused(capsys, "visualize_modulation", "--weights", small_weights, "--synthetic", 2,
                   "--output", tmp_path / "figs", "--synthetic-size", "8x8") == \
        (2, "error: argument --synthetic-size: size must be at least 16x16, got '8x8'")


def test_make_synthetic_davis(tmp_path, a_file, capsys):
    assert refused(capsys, "make_synthetic_davis", "--output", a_file, "--train", 1) == \
        (1, f"error: --output {a_file}: exists and is not a folder")
    assert a_file.read_text() == "not ours"
    folder = tmp_path / "preview.png"
    folder.mkdir()
    assert refused(capsys, "make_synthetic_davis", "--preview", folder) == \
        (1, f"error: --preview {folder}: is a folder, not a file")
    assert refused(capsys, "make_synthetic_davis", "--output", tmp_path / "o", "--train", 1, "--frames", 0) == \
        (1, "error: SyntheticConfig.num_frames must be an int >= 2, got 0")
    code, message = refused(capsys, "make_synthetic_davis", "--output", tmp_path / "o", "--train", 1, "--size", "0x5")
    assert code == 2 and message.startswith("error: argument --size: expected WxH")
    assert refused(capsys, "make_synthetic_davis", "--preview", tmp_path / "p.png", "--preview-index", -1) == \
        (2, "error: --preview-index must be >= 0, got -1")
    assert not (tmp_path / "o").exists()


def test_benchmark_beam(capsys):
    assert refused(capsys, "benchmark_beam", "--workers", "0") == \
        (2, "error: argument --workers: must be >= 1, got 0")
    assert refused(capsys, "benchmark_beam", "--size", "0x5") == \
        (2, "error: argument --size: expected WxH or one side for a square, positive integers (e.g. 854x480 or 96), "
            "got '0x5'")
