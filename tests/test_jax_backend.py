"""The model runs on Keras' JAX backend and gives the TensorFlow backend's logits.

The JAX side runs in a subprocess (a process has one Keras backend); the
weights travel by a `.weights.h5` file, and that process never imports
TensorFlow.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import osmn_tf
import osmn_tf.config
from conftest import REPO

TOLERANCE = 1e-4  # relative max error, as the fidelity tests allow against the original

# Builds the model from its config, reads the weights, writes the logits of `training=False`.
JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    import osmn_tf

    config_path, weights_path, inputs_path, output_path = sys.argv[1:]
    assert keras.backend.backend() == "jax", keras.backend.backend()
    with open(config_path) as f:
        model = osmn_tf.OSMN.from_config(json.load(f))
    model.load_weights(weights_path)
    with np.load(inputs_path) as data:
        inputs = {name: data[name] for name in data.files}
    logits = keras.ops.convert_to_numpy(model(inputs, training=False))
    folded = keras.ops.convert_to_numpy(osmn_tf.fold_batch_norm(model)(inputs, training=False))
    assert "tensorflow" not in sys.modules, "the JAX process imported TensorFlow"
    np.savez(output_path, logits=logits, folded=folded)
""")


def relative_error(actual, expected):
    return float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))


def jax_logits(model, inputs, folder):
    """`model`'s logits on `inputs` (a dict of arrays) computed by Keras' JAX backend, unfolded and folded."""
    (folder / "config.json").write_text(json.dumps(model.get_config()))
    model.save_weights(folder / "model.weights.h5")
    np.savez(folder / "inputs.npz", **inputs)
    script = folder / "run_jax.py"
    script.write_text(JAX_SCRIPT)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, str(script), str(folder / "config.json"), str(folder / "model.weights.h5"),
         str(folder / "inputs.npz"), str(folder / "logits.npz")],
        env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(folder / "logits.npz") as data:
        return data["logits"], data["folded"]


@pytest.mark.slow
def test_jax_backend_matches_tensorflow_on_a_small_model(tmp_path):
    from conftest import small_osmn

    model = small_osmn()
    rng = np.random.default_rng(0)
    # Odd sizes exercise SAME pooling's rounding and the up-sampling's crop.
    inputs = {"guide_image": rng.normal(0, 60, (2, 224, 224, 3)).astype("float32"),
              "spatial_guide": rng.uniform(0, 1, (2, 45, 61, 1)).astype("float32"),
              "image": rng.normal(0, 60, (2, 45, 61, 3)).astype("float32")}
    expected = np.asarray(model(inputs, training=False))
    assert expected.shape == (2, 45, 61, 1) and expected.std() > 1e-3
    logits, folded = jax_logits(model, inputs, tmp_path)
    assert relative_error(logits, expected) <= TOLERANCE
    assert relative_error(folded, expected) <= TOLERANCE


# Each base model at a frame size it takes (lite's modulated network: multiples of 32).
BASE_MODELS = {"lite": ({"base_model": "lite"}, (64, 96)), "deeplab": ({"base_model": "deeplab"}, (45, 61)),
               "masktrack": ({"base_model": "masktrack", "aligned_size": (70, 50)}, (45, 61))}


@pytest.mark.parametrize("base_model", list(BASE_MODELS))
@pytest.mark.slow
def test_jax_backend_matches_tensorflow_on_every_base_model(tmp_path, base_model):
    from conftest import small_osmn

    options, (height, width) = BASE_MODELS[base_model]
    model = small_osmn(guide_size=64, **options)
    rng = np.random.default_rng(0)
    scale = osmn_tf.config.input_scale_of(model.config)
    inputs = {"guide_image": rng.normal(0, 60 * scale, (2, 64, 64, 3)).astype("float32"),
              "spatial_guide": rng.uniform(0, 1, (2, height, width, 1)).astype("float32"),
              "image": rng.normal(0, 60 * scale, (2, height, width, 3)).astype("float32")}
    expected = np.asarray(model(inputs, training=False))
    assert expected.shape == (2, height, width, 1) and expected.std() > 1e-3
    logits, folded = jax_logits(model, inputs, tmp_path)
    assert relative_error(logits, expected) <= TOLERANCE
    assert relative_error(folded, expected) <= TOLERANCE


@pytest.mark.large
@pytest.mark.parametrize("base_model", list(BASE_MODELS))
def test_jax_backend_matches_the_original_on_every_base_models_fixture(tmp_path, tf1_checkpoint, base_model):
    from conftest import base_model_fixture

    model = osmn_tf.build_osmn_from_tf1_checkpoint(tf1_checkpoint(base_model))
    f = base_model_fixture(base_model)
    inputs = {name: f[name] for name in ("guide_image", "spatial_guide", "image")}
    logits, folded = jax_logits(model, inputs, tmp_path)
    error = relative_error(logits, f["logits"])
    folded_error = relative_error(folded, f["logits"])
    print(f"{base_model}: relative error of the JAX logits {error:.1e}, folded {folded_error:.1e}")
    assert error <= TOLERANCE and folded_error <= TOLERANCE


@pytest.mark.large
def test_jax_backend_matches_tensorflow_on_the_fidelity_frame(tmp_path, tf1_checkpoint, fidelity_frame):
    model = osmn_tf.build_osmn_from_tf1_checkpoint(tf1_checkpoint("full"))
    f = fidelity_frame
    inputs = {name: f[name] for name in ("guide_image", "spatial_guide", "image")}
    expected = np.asarray(model(inputs, training=False))
    assert relative_error(expected, f["logits"]) <= TOLERANCE
    logits, folded = jax_logits(model, inputs, tmp_path)
    assert relative_error(logits, expected) <= TOLERANCE
    assert relative_error(folded, expected) <= TOLERANCE
    assert relative_error(logits, f["logits"]) <= TOLERANCE
