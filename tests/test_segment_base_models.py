"""`VideoSegmenter` with every base model: objects in one batch, lite's sizes, the base models' preprocessing."""
import numpy as np
import pytest

from osmn_tf.config import input_scale_of
from osmn_tf.data.frames import preprocess_frame, resize_mask
from osmn_tf.data.guides import spatial_guide, visual_guide
from osmn_tf.data.mask_guides import dilated_mask_guide
from osmn_tf.inference.segmenter import VideoSegmenter

from conftest import assert_objects_together_equal_each_alone, small_osmn, synthetic_video

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

SMALL = dict(width=0.125, guide_size=64)
CASES = {"lite": ({"base_model": "lite"}, {}), "deeplab": ({"base_model": "deeplab"}, {}),
         "masktrack": ({"base_model": "masktrack"}, {}),
         "masktrack_original_mask": ({"base_model": "masktrack"}, {"use_original_mask": True})}


@pytest.fixture(scope="module")
def models():
    return {name: small_osmn(**SMALL, **CASES[name][0]) for name in ("lite", "deeplab", "masktrack")}


@pytest.mark.parametrize("case", list(CASES))
def test_all_objects_in_one_batch_equal_one_object_at_a_time(models, case):
    model = models[case.replace("_original_mask", "")]
    frames, first = synthetic_video()
    # lite's modulated network needs multiples of 32 (SPEC 8.1).
    segmenter = VideoSegmenter(model, working_size=(64, 64), **CASES[case][1])
    assert_objects_together_equal_each_alone(segmenter, frames, first)


def test_lite_working_size_must_be_multiples_of_32_unless_padded(models):
    model = models["lite"]
    with pytest.raises(ValueError, match=r"working size 80x60 \(WxH\): base_model lite needs .* multiples of 32.* "
                                         r"pad=True \(the network then sees 96x64\) or e.g. 64x32"):
        VideoSegmenter(model, working_size=(80, 60))
    frames, first = synthetic_video()
    padded = VideoSegmenter(model, working_size=(80, 60), pad=True)
    assert padded.network_size == (96, 64)
    results = list(padded.track(frames, first))
    assert results[1].probabilities.shape == (3, 60, 80) and results[1].labels.shape == (60, 80)
    # Frame 1 by hand: inputs padded at the bottom and right with zeros, the probabilities cropped back.
    params = padded.encode_objects(frames[0], first, (1, 2, 5))
    image = np.zeros((1, 64, 96, 3), np.float32)
    image[0, :60, :80] = preprocess_frame(frames[1], (80, 60), input_scale_of(model.config))
    guides = np.zeros((3, 64, 96, 1), np.float32)
    for k, object_id in enumerate((1, 2, 5)):
        guides[k, :60, :80] = spatial_guide(first == object_id)
    logits = np.asarray(model.frame_model(fold_batch_norm=True)([image, guides, params], training=False))
    expected = 1 / (1 + np.exp(-logits[:, :60, :80, 0]))
    np.testing.assert_allclose(results[1].probabilities, expected, atol=2e-5)
    # At a working size that is already a multiple of 32, pad changes nothing.
    exact = [r.probabilities for r in VideoSegmenter(model, working_size=(64, 64)).track(frames, first)][1:]
    same = [r.probabilities for r in VideoSegmenter(model, working_size=(64, 64), pad=True).track(frames, first)][1:]
    for a, b in zip(exact, same):
        np.testing.assert_array_equal(a, b)


def test_the_segmenter_encodes_frames_and_guides_with_the_models_pixel_scale(models):
    model = models["lite"]
    frames, first = synthetic_video()
    segmenter = VideoSegmenter(model, working_size=(64, 64))
    assert segmenter.scale == 0.00787
    np.testing.assert_array_equal(segmenter.prepare_frame(frames[1]), preprocess_frame(frames[1], (64, 64), 0.00787))
    params = segmenter.encode_objects(frames[0], first, (2,))
    guide = visual_guide(frames[0], first == 2, size=64, scale=0.00787)
    np.testing.assert_allclose(params[0], np.asarray(model.visual_modulator(guide[np.newaxis]))[0], rtol=1e-6)


def test_use_original_mask_feeds_masktracks_dilated_mask_and_is_masktracks_alone(models):
    model = models["masktrack"]
    frames, first = synthetic_video()
    segmenter = VideoSegmenter(model, working_size=(64, 48), use_original_mask=True)
    fed = []
    call = segmenter._probabilities
    segmenter._probabilities = lambda *inputs: fed.append([np.asarray(x) for x in inputs]) or call(*inputs)
    list(segmenter.track(frames[:2], first))
    names = segmenter._input_names
    guides = fed[0][names.index("spatial_guide")]
    # Frame 1's guides: the first mask of each object, at the working size, dilated, times 255.
    expected = np.stack([dilated_mask_guide(resize_mask((first == i).astype(np.uint8), (64, 48))) for i in (1, 2, 5)])
    np.testing.assert_array_equal(guides, expected)
    with pytest.raises(ValueError, match="use_original_mask is masktrack's spatial guide; .* deeplab"):
        VideoSegmenter(models["deeplab"], working_size=(64, 48), use_original_mask=True)
