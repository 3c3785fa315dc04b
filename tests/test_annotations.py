"""Annotations after frame 0: objects that join later, corrected masks (VideoLoop.track's `annotations`)."""
import numpy as np
import pytest
from PIL import Image

from osmn_tf.inference import segmenter as segmenter_module
from osmn_tf.inference.segmenter import VideoSegmenter

from conftest import synthetic_video

WORKING = (64, 48)


def _only(mask, object_id):
    return np.where(mask == object_id, mask, 0).astype(np.uint8)


def _square(shape, y, x, side, object_id):
    mask = np.zeros(shape, np.uint8)
    mask[y:y + side, x:x + side] = object_id
    return mask


@pytest.mark.slow
def test_an_object_entering_at_frame_k_has_no_pixels_before_and_its_annotation_at_k(small_model):
    frames, first = synthetic_video(num_frames=5)
    k = 2
    late = _only(first, 5)  # object 5 is annotated only at frame k, where the blue square has moved by 2k
    late = np.roll(late, 2 * k, axis=1)
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    results = list(segmenter.track(frames, _only(first, 1) | _only(first, 2), annotations={k: late}))
    assert len(results) == 5
    for t in range(k):
        assert not (results[t].labels == 5).any(), f"frame {t} shows object 5 before it was annotated"
        assert results[t].object_ids in ((1, 2),)
    np.testing.assert_array_equal(results[k].labels == 5, late == 5)
    assert results[k + 1].object_ids == (1, 2, 5)
    # From k on, object 5 is tracked as if its video started at frame k with that mask.
    alone = list(segmenter.track(frames[k:], late))
    for t in range(k + 1, 5):
        np.testing.assert_allclose(results[t].probabilities[2], alone[t - k].probabilities[0], atol=2e-5)
    # Objects 1 and 2 are untouched by the newcomer.
    before = list(segmenter.track(frames, _only(first, 1) | _only(first, 2)))
    for t in range(1, 5):
        np.testing.assert_allclose(results[t].probabilities[:2], before[t].probabilities, atol=2e-5)


@pytest.mark.slow
def test_a_corrected_mask_restarts_tracking_from_it(small_model, monkeypatch):
    frames, first = synthetic_video(num_frames=5)
    k = 2
    correction = _square(first.shape, 30, 50, 12, 2)  # object 2 is said to be elsewhere at frame k
    guides = []
    real = segmenter_module.spatial_guide
    monkeypatch.setattr(segmenter_module, "spatial_guide", lambda mask: guides.append(np.array(mask)) or real(mask))
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    results = list(segmenter.track(frames, first, annotations={k: correction}, reencode_corrected=True))
    # Frame k shows object 2 exactly as annotated (none of its predicted pixels elsewhere).
    np.testing.assert_array_equal(results[k].labels == 2, correction == 2)
    # Frame k + 1's spatial guide of object 2 is the correction at the working size.
    working = np.asarray(Image.fromarray(correction).resize(WORKING, Image.NEAREST)) == 2
    np.testing.assert_array_equal(guides[3 * k + 1], working)
    # With its visual guide encoded again, object 2 continues as a fresh video from frame k.
    alone = list(segmenter.track(frames[k:], correction))
    for t in range(k + 1, 5):
        np.testing.assert_allclose(results[t].probabilities[1], alone[t - k].probabilities[0], atol=2e-5)
    # Keeping frame 0's visual guide (the default) gives other numbers (the option matters).
    kept = list(segmenter.track(frames, first, annotations={k: correction}))
    assert np.abs(kept[k + 1].probabilities[1] - results[k + 1].probabilities[1]).max() > 1e-4
    np.testing.assert_array_equal(kept[k].labels == 2, correction == 2)
    # The other objects were predicted as without the correction up to frame k.
    plain = list(segmenter.track(frames, first))
    np.testing.assert_allclose(results[k].probabilities, plain[k].probabilities, atol=2e-5)


@pytest.mark.slow
def test_without_annotations_the_loop_is_the_first_frame_recurrence(small_model):
    """SPEC 5 written out: each frame's masks are the previous frame's predictions (`annotations=None` and
    `{}` alike), encoded once from frame 0."""
    from osmn_tf.data.frames import resize_mask
    from osmn_tf.inference.tracking import merge_probabilities, object_ids_of

    frames, first = synthetic_video(num_frames=4)
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    ids = object_ids_of(first)
    size = (first.shape[1], first.shape[0])
    params = segmenter.start_video(frames[0], first, ids)
    masks, expected = np.stack([first == i for i in ids]), []
    for frame in frames[1:]:
        probabilities = segmenter.frame_probabilities(segmenter.prepare_frame(frame), masks, params)
        expected.append(resize_mask(merge_probabilities(probabilities, ids), size))
        masks = probabilities > 0.5
    for annotations in (None, {}):
        labels = [r.labels for r in segmenter.track(frames, first, annotations=annotations)][1:]
        for t, (got, want) in enumerate(zip(labels, expected), 1):
            np.testing.assert_array_equal(got, want, err_msg=f"frame {t}, annotations={annotations!r}")
    # The recurrence matters: frame 3 from frame 0's masks instead of frame 2's differs.
    stale = segmenter.frame_probabilities(segmenter.prepare_frame(frames[3]), np.stack([first == i for i in ids]),
                                          params)
    assert not np.array_equal(resize_mask(merge_probabilities(stale, ids), size), expected[2])


def test_frames_before_any_object_are_background_and_skip_the_network(small_model, monkeypatch):
    frames, first = synthetic_video(num_frames=4)
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    calls = []
    real = segmenter.frame_probabilities
    monkeypatch.setattr(segmenter, "frame_probabilities", lambda *a: calls.append(1) or real(*a))
    empty = np.zeros_like(first)
    results = list(segmenter.track(frames, empty, annotations={2: np.roll(first, 4, axis=1)}))
    assert [r.labels.any() for r in results[:2]] == [False, False]
    np.testing.assert_array_equal(results[2].labels, np.roll(first, 4, axis=1))
    assert len(calls) == 1 and results[3].object_ids == (1, 2, 5)


@pytest.mark.parametrize("annotations, message", [
    ({1: np.zeros((10, 10), np.uint8) + 1}, "annotation of frame 1 is 10x10 (WxH) but the frame is 80x60"),
    ({1: np.zeros((60, 80), np.uint8)}, "annotation of frame 1 has no object"),
    ({-1: np.ones((60, 80), np.uint8)}, "frame indices must be ints >= 0, got -1"),
    ({1: np.ones((60, 80), np.float32)}, "annotation of frame 1: the mask must hold integer object ids"),
])
def test_bad_annotations_are_refused_with_the_frame(small_model, annotations, message):
    frames, first = synthetic_video(num_frames=3)
    with pytest.raises(ValueError) as error:
        list(VideoSegmenter(small_model, working_size=WORKING).segment(frames, first, annotations))
    assert message in str(error.value)
