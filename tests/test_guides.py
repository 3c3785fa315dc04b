"""Frame preprocessing, visual guide and spatial guide against the original release (SPEC 1-3)."""
import math

import numpy as np
import pytest
from PIL import Image

from conftest import DATA
from osmn_tf.data import frames
from osmn_tf.data import guides
from osmn_tf.data.frames import MEAN_BGR
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation

FRAME_SIZE = (131, 97)  # (W, H) the fixture's frame was resized to


@pytest.fixture(scope="module")
def chelsea():
    path = DATA / "osmn_full_chelsea_97x131.npz"
    with np.load(path) as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files if key.startswith("chelsea_97x131/")}


def _no_augment(**changes):
    """An augmentation that changes nothing unless told to."""
    return VisualGuideAugmentation(**{"crop_ratio": 0.0, "max_rotation": 0.0, "flip_prob": 0.0, **changes})


# --- the original's numbers ---------------------------------------------------

def test_preprocess_frame_matches_original(chelsea):
    image = frames.preprocess_frame(chelsea["raw_image"], FRAME_SIZE)
    assert image.dtype == np.float32 and image.shape == (97, 131, 3)
    np.testing.assert_array_equal(image, chelsea["image"][0])


def test_visual_guide_matches_original(chelsea):
    guide = guides.visual_guide(chelsea["raw_image"], chelsea["raw_mask"])
    assert guide.dtype == np.float32 and guide.shape == (224, 224, 3)
    np.testing.assert_array_equal(guide, chelsea["guide_image"][0])


def test_visual_guide_resizes_a_larger_mask_to_the_frame_first(chelsea):
    # Up-sampling by pixel repetition, then PIL nearest back to the frame's size,
    # gives the original mask again, so the guide must not change.
    big_mask = np.repeat(np.repeat(chelsea["raw_mask"], 2, axis=0), 2, axis=1)
    guide = guides.visual_guide(chelsea["raw_image"], big_mask)
    np.testing.assert_array_equal(guide, chelsea["guide_image"][0])


def test_visual_guide_accepts_label_values_and_trailing_channel(chelsea):
    mask = (chelsea["raw_mask"] * 255)[:, :, np.newaxis]
    guide = guides.visual_guide(chelsea["raw_image"], mask)
    np.testing.assert_array_equal(guide, chelsea["guide_image"][0])


def test_spatial_guide_matches_original(chelsea):
    mask = frames.resize_mask(chelsea["raw_mask"], FRAME_SIZE)
    guide = guides.spatial_guide(mask)
    expected = chelsea["spatial_guide"][0]
    assert guide.dtype == np.float32 and guide.shape == expected.shape == (97, 131, 1)
    # Exact here. Another float64 exp() may round a rare value the other way, so
    # allow one float32 ulp, but only on a few pixels: computing the scale in
    # float64 instead of the original's float32 is one ulp off on most pixels.
    np.testing.assert_allclose(guide, expected, rtol=0, atol=1.2e-7)
    assert np.count_nonzero(guide != expected) <= guide.size // 100


def test_augmentation_that_changes_nothing_reproduces_inference(chelsea):
    rng = np.random.default_rng(0)
    guide = guides.visual_guide(chelsea["raw_image"], chelsea["raw_mask"], pad_ratio=0.03,
                                augment=_no_augment(), rng=rng)
    np.testing.assert_array_equal(guide, chelsea["guide_image"][0])


def test_flip_augmentation_mirrors_the_original_guide(chelsea):
    rng = np.random.default_rng(0)
    guide = guides.visual_guide(chelsea["raw_image"], chelsea["raw_mask"], pad_ratio=0.03,
                                augment=_no_augment(flip_prob=1.0), rng=rng)
    np.testing.assert_array_equal(guide, chelsea["guide_image"][0][:, ::-1])


