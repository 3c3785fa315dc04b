"""Frames larger than the working size: the network sees the working size, masks come back at full size."""
import numpy as np
import pytest
from PIL import Image

from osmn_tf.data.davis import read_mask, write_mask
from osmn_tf.inference.segmenter import VideoSegmenter

from conftest import run_tool, synthetic_video, write_frames

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

WORKING = (64, 48)
LARGE = (1280, 720)


def large_video(num_frames=3):
    frames, first = synthetic_video(num_frames=num_frames)
    frames = [np.asarray(Image.fromarray(f).resize(LARGE, Image.BILINEAR)) for f in frames]
    return frames, np.asarray(Image.fromarray(first).resize(LARGE, Image.NEAREST))


def test_large_frames_reach_the_network_at_the_working_size_only(small_model, monkeypatch):
    frames, first = large_video()
    segmenter = VideoSegmenter(small_model, working_size=WORKING)
    seen = []
    real = segmenter.segment_frame
    def spy(image, masks, params):
        seen.append((image.shape, masks.shape))
        return real(image, masks, params)

    monkeypatch.setattr(segmenter, "segment_frame", spy)
    late = np.zeros_like(first)
    late[600:700, 1000:1200] = 7  # an object annotated at full size on frame 1
    results = list(segmenter.track(frames, first, annotations={1: late}))
    assert seen == [((48, 64, 3), (3, 48, 64)), ((48, 64, 3), (4, 48, 64))]
    assert all(r.labels.shape == (720, 1280) for r in results)
    assert all(r.probabilities.shape[1:] == (48, 64) for r in results[1:])
    np.testing.assert_array_equal(results[1].labels == 7, late == 7)


def test_there_is_no_full_size_mode():
    with pytest.raises(ValueError, match="working_size must be a"):
        VideoSegmenter(None, working_size=None)


def test_the_tool_writes_full_resolution_masks_of_large_frames(tmp_path, small_weights, capsys):
    frames, first = large_video()
    folder = write_frames(tmp_path / "frames", frames, ".jpg", quality=90)
    write_mask(tmp_path / "first.png", first)
    code, text = run_tool("segment", "--weights", small_weights, "--frames", folder, "--first-mask",
                          tmp_path / "first.png", "--output", tmp_path / "out", "--working-size", "64x48")
    assert code == 0, text
    masks = [read_mask(tmp_path / "out" / f"{t:05d}.png") for t in range(3)]
    assert all(m.shape == (720, 1280) for m in masks)
    np.testing.assert_array_equal(masks[0], first)
    assert "(end to end, 64x48); peak memory" in capsys.readouterr().out
