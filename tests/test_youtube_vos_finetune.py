"""Online fine-tuning per object, as the release's osmn_online_finetune_ytvos.py: objects that appear later are
fine-tuned at their first annotated frame, and each object is segmented with its own model."""
import dataclasses
import json

import numpy as np
import pytest

from conftest import load_tool, run_tool, synthetic_video
from osmn_tf.data.davis import read_mask
from osmn_tf.data.frames import load_rgb
from osmn_tf.data.synthetic import SyntheticConfig, write_youtube_vos
from osmn_tf.inference.segmenter import VideoSegmenter
from osmn_tf.training import finetune as finetune_module
from osmn_tf.training.finetune import OnlineFinetuning

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

WORKING = (64, 48)


@pytest.mark.slow
def test_each_object_is_fine_tuned_at_its_first_annotation_and_segmented_with_its_own_model(small_model):
    frames, first = synthetic_video(num_frames=5)
    start = np.where(first == 1, first, 0).astype(np.uint8)  # object 1 from frame 0
    later = {2: np.where(first == 2, first, 0).astype(np.uint8)}  # object 2 joins at frame 2
    finetune = OnlineFinetuning(2, learning_rate=1e-3)
    calls, tuned = [], {}

    def adapt(model, frame, mask, working_size):
        assert model is small_model
        index = next(t for t, f in enumerate(frames) if np.array_equal(f, frame))
        ids = tuple(int(i) for i in np.unique(mask) if i)
        calls.append((index, ids))
        tuned[ids[0]] = finetune(model, frame, mask, working_size)
        return tuned[ids[0]]

    segmenter = VideoSegmenter(small_model, WORKING, adapt=adapt, adapt_per_object=True)
    results = list(segmenter.track(frames, start, annotations=later))
    assert calls == [(0, (1,)), (2, (2,))]
    # Each object's probabilities are those of its own fine-tuned model segmenting it alone.
    alone_1 = list(VideoSegmenter(tuned[1], WORKING).track(frames, start))
    alone_2 = list(VideoSegmenter(tuned[2], WORKING).track(frames[2:], later[2]))
    for t in range(1, 5):
        np.testing.assert_allclose(results[t].probabilities[0], alone_1[t].probabilities[0], atol=1e-6)
    for t in range(3, 5):
        assert results[t].object_ids == (1, 2)
        np.testing.assert_allclose(results[t].probabilities[1], alone_2[t - 2].probabilities[0], atol=1e-6)
    # Without fine-tuning the probabilities differ: the test fails if fine-tuning is skipped.
    plain = list(VideoSegmenter(small_model, WORKING).track(frames, start, annotations=later))
    assert not np.allclose(plain[4].probabilities, results[4].probabilities, atol=1e-3)
    # A second video starts from the given model again.
    calls.clear()
    list(segmenter.track(frames[:2], start))
    assert calls == [(0, (1,))]
    with pytest.raises(ValueError, match="adapt_per_object needs adapt"):
        VideoSegmenter(small_model, WORKING, adapt_per_object=True)


@pytest.mark.slow
def test_fine_tuning_scales_set_the_sample_sizes(small_model, monkeypatch):
    from osmn_tf.training.samples import first_frame

    sizes = []
    real = first_frame.object_sample
    def recording(frame, mask, rng, size, *args, **kwargs):
        sizes.append(size)
        return real(frame, mask, rng, size, *args, **kwargs)

    monkeypatch.setattr(first_frame, "object_sample", recording)
    frames, first = synthetic_video(num_frames=1)
    OnlineFinetuning(6, scales=(0.5, 1.5))(small_model, frames[0], first == 1, WORKING)
    assert set(sizes) == {(32, 24), (96, 72)}
    with pytest.raises(ValueError, match="scales must be"):
        OnlineFinetuning(1, scales=(0.0,))


def test_tool_defaults_are_the_releases():
    tool = load_tool("segment")
    ytvos = tool.parse_args(["--weights", "w", "--youtube-vos-root", "r", "--output", "o", "--online-finetune", "3"])
    davis = tool.parse_args(["--weights", "w", "--davis-root", "r", "--output", "o", "--online-finetune", "3"])
    assert (ytvos.finetune_per_object, tuple(ytvos.finetune_scales)) == (True, (0.8, 1.0, 1.5))
    assert (davis.finetune_per_object, tuple(davis.finetune_scales)) == (False, (0.5, 0.8, 1.0))
    other = tool.parse_args(["--weights", "w", "--youtube-vos-root", "r", "--output", "o", "--online-finetune", "3",
                             "--no-finetune-per-object", "--finetune-scales", "1"])
    assert (other.finetune_per_object, tuple(other.finetune_scales)) == (False, (1.0,))
    with pytest.raises(SystemExit):
        tool.parse_args(["--weights", "w", "--youtube-vos-root", "r", "--output", "o", "--finetune-scales", "1"])


@pytest.mark.slow
def test_tool_fine_tunes_each_youtube_vos_object_at_its_first_frame(tmp_path, small_weights, monkeypatch):
    root = tmp_path / "ytvos"
    config = dataclasses.replace(SyntheticConfig(image_size=WORKING, num_frames=5), late_entry_prob=1.0)
    (video,) = write_youtube_vos(root, config, 1, split="valid")
    meta = json.loads((root / "valid" / "meta.json").read_text())["videos"][video]["objects"]
    first_frames = {int(i): int(obj["frames"][0]) for i, obj in meta.items()}
    assert len(set(first_frames.values())) > 1, "the synthetic video must have objects that enter later"
    frames = [load_rgb(p) for p in sorted((root / "valid" / "JPEGImages" / video).glob("*.jpg"))]
    calls = []
    real = finetune_module.OnlineFinetuning.__call__

    def recording(self, model, frame, mask, working_size):
        index = next(t for t, f in enumerate(frames) if np.array_equal(f, frame))
        calls.append((index, tuple(int(i) for i in np.unique(mask) if i)))
        return real(self, model, frame, mask, working_size)

    monkeypatch.setattr(finetune_module.OnlineFinetuning, "__call__", recording)
    common = ["--weights", small_weights, "--youtube-vos-root", root, "--split", "valid", "--working-size", "64x48"]
    code, text = run_tool("segment", *common, "--output", tmp_path / "tuned", "--online-finetune", "2",
                          "--finetune-lr", "1e-3", "--finetune-scales", "1")
    assert code == 0, text
    assert sorted(calls) == sorted((t, (i,)) for i, t in first_frames.items())
    code, text = run_tool("segment", *common, "--output", tmp_path / "plain")
    assert code == 0, text
    tuned = [read_mask(p) for p in sorted((tmp_path / "tuned" / "Annotations" / video).glob("*.png"))]
    plain = [read_mask(p) for p in sorted((tmp_path / "plain" / "Annotations" / video).glob("*.png"))]
    assert len(tuned) == len(plain) == 5
    assert any(not np.array_equal(a, b) for a, b in zip(tuned, plain))