def test_training_default_has_no_pad(chelsea):
    # The release trained with pad 0: same box as inference, without the 3% margin.
    raw, mask = chelsea["raw_image"], chelsea["raw_mask"]
    trained = guides.visual_guide(raw, mask, augment=_no_augment(), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(trained, guides.visual_guide(raw, mask, pad_ratio=0.0))
    assert not np.array_equal(trained, chelsea["guide_image"][0])


# --- frames --------------------------------------------------------------------

def test_normalize_frame_is_bgr_minus_mean():
    rgb = np.array([[[10, 20, 30], [0, 0, 0]]], dtype=np.uint8)
    out = frames.normalize_frame(rgb)
    assert out.dtype == np.float32 and out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out[0, 0], [30 - 104, 20 - 117, 10 - 123])
    np.testing.assert_array_equal(out[0, 1], [-104, -117, -123])
    assert MEAN_BGR == (104.0, 117.0, 123.0) and frames.WORKING_SIZE == (854, 480)


def test_preprocess_frame_default_is_working_size():
    rgb = np.full((10, 20, 3), 200, dtype=np.uint8)
    out = frames.preprocess_frame(rgb)
    assert out.shape == (480, 854, 3)
    np.testing.assert_array_equal(out[0, 0], [200 - 104, 200 - 117, 200 - 123])


def test_resize_mask_keeps_values_and_dtype():
    labels = np.array([[0, 3], [7, 255]], dtype=np.uint8)
    out = frames.resize_mask(labels, (4, 4))
    np.testing.assert_array_equal(out, [[0, 0, 3, 3], [0, 0, 3, 3], [7, 7, 255, 255], [7, 7, 255, 255]])
    assert out.dtype == np.uint8
    ids = np.array([[0, 70000]], dtype=np.int64)
    np.testing.assert_array_equal(frames.resize_mask(ids, (4, 1)), [[0, 0, 70000, 70000]])
    flags = frames.resize_mask(np.array([[True, False]]), (2, 2))
    assert flags.dtype == np.bool_ and flags.tolist() == [[True, False], [True, False]]


def test_load_rgb_converts_modes(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    out = frames.load_rgb(tmp_path / "grey.png")
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, np.newaxis], 3, axis=2))

    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 0
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(frames.load_rgb(str(tmp_path / "rgba.png")), rgba[..., :3])


def test_load_rgb_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        frames.load_rgb(missing)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.png"):
        frames.load_rgb(junk)


def test_frame_functions_reject_bad_input():
    with pytest.raises(ValueError, match="rgb"):
        frames.normalize_frame(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="uint8"):
        frames.resize_frame(np.zeros((4, 4, 3), np.float32), (2, 2))
    with pytest.raises(ValueError, match="size"):
        frames.resize_frame(np.zeros((4, 4, 3), np.uint8), (2, 0))
    with pytest.raises(ValueError, match="size"):
        frames.resize_mask(np.zeros((4, 4), np.uint8), (2,))
    with pytest.raises(ValueError, match="mask"):
        frames.resize_mask(np.zeros((4, 4, 2), np.uint8), (2, 2))


# --- visual guide ------------------------------------------------------------

def test_mask_bbox_is_inclusive_and_empty_gives_whole_image():
    mask = np.zeros((10, 20), dtype=np.uint8)
    mask[3:6, 7:12] = 1
    assert guides.mask_bbox(mask) == (7, 3, 11, 5)
    assert guides.mask_bbox(np.zeros((10, 20))) == (0, 0, 20, 10)


def test_visual_guide_of_empty_mask_is_zero():
    frame = np.full((30, 40, 3), 90, dtype=np.uint8)
    guide = guides.visual_guide(frame, np.zeros((30, 40), np.uint8))
    assert guide.shape == (224, 224, 3)
    assert not guide.any()


