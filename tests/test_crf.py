"""The dense CRF reproduces the release's `crf_processing` (SPEC 8.5) on its own reference cases."""
import sys

import numpy as np
import pytest

from osmn_tf.inference.dense_crf import DenseCRFConfig, dense_crf
from osmn_tf.utils.errors import MissingExtraError

from conftest import DATA, write_frames

CASES = ("chelsea_97x131_osmnfull", "chelsea_120x181_noisy")
MAX_FLIPPED = 0.005  # the target: at most 0.5% of pixels differ from the release's output


@pytest.fixture(scope="module")
def reference():
    with np.load(DATA / "crf_reference.npz") as data:
        return {key: data[key] for key in data.files}


def test_read_only_and_sliced_frames_are_accepted(reference):
    # A frame is often numpy's read-only view of a PIL image, or a crop: the CRF gives the same mask.
    case = CASES[0]
    image, label = reference[f"{case}/image"], reference[f"{case}/label"]
    expected = dense_crf(image, label)
    read_only = image.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(dense_crf(read_only, label), expected)
    padded = np.pad(image, ((0, 0), (0, 5), (0, 0)))
    np.testing.assert_array_equal(dense_crf(padded[:, :-5], label), expected)


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


# The CRF in the video loop (SPEC 8.5): per object and frame, on the frame at the working size.
WORKING = (64, 48)


def crf_run(small_model, monkeypatch, crf_merge="refined", first=None):
    from osmn_tf.inference import segmenter as segmenter_module
    from osmn_tf.inference.segmenter import VideoSegmenter

    from conftest import synthetic_video

    frames, first_mask = synthetic_video(num_frames=4, size=WORKING)
    first_mask = first_mask if first is None else first(first_mask)
    guides = []
    real = segmenter_module.spatial_guide
    monkeypatch.setattr(segmenter_module, "spatial_guide", lambda mask: guides.append(np.array(mask)) or real(mask))
    segmenter = VideoSegmenter(small_model, working_size=WORKING, crf=True, crf_merge=crf_merge)
    return frames, list(segmenter.track(frames, first_mask)), guides


@pytest.mark.slow
def test_the_refined_masks_are_the_next_frames_spatial_guides(small_model, monkeypatch):
    frames, results, guides = crf_run(small_model, monkeypatch)
    num_objects = len(results[1].object_ids)
    changed = 0
    for t in (1, 2):  # the masks of frame t are the spatial guides of frame t + 1
        thresholded = results[t].probabilities > 0.5
        refined = np.stack([dense_crf(frames[t], m) for m in thresholded]).astype(bool)
        np.testing.assert_array_equal(np.stack(guides[t * num_objects:(t + 1) * num_objects]), refined)
        changed += int((refined != thresholded).sum())
    assert changed > 0  # the CRF changed the masks, so the test could fail


@pytest.mark.slow
def test_labels_come_from_the_refined_masks_or_the_releases_merge(small_model, monkeypatch):
    from osmn_tf.inference.tracking import merge_masks, merge_probabilities

    frames, results, _ = crf_run(small_model, monkeypatch)
    _, release, _ = crf_run(small_model, monkeypatch, crf_merge="release")
    for t in (1, 2, 3):
        ids = results[t].object_ids
        refined = np.stack([dense_crf(frames[t], m) for m in results[t].probabilities > 0.5]).astype(bool)
        np.testing.assert_array_equal(results[t].labels, merge_masks(results[t].probabilities, refined, ids))
        # The release's DAVIS 2017 merge reads the probabilities before the CRF.
        np.testing.assert_array_equal(release[t].labels, merge_probabilities(release[t].probabilities, ids))
    assert any((a.labels != b.labels).any() for a, b in zip(results[1:], release[1:]))


@pytest.mark.slow
def test_with_one_object_both_merges_give_the_refined_mask(small_model, monkeypatch):
    only_first = lambda mask: np.where(mask == 1, 1, 0).astype(np.uint8)  # noqa: E731
    for merge in ("refined", "release"):
        frames, results, _ = crf_run(small_model, monkeypatch, merge, first=only_first)
        for t in (1, 2):
            refined = dense_crf(frames[t], results[t].probabilities[0] > 0.5)
            np.testing.assert_array_equal(results[t].labels, refined)


def test_merge_masks_gives_overlaps_to_the_more_probable_object():
    from osmn_tf.inference.tracking import merge_masks

    probabilities = np.array([[[0.9, 0.6, 0.2, 0.1]], [[0.8, 0.7, 0.3, 0.9]]], np.float32)
    masks = np.array([[[1, 1, 1, 0]], [[1, 1, 0, 0]]], bool)
    # Overlaps go to the more probable object; a refined mask keeps a pixel the threshold lost; no mask: background.
    np.testing.assert_array_equal(merge_masks(probabilities, masks, (3, 7)), [[3, 7, 3, 0]])


@pytest.mark.slow
def test_the_tool_refines_with_crf_and_records_it(tmp_path, small_weights):
    from PIL import Image

    from conftest import run_tool, synthetic_video

    frames, first = synthetic_video(num_frames=3, size=WORKING)
    write_frames(tmp_path / "frames", frames)
    Image.fromarray(first).save(tmp_path / "first.png")
    common = ["--weights", small_weights, "--frames", tmp_path / "frames", "--first-mask", tmp_path / "first.png",
              "--working-size", "64x48"]
    assert run_tool("segment", *common, "--output", tmp_path / "crf", "--crf") == (0, "")
    assert run_tool("segment", *common, "--output", tmp_path / "plain") == (0, "")
    crf = [np.asarray(Image.open(tmp_path / "crf" / f"{t:05d}.png")) for t in (1, 2)]
    plain = [np.asarray(Image.open(tmp_path / "plain" / f"{t:05d}.png")) for t in (1, 2)]
    assert any((a != b).any() for a, b in zip(crf, plain))
    code, message = run_tool("segment", *common, "--output", tmp_path / "crf")
    assert code == 1 and "dense CRF: refined merge there, none now" in message


def test_the_tool_names_a_missing_crf_extra_before_any_work(tmp_path, small_weights, monkeypatch):
    from conftest import run_tool

    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    code, message = run_tool("segment", "--weights", small_weights, "--frames", tmp_path, "--first-mask",
                             tmp_path / "m.png", "--output", tmp_path / "out", "--crf")
    assert code == 1 and message == ('error: --crf (the dense CRF) needs pydensecrf.densecrf (the crf extra), which '
                                     'is not installed: pip install -e ".[crf]"')
    assert not (tmp_path / "out").exists()
