"""The network reproduces the original TF1 OSMN on its own fixture (SPEC 4, fidelity/README.md)."""
import keras
import numpy as np
import pytest

from osmn_tf.weights.checkpoints import build_osmn_from_tf1_checkpoint

pytestmark = pytest.mark.large

TOLERANCE = 1e-4  # relative max error; float32 round-off through 13 convolutions is ~1e-5

# Fixture key -> the layer of the segmentation network whose output it holds.
SEGMENTATION_PROBES = {
    "block2": "conv2_2",
    "block3": "conv3_3_modulation",
    "block4": "conv4_3_modulation",
    "block5": "conv5_3_modulation",
    "side2": "conv2_2_16",
    "side3": "conv3_3_16",
    "side4": "conv4_3_16",
    "side5": "conv5_3_16",
}


def relative_error(actual, expected, what=""):
    """max |actual - expected| / max |expected|, printed so that `pytest -rP` reports the measured values."""
    error = float(np.max(np.abs(np.asarray(actual) - expected)) / np.max(np.abs(expected)))
    print(f"relative error {what}: {error:.1e}")
    return error


@pytest.fixture(scope="module")
def full_model(tf1_checkpoint):
    return build_osmn_from_tf1_checkpoint(tf1_checkpoint("full"))


def test_visual_modulator_matches_original(full_model, fidelity_frame):
    params = full_model.get_layer("visual_modulator")(fidelity_frame["guide_image"], training=False)
    assert params.shape == (1, 3840)
    assert relative_error(params, fidelity_frame["visual_params"], "visual parameters") <= TOLERANCE


def test_spatial_modulator_matches_original(full_model, fidelity_frame):
    biases = full_model.get_layer("spatial_modulator")(fidelity_frame["spatial_guide"], training=False)
    for key, actual in zip(["sp_conv3", "sp_conv4", "sp_conv5"], biases):
        assert actual.shape == fidelity_frame[key].shape, key
        assert relative_error(actual, fidelity_frame[key], key) <= TOLERANCE, key


@pytest.mark.parametrize("key", [*SEGMENTATION_PROBES, "logits"])
def test_segmentation_network_matches_original_in_every_block(full_model, fidelity_frame, key):
    # Fed the original's own modulator outputs, so a mismatch points at this network.
    seg = full_model.get_layer("segmentation_network")
    layer = seg.get_layer(SEGMENTATION_PROBES[key]) if key in SEGMENTATION_PROBES else None
    probe = keras.Model(seg.inputs, layer.output if layer else seg.output)
    f = fidelity_frame
    actual = probe([f["image"], f["visual_params"], f["sp_conv3"], f["sp_conv4"], f["sp_conv5"]])
    assert actual.shape == f[key].shape
    assert relative_error(actual, f[key], f"{key} (original's modulator outputs)") <= TOLERANCE


def test_whole_model_and_frame_model_match_original_logits(full_model, fidelity_frame):
    f = fidelity_frame
    logits = full_model([f["guide_image"], f["spatial_guide"], f["image"]])
    assert relative_error(logits, f["logits"], "logits (whole model)") <= TOLERANCE
    # The per-frame part with precomputed visual parameters gives the same answer.
    frame_logits = full_model.frame_model()([f["image"], f["spatial_guide"], f["visual_params"]])
    assert relative_error(frame_logits, f["logits"], "logits (frame model)") <= TOLERANCE
