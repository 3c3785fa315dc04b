"""tools/export.py: outputs that are not folders, files it did not write, and exports that do not finish."""
import os
import subprocess
import sys

import pytest

from conftest import run_tool

WORKING = ["--working-size", "32x24"]
HAND_WRITTEN = 'model_config_list { config { name: "osmn" base_path: "/srv/osmn" model_platform: "tensorflow" ' \
               'model_version_policy { specific { versions: 1 versions: 2 } } } }\n'


def export(weights, output, *options):
    return run_tool("export", "--weights", weights, "--output", output, *WORKING, "--no-warmup", *options)


def test_an_output_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "a_file").write_text("mine")
    code, _ = run_tool("export", "--weights", "unused.keras", "--output", tmp_path / "a_file")
    assert code == 2
    assert f"error: --output {tmp_path / 'a_file'}: exists and is not a folder" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text() == "mine"


@pytest.mark.parametrize("name", ["models.config", "batching_parameters.txt"])
def test_server_config_files_are_not_replaced_without_overwrite(name, small_weights, tmp_path):
    base = tmp_path / "models" / "osmn"
    base.mkdir(parents=True)
    (base / name).write_text(HAND_WRITTEN)
    code, message = export(small_weights, base / "3", "--server-config")
    assert (code, message) == (1, f"error: --server-config {base / name}: exists (use --overwrite to replace it)")
    assert (base / name).read_text() == HAND_WRITTEN
    assert sorted(p.name for p in base.iterdir()) == [name]  # refused before any work: no version 3


def test_an_existing_tflite_file_is_not_replaced_without_overwrite(small_weights, tmp_path):
    (tmp_path / "osmn.tflite").write_bytes(b"mine")
    code, message = export(small_weights, tmp_path / "osmn" / "1", "--tflite", tmp_path / "osmn.tflite")
    assert (code, message) == (1, f"error: --tflite {tmp_path / 'osmn.tflite'}: exists (use --overwrite to "
                                  "replace it)")
    assert (tmp_path / "osmn.tflite").read_bytes() == b"mine" and not (tmp_path / "osmn").exists()


def test_existing_onnx_files_are_not_replaced_without_overwrite(small_weights, tmp_path):
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "segment.onnx").write_bytes(b"mine")
    code, message = export(small_weights, tmp_path / "osmn" / "1", "--onnx", tmp_path / "onnx")
    assert (code, message) == (1, f"error: --onnx {tmp_path / 'onnx' / 'segment.onnx'}: exists (use --overwrite to "
                                  "replace it)")
    assert (tmp_path / "onnx" / "segment.onnx").read_bytes() == b"mine"


def test_the_weights_are_never_an_output(small_weights, tmp_path):
    import shutil

    weights = shutil.copy(small_weights, tmp_path / "small.keras")
    before = (tmp_path / "small.keras").read_bytes()
    code, message = export(weights, tmp_path / "osmn" / "1", "--tflite", weights, "--overwrite")
    assert (code, message) == (1, f"error: --tflite {weights}: is the input --weights")
    assert (tmp_path / "small.keras").read_bytes() == before


@pytest.mark.slow
def test_overwrite_replaces_the_server_config_and_the_tflite_file(small_weights, tmp_path):
    base = tmp_path / "models" / "osmn"
    base.mkdir(parents=True)
    (base / "models.config").write_text(HAND_WRITTEN)
    (tmp_path / "osmn.tflite").write_bytes(b"mine")
    code, message = export(small_weights, base / "3", "--server-config", "--tflite", tmp_path / "osmn.tflite",
                           "--overwrite")
    assert code == 0, message
    assert "versions: 3" in (base / "models.config").read_text()
    assert (tmp_path / "osmn.tflite").read_bytes()[4:8] == b"TFL3"  # a LiteRT flatbuffer
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary left


@pytest.mark.slow
def test_an_export_that_fails_midway_leaves_no_version_and_can_be_rerun(small_weights, tmp_path, monkeypatch):
    from osmn_tf.serving import warmup

    def killed(*args):
        raise RuntimeError("killed while writing the warm-up file")

    base = tmp_path / "models" / "osmn"
    monkeypatch.setattr(warmup, "write_warmup", killed)
    with pytest.raises(RuntimeError, match="killed"):
        run_tool("export", "--weights", small_weights, "--output", base / "1", *WORKING)
    # TF Serving would load a version folder without its warm-up file.
    assert not (base / "1").exists() and not (base / "temp-1").exists()
    monkeypatch.undo()
    code, message = run_tool("export", "--weights", small_weights, "--output", base / "1", *WORKING)
    assert code == 0, message
    assert (base / "1" / "assets.extra" / "tf_serving_warmup_requests").is_file()
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert not [p for p in (base / "1").rglob("*pid*")]


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_the_leftover_of_a_killed_export_is_removed_by_the_next_one(small_weights, tmp_path, capsys):
    base = tmp_path / "osmn"
    leftover = base / "temp-1"
    (leftover / "variables").mkdir(parents=True)
    (leftover / "saved_model.pb").write_bytes(b"half")
    (leftover / ".osmn-export.pid").write_text(f"{dead_pid()}\n")
    code, message = export(small_weights, base / "1")
    assert code == 0, message
    assert f"removed {leftover}, the leftover of an export that did not finish" in capsys.readouterr().out
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert (base / "1" / "saved_model.pb").read_bytes() != b"half"


def test_a_running_export_of_the_same_version_is_left_alone(small_weights, tmp_path):
    base = tmp_path / "osmn"
    (base / "temp-1").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (base / "temp-1" / ".osmn-export.pid").write_text(f"{other.pid}\n")
        code, message = export(small_weights, base / "1")
    finally:
        other.kill()
        other.wait()
    assert (code, message) == (1, f"error: --output {base / '1'}: another export (process {other.pid}) is writing "
                                  f"it in {base / 'temp-1'}; wait for it to end")
    assert os.listdir(base) == ["temp-1"]


def test_a_temp_folder_not_written_by_an_export_is_left_alone(small_weights, tmp_path):
    base = tmp_path / "osmn"
    (base / "temp-1").mkdir(parents=True)
    (base / "temp-1" / "notes.txt").write_text("mine")
    code, message = export(small_weights, base / "1")
    assert (code, message) == (1, f"error: --output {base / '1'}: {base / 'temp-1'} exists and is not an unfinished "
                                  "export of tools/export.py (.osmn-export.pid missing); move it away or export "
                                  "another version")
    assert os.listdir(base) == ["temp-1"] and (base / "temp-1" / "notes.txt").read_text() == "mine"
