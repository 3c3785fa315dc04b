"""The dense CRF reproduces the release's `crf_processing` (SPEC 8.5) on its own reference cases."""
import sys

import numpy as np
import pytest

from osmn_tf.errors import MissingExtraError
from osmn_tf.postprocessing import DenseCRFConfig, dense_crf

from conftest import DATA

CASES = ("chelsea_97x131_osmnfull", "chelsea_120x181_noisy")
MAX_FLIPPED = 0.005  # the target: at most 0.5% of pixels differ from the release's output


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA / "crf_reference.npz") as data:
        return {key: data[key] for key in data.files}


def test_the_release_parameters_are_the_defaults(reference):
    config = DenseCRFConfig()
    assert (config.gt_prob, config.iterations) == (reference["params/gt_prob"], reference["params/n_iter"])
    assert (config.gaussian_sxy, config.gaussian_compat) == (reference["params/gaussian_sxy"],
                                                             reference["params/gaussian_compat"])
    assert (config.bilateral_sxy, config.bilateral_srgb, config.bilateral_compat) == (
        reference["params/bilateral_sxy"], reference["params/bilateral_srgb"], reference["params/bilateral_compat"])


@pytest.mark.parametrize("case", CASES)
def test_masks_and_marginals_equal_the_releases(reference, case):
    image, label = reference[f"{case}/image"], reference[f"{case}/label"]
    refined, marginals = dense_crf(image, label, return_marginals=True)
    expected_q = reference[f"{case}/q"].reshape(marginals.shape)
    flipped = np.mean(refined != reference[f"{case}/out"])
    difference = np.abs(marginals - expected_q).max()
    print(f"{case}: {flipped:.4%} of pixels differ, marginals within {difference:.1e}")  # for -rP
    assert flipped <= MAX_FLIPPED
    assert difference <= 1e-4
    # The CRF does change the mask (the comparison could fail).
    assert np.mean(refined != label) > 0.05


def test_bool_masks_and_non_contiguous_images_are_accepted(reference):
    case = CASES[0]
    image, label = reference[f"{case}/image"], reference[f"{case}/label"]
    flipped_image = np.ascontiguousarray(image[:, ::-1])[:, ::-1]  # a view with negative strides
    np.testing.assert_array_equal(dense_crf(flipped_image, label.astype(bool)), reference[f"{case}/out"])


@pytest.mark.parametrize("image, mask, message", [
    (np.zeros((4, 5, 3), np.float32), np.zeros((4, 5), np.uint8), "image must be uint8"),
    (np.zeros((4, 5), np.uint8), np.zeros((4, 5), np.uint8), "image must be uint8"),
    (np.zeros((4, 5, 3), np.uint8), np.zeros((4, 6), np.uint8), "mask is 6x4 .* image is 5x4"),
    (np.zeros((4, 5, 3), np.uint8), np.full((4, 5), 2, np.uint8), "mask must hold 0 and 1"),
    (np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5, 1), np.uint8), r"mask must be \[H, W\]"),
])
def test_bad_input_is_named(image, mask, message):
    with pytest.raises(ValueError, match=message):
        dense_crf(image, mask)


@pytest.mark.parametrize("field, value", [("gt_prob", 1.0), ("gt_prob", 0.5), ("iterations", 0),
                                          ("bilateral_srgb", 0)])
def test_bad_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=f"DenseCRFConfig.{field}"):
        DenseCRFConfig(**{field: value})


def test_a_missing_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r'the dense CRF needs pydensecrf.densecrf \(the crf extra\).*'
                                                r'pip install -e "\.\[crf\]"'):
        dense_crf(np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint8))
