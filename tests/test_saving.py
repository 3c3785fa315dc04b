"""`.keras` round trip in a fresh process, with no extra arguments."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import osmn_tf
from osmn_tf.weights.checkpoints import variant_config

from conftest import randomize_weights
from test_model import small_inputs


@pytest.mark.parametrize("variant", ["full", "no_visual", "mod_early_conv"])
def test_keras_file_reloads_in_a_fresh_process_with_the_same_outputs(tmp_path, variant):
    model = osmn_tf.build_osmn(variant_config(variant, width=0.125))
    # Non-default values everywhere (BatchNorm statistics and fc8 included), so a
    # weight or a config field lost on the way would change the outputs.
    randomize_weights(model)
    inputs = small_inputs(model)
    expected = model(inputs, training=False).numpy()
    path = tmp_path / "m.keras"
    model.save(path)
    np.savez(tmp_path / "inputs.npz", *inputs)

    script = textwrap.dedent(
        f"""
        import keras, numpy as np
        import osmn_tf  # registers the layers
        model = keras.models.load_model({str(path)!r})
        assert type(model).__name__ == "OSMN", type(model)
        data = np.load({str(tmp_path / "inputs.npz")!r})
        inputs = [data[f"arr_{{i}}"] for i in range(len(data.files))]
        np.save({str(tmp_path / "out.npy")!r}, model(inputs, training=False).numpy())
        print(model.get_config())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
