"""`.keras` round trip in a fresh process, with no extra arguments."""
import pytest

import osmn_tf
from osmn_tf.weights.checkpoints import variant_config

from conftest import assert_models_reload_in_a_fresh_process, randomize_weights
from test_model import small_inputs

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("variant", ["full", "no_visual", "mod_early_conv"])
def test_keras_file_reloads_in_a_fresh_process_with_the_same_outputs(tmp_path, variant):
    model = osmn_tf.build_osmn(variant_config(variant, width=0.125))
    # Non-default values everywhere (BatchNorm statistics and fc8 included).
    randomize_weights(model)
    assert_models_reload_in_a_fresh_process({variant: (model, small_inputs(model))}, tmp_path)