def test_visual_guide_bbox_sup_keeps_background():
    # Uniform frame, object is the left half: with bbox_sup the whole (padded) box shows.
    frame = np.full((20, 40, 3), 90, dtype=np.uint8)
    mask = np.zeros((20, 40), np.uint8)
    mask[:, :20] = 1
    guide = guides.visual_guide(frame, mask, pad_ratio=0.0, bbox_sup=True)
    np.testing.assert_array_equal(guide[112, 112], [90 - 104, 90 - 117, 90 - 123])
    masked = guides.visual_guide(frame, mask, pad_ratio=0.0)
    # Quirk: the box stops one column short of the object's last column, so
    # every column of the crop is object.
    np.testing.assert_array_equal(masked, guide)


def test_visual_guide_pad_is_zero_outside_the_crop():
    # Object fills the frame. The crop is 99 x 99 (quirk: last row and column
    # dropped); the pad, int(0.03 * 99) = 2 px each side, is taken from the crop,
    # not the frame, so it is black on all four sides: 103 px -> 224 px, about
    # 4 guide pixels of black (then one blended column) per side.
    frame = np.full((100, 100, 3), 200, dtype=np.uint8)
    guide = guides.visual_guide(frame, np.ones((100, 100), np.uint8), bbox_sup=True)
    black = -np.asarray(MEAN_BGR, dtype=np.float32)
    inside = np.float32(200) - np.asarray(MEAN_BGR, dtype=np.float32)
    for border in (guide[:, :3], guide[:, -3:], guide[:3, :], guide[-3:, :]):
        np.testing.assert_array_equal(border, np.broadcast_to(black, border.shape))
    np.testing.assert_array_equal(guide[5:-5, 5:-5], np.broadcast_to(inside, (214, 214, 3)))
    # ... and zero once the guide is masked: the mask is padded with background.
    masked = guides.visual_guide(frame, np.ones((100, 100), np.uint8))
    assert not masked[:, :4].any() and not masked[:, -4:].any()
    assert not masked[:4].any() and not masked[-4:].any()
    np.testing.assert_array_equal(masked[5:-5, 5:-5], guide[5:-5, 5:-5])


def test_rotation_follows_opencv_convention():
    # 90 degrees counter-clockwise about (W/2, H/2) in index coordinates is
    # numpy's rot90 shifted down one row (the centre is not a pixel centre).
    array = np.arange(1, 1 + 8 * 8, dtype=np.uint8).reshape(8, 8)
    out = guides._rotate_nearest(array, 90.0)
    np.testing.assert_array_equal(out[1:], np.rot90(array)[:-1])
    assert not out[0].any()
    np.testing.assert_array_equal(guides._rotate_nearest(array, 0.0), array)


def _guide_batch(seed, augment, n=1):
    rng = np.random.default_rng(seed)
    frame = np.random.default_rng(123).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 15:45] = 1
    return [guides.visual_guide(frame, mask, augment=augment, rng=rng) for _ in range(n)]


def test_visual_guide_augmentation_is_seeded():
    augment = VisualGuideAugmentation()
    first, again, other = _guide_batch(5, augment, 3), _guide_batch(5, augment, 3), _guide_batch(6, augment, 3)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    assert not np.array_equal(first[0], first[1])  # the generator advances


