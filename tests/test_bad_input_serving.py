"""The serving signatures' input checks, run in a graph where shapes are only known when the graph runs."""
import numpy as np
import pytest
import tensorflow as tf

from osmn_tf.serving.signatures import ServingSignatures

from conftest import small_osmn


@pytest.fixture(scope="module")
def signatures():
    return ServingSignatures(small_osmn(), (64, 48))


def graph(function, *dtypes):
    """`function` traced once with inputs of unknown rank: every check runs in the graph."""
    return tf.function(function, input_signature=[tf.TensorSpec(None, d) for d in dtypes])


def test_a_rank_3_image_is_named_as_a_wrong_rank(signatures):
    # Where shapes are not checked before the graph runs (a C++ server), the rank check must come
    # first: the channel check reads a dimension a rank-3 image does not have.
    def check(image):
        with tf.control_dependencies(signatures._check_image(image, None)):
            return tf.identity(0)

    image = np.zeros((48, 64, 3), np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image must be \[N, H, W, 3\] \(a batch of images\)"):
        graph(check, tf.float32)(image)


@pytest.mark.slow
def test_a_batch_of_0_images_is_named(signatures):
    segment = tf.function(lambda image, guide, params: signatures.segment(image, guide, params), input_signature=[
        signatures.specs["image"], signatures.specs["spatial_guide"], signatures.specs["modulation_params"]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image must hold at least one image \(N > 0\)"):
        segment(np.zeros((0, 48, 64, 3), np.float32), np.zeros((0, 48, 64, 1), np.float32),
                np.zeros((0, signatures.num_params), np.float32))


@pytest.mark.slow
def test_encode_guide_raw_refuses_an_all_zero_mask(signatures):
    encode = tf.function(signatures.encode_guide_raw,
                         input_signature=[signatures.specs["frame"], signatures.specs["masks"]])
    frame = np.zeros((48, 64, 3), np.uint8)
    masks = np.zeros((2, 48, 64), np.uint8)
    masks[0, 5:10, 5:10] = 1
    with pytest.raises(tf.errors.InvalidArgumentError, match="every mask must mark its object"):
        encode(frame, masks)
    masks[1, 20:30, 20:30] = 1
    assert encode(frame, masks)["modulation_params"].shape == (2, signatures.num_params)
