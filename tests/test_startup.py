"""Issue 25, item 17: tools start quietly, and a rerun that finds its results complete answers before TensorFlow loads.

Light modules import without TensorFlow; every tool has `--verbose`; without it, TensorFlow's start-up lines
(oneDNN, CUDA, absl) stay off the terminal even with `TF_CPP_MIN_LOG_LEVEL=2`.
"""
import os
import subprocess
import sys
import time

import pytest
from PIL import Image

from conftest import REPO, run_tool, synthetic_video

LIGHT_MODULES = ["osmn_tf", "osmn_tf.utils.outputs", "osmn_tf.data.davis", "osmn_tf.data.frames", "osmn_tf.data.video", "osmn_tf.data.live",
                 "osmn_tf.data.annotations", "osmn_tf.data.youtube_vos", "osmn_tf.inference.tracking", "osmn_tf.inference.jobs",
                 "osmn_tf.config", "osmn_tf.data.guides", "osmn_tf.inference.visualize", "osmn_tf.utils.errors",
                 "osmn_tf.serving.client"]
TOOLS = sorted(p.stem for p in (REPO / "tools").glob("*.py") if p.stem not in ("cli_args", "segment_run"))
# What TensorFlow prints on start-up on a CPU machine (the absl line, oneDNN, CUDA probing).
TF_CHATTER = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cuInit", "cpu_feature_guard", "I0000", "E0000")


def python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.mark.slow
def test_light_modules_import_without_tensorflow():
    result = python(f"import sys\nfor m in {LIGHT_MODULES!r}: __import__(m)\n"
                    "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("order", ["import osmn_tf\nimport keras", "import keras\nimport osmn_tf"])
@pytest.mark.slow
def test_keras_loads_saved_models_after_import_osmn_tf_in_either_order(order, small_weights):
    # `import osmn_tf` is light, yet keras.models.load_model must find its classes (osmn_tf.utils.keras_registration).
    result = python(f"{order}\nmodel = keras.models.load_model({str(small_weights)!r})\n"
                    "print(type(model).__module__, type(model).__name__)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "osmn_tf.models.osmn OSMN"


@pytest.mark.slow
@pytest.mark.parametrize("first", ["osmn_tf.layers", "osmn_tf.utils.precision", "osmn_tf.training.config"])
def test_a_module_that_loads_keras_first_imports_and_saved_models_still_load(first, small_weights):
    # Keras loads inside one of our modules that osmn_tf.models needs: the models register once it is complete,
    # not at some later import that may never come (load_model imported nothing more on CI's machine).
    result = python(f"import sys\nimport {first}\nprint('osmn_tf.models' in sys.modules)\nimport keras\n"
                    f"model = keras.models.load_model({str(small_weights)!r})\nprint(type(model).__name__)")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-2:] == ["True", "OSMN"]


@pytest.mark.slow
def test_every_public_name_imports_from_the_package():
    result = python("import osmn_tf\nfor name in osmn_tf.__all__:\n"
                    "    exec(f'from osmn_tf import {name}')\n    assert getattr(osmn_tf, name) is not None, name\n"
                    "from osmn_tf.models import OSMN\nassert osmn_tf.OSMN is OSMN\nprint('ok')")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.slow
def test_every_tool_has_verbose(tool, capsys):
    code, _ = run_tool(tool, "--help")
    assert code == 0 and "--verbose" in capsys.readouterr().out


def small_video(tmp_path):
    frames, first = synthetic_video(num_frames=3, size=(64, 48))
    (tmp_path / "frames").mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "frames" / f"{t:05d}.png")
    from osmn_tf.data.davis import write_mask

    write_mask(tmp_path / "first.png", first)
    return ["--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png", "--output", tmp_path / "out",
            "--working-size", "64x48"]


def run_segment(weights, args, *extra):
    return subprocess.run([sys.executable, str(REPO / "tools" / "segment.py"), "--weights", str(weights),
                           *map(str, args), *extra], capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


@pytest.mark.slow
def test_tensorflow_stays_quiet_unless_asked(tmp_path, small_weights):
    args = small_video(tmp_path)
    quiet = run_segment(small_weights, args)
    assert quiet.returncode == 0, quiet.stderr
    assert not [line for line in quiet.stderr.splitlines() if any(word in line for word in TF_CHATTER)], quiet.stderr
    verbose = run_segment(small_weights, args, "--overwrite", "--verbose")
    assert verbose.returncode == 0 and any(word in verbose.stderr for word in TF_CHATTER), verbose.stderr


@pytest.mark.slow
def test_an_error_after_tensorflow_loaded_is_one_line(tmp_path):
    tool = subprocess.run([sys.executable, str(REPO / "tools" / "convert_checkpoint.py"), str(tmp_path / "nowhere"),
                           str(tmp_path / "out.keras")], capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert tool.returncode == 1 and len(tool.stderr.strip().splitlines()) == 1, tool.stderr
    assert tool.stderr.startswith("error: ") and "nowhere" in tool.stderr


@pytest.mark.slow
def test_a_complete_rerun_answers_before_tensorflow_loads(tmp_path, small_weights):
    args = small_video(tmp_path)
    assert run_segment(small_weights, args).returncode == 0
    argv = ["tools/segment.py", "--weights", str(small_weights), *map(str, args)]
    tick = time.perf_counter()
    rerun = python(f"import runpy, sys\nsys.argv = {argv!r}\nsys.path.insert(0, 'tools')\n"
                   "try:\n    runpy.run_path('tools/segment.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
                   "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    seconds = time.perf_counter() - tick
    print(f"a complete rerun of tools/segment.py took {seconds:.2f} s")
    assert rerun.returncode == 0, rerun.stderr
    assert "is complete already" in rerun.stdout
    assert rerun.stdout.strip().splitlines()[-1] == "False False", rerun.stdout
    assert seconds < 2.0