def test_visual_guide_crop_jitter_stays_in_range():
    # Uniform frame, object = whole box: columns before the object's first one
    # are the left margin. Ratio r on the left gives a margin of
    # 224 * r / (1 + r_left + r_right) > 0 for r > 0, none for r <= 0; with
    # |r| <= 0.1 it is at most 224 * 0.1 / 0.9 < 25 columns.
    frame = np.full((40, 60, 3), 250, dtype=np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[5:35, 10:50] = 1
    rng = np.random.default_rng(0)
    margins = []
    for _ in range(60):
        guide = guides.visual_guide(frame, mask, augment=_no_augment(crop_ratio=0.1), rng=rng)
        margins.append(int(np.flatnonzero(guide[112].any(axis=1))[0]))
    assert max(margins) < 25 and max(margins) > 15
    # No margin when r < 1/39 (the crop is 39 px wide): P = (0.1 + 1/39) / 0.2 = 0.63
    # for U(-0.1, 0.1) (0.25 if only padding were drawn).
    assert 0.45 < np.mean(np.array(margins) == 0) < 0.8


def test_visual_guide_rotation_stays_in_range():
    # Object fills its box and pad is 0, so an unrotated guide has no zero pixel;
    # rotating by a leaves zero corners whose area grows with |a|.
    frame = np.full((40, 60, 3), 250, dtype=np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[5:35, 10:50] = 1
    ones = np.ones((224, 224), np.uint8)
    def zeros_at(angle):
        return np.count_nonzero(guides._rotate_nearest(ones, angle) == 0)
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(40):
        guide = guides.visual_guide(frame, mask, augment=_no_augment(max_rotation=10.0), rng=rng)
        counts.append(np.count_nonzero(~guide.any(axis=2)))
    assert max(counts) <= zeros_at(10.0)
    assert max(counts) > zeros_at(8.0)  # the range is used
    assert np.mean(np.array(counts) > zeros_at(1.0)) > 0.7


def test_visual_guide_rejects_bad_input():
    frame = np.zeros((10, 10, 3), np.uint8)
    mask = np.ones((10, 10), np.uint8)
    with pytest.raises(ValueError, match="frame_rgb"):
        guides.visual_guide(frame[:, :, 0], mask)
    with pytest.raises(TypeError, match="frame_rgb"):
        guides.visual_guide(frame.astype(np.float32), mask)
    with pytest.raises(ValueError, match="mask"):
        guides.visual_guide(frame, np.ones((10, 10, 3), np.uint8))
    with pytest.raises(TypeError, match="rng"):
        guides.visual_guide(frame, mask, augment=VisualGuideAugmentation())
    with pytest.raises(ValueError, match="pad_ratio"):
        guides.visual_guide(frame, mask, pad_ratio=-0.5)
    with pytest.raises(ValueError, match="crop_ratio"):
        VisualGuideAugmentation(crop_ratio=-0.1)
    with pytest.raises(ValueError, match="flip_prob"):
        VisualGuideAugmentation(flip_prob=1.5)


# --- spatial guide ---------------------------------------------------------------

def test_spatial_guide_small_object_uses_minimum_scale():
    mask = np.zeros((40, 50), np.uint8)
    mask[20:23, 10:13] = 1  # 3 x 3 block: median (11, 21), MAD 1 -> 1.48 < 5
    guide = guides.spatial_guide(mask)[:, :, 0]
    assert guide[21, 11] == 1.0
    np.testing.assert_allclose(guide[21, 16], math.exp(-0.5), rtol=1e-6)
    np.testing.assert_allclose(guide[26, 11], math.exp(-0.5), rtol=1e-6)
    np.testing.assert_allclose(guide[26, 16], math.exp(-1.0), rtol=1e-6)


def test_spatial_guide_scale_is_per_axis():
    mask = np.zeros((12, 100), np.uint8)
    mask[5, :] = 1  # x = 0..99: median 49.5, MAD 25; y all 5: MAD 0 -> 5
    guide = guides.spatial_guide(mask)[:, :, 0]
    sx = 1.4826 * 25
    for x, y in [(49, 5), (10, 5), (80, 9), (0, 0)]:
        expected = math.exp(-((x - 49.5) ** 2 / (2 * sx * sx) + (y - 5) ** 2 / 50.0))
        np.testing.assert_allclose(guide[y, x], expected, rtol=1e-6)


def test_spatial_guide_of_empty_mask_is_zero():
    guide = guides.spatial_guide(np.zeros((7, 9), np.uint8))
    assert guide.shape == (7, 9, 1) and guide.dtype == np.float32 and not guide.any()
    rng = np.random.default_rng(0)
    assert not guides.spatial_guide(np.zeros((7, 9)), perturb=SpatialGuidePerturbation(), rng=rng).any()
    assert guides.spatial_guide_params(np.zeros((7, 9))) is None


def test_spatial_guide_perturbation_is_seeded(chelsea):
    mask = frames.resize_mask(chelsea["raw_mask"], FRAME_SIZE)
    perturb = SpatialGuidePerturbation()

    def draw(seed):
        return guides.spatial_guide(mask, perturb=perturb, rng=np.random.default_rng(seed))

    np.testing.assert_array_equal(draw(3), draw(3))
    assert not np.array_equal(draw(3), draw(4))
    assert not np.array_equal(draw(3), chelsea["spatial_guide"][0])


def test_spatial_guide_perturbation_stays_in_range():
    mask = np.zeros((60, 80), np.uint8)
    mask[10:50, 20:60] = 1  # median (39.5, 29.5), MAD 10 -> scale 14.826 on both axes
    center, scale = np.array([39.5, 29.5]), np.array([14.826, 14.826])
    np.testing.assert_allclose(guides.spatial_guide_params(mask)[0], center)
    np.testing.assert_allclose(guides.spatial_guide_params(mask)[1], scale, rtol=1e-6)
    rng = np.random.default_rng(0)
    shifts, factors = [], []
    for _ in range(300):
        c, s = guides.spatial_guide_params(mask, perturb=SpatialGuidePerturbation(), rng=rng)
        shifts.append((c - center) / scale)
        factors.append(s / scale)
    shifts, factors = np.array(shifts), np.array(factors)
    assert np.all(np.abs(shifts) <= 0.2 + 1e-6)
    assert np.all((factors >= 1 / 1.4 - 1e-6) & (factors <= 1.4 + 1e-6))
    # ... and the ranges are used, on both axes independently.
    assert np.all(shifts.min(axis=0) < -0.17) and np.all(shifts.max(axis=0) > 0.17)
    assert np.all(factors.min(axis=0) < 0.75) and np.all(factors.max(axis=0) > 1.35)
    assert not np.allclose(shifts[:, 0], shifts[:, 1])


def test_spatial_guide_rejects_bad_input():
    with pytest.raises(ValueError, match="mask"):
        guides.spatial_guide(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="mask"):
        guides.spatial_guide(np.zeros(4))
    with pytest.raises(TypeError, match="rng"):
        guides.spatial_guide(np.ones((4, 4)), perturb=SpatialGuidePerturbation(), rng=0)
    with pytest.raises(TypeError, match="perturb"):
        guides.spatial_guide(np.ones((4, 4)), perturb=0.2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="scale_ratio"):
        SpatialGuidePerturbation(scale_ratio=-1)


def test_pil_bilinear_gives_pillow_13s_numbers_on_any_pillow():
    # Pillow 13's own resizes of seeded images (tests/data/pillow13_bilinear.py): the order of its two
    # passes shows in the last grey level, and Pillow 12 (which Apache Beam pins) orders them otherwise.
    import hashlib
    import json

    reference = json.loads((DATA / "pillow13_bilinear.json").read_text())
    vertical_first = 0
    for case in reference["cases"]:
        (width, height), (out_width, out_height) = case["size"], case["resized"]
        shape = (height, width, 3) if case["mode"] == "RGB" else (height, width)
        pixels = np.random.default_rng(case["seed"]).integers(0, 256, shape, dtype=np.uint8)
        out = np.asarray(frames.pil_bilinear(Image.fromarray(pixels), (out_width, out_height)))
        assert hashlib.sha256(np.ascontiguousarray(out).tobytes()).hexdigest() == case["sha256"], case
        vertical_first += out_height < height and 2 * (width - out_width) < height - out_height
    assert 10 <= vertical_first <= len(reference["cases"]) - 10  # both orders are exercised
