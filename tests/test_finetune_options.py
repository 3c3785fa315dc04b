"""Online fine-tuning takes the release's shared training options (docs/release_options.md): the samples' guide
randomisation, --bbox_sup, --use_original_mask, --fix_bn and --fix_seg, from `tools/segment.py` to the samples."""
import types

import numpy as np
import pytest

from conftest import load_tool, synthetic_video
from osmn_tf.config import OSMNConfig
from osmn_tf.data.guides import SpatialGuidePerturbation, VisualGuideAugmentation
from osmn_tf.training import finetune as finetune_module
from osmn_tf.training.finetune import OnlineFinetuning
from osmn_tf.training.freezing import batch_norm_layers
from osmn_tf.training.samples import FirstFrameSource

WORKING = (64, 48)
BASE = ["--weights", "w", "--davis-root", "r", "--output", "o"]


def request_of(tmp_path, monkeypatch, *flags):
    import segment_run

    made = {}
    monkeypatch.setattr(segment_run, "segment", lambda request: made.setdefault("request", request))
    load_tool("segment").main(["--weights", "w", "--davis-root", str(tmp_path), "--output", str(tmp_path / "o"),
                               *flags])
    return made["request"]


def test_segment_tool_passes_the_fine_tuning_options(tmp_path, monkeypatch):
    request = request_of(tmp_path, monkeypatch, "--online-finetune", "5", "--finetune-fix-bn", "--finetune-fix-seg",
                         "--vg-random-crop-ratio", "0.2", "--vg-random-rotate-angle", "5", "--vg-color-aug",
                         "--sg-center-perturb-ratio", "0.1", "--sg-std-perturb-ratio", "0.3", "--bbox-sup",
                         "--vg-keep-aspect-ratio")
    assert request.finetune_options == {
        "fix_bn": True, "fix_seg": True, "bbox_sup": True, "use_original_mask": False,
        "visual_augment": {"crop_ratio": 0.2, "max_rotation": 5.0, "color_aug": True, "keep_aspect_ratio": True},
        "spatial_perturb": {"center_ratio": 0.1, "scale_ratio": 0.3}}
    # Without the flags: the release's defaults, which are OnlineFinetuning's own.
    defaults = request_of(tmp_path, monkeypatch, "--online-finetune", "5").finetune_options
    assert VisualGuideAugmentation(**defaults["visual_augment"]) == OnlineFinetuning(1).visual_augment
    assert SpatialGuidePerturbation(**defaults["spatial_perturb"]) == OnlineFinetuning(1).spatial_perturb
    assert not (defaults["fix_bn"] or defaults["fix_seg"] or defaults["bbox_sup"])


@pytest.mark.parametrize("flags,message", [
    (["--finetune-fix-seg"], "--finetune-fix-seg: options of --online-finetune N"),
    (["--vg-color-aug", "--sg-std-perturb-ratio", "0.1"], "--vg-color-aug, --sg-std-perturb-ratio: options of"),
    (["--online-finetune", "3", "--vg-random-crop-ratio", "0.5"], "--vg-random-crop-ratio must be in [0, 0.5)"),
    (["--online-finetune", "3", "--sg-center-perturb-ratio", "-1"], "--sg-center-perturb-ratio must be in [0, inf)"),
])
def test_fine_tuning_options_are_checked_and_named(flags, message, capsys):
    with pytest.raises(SystemExit):
        load_tool("segment").parse_args(BASE + flags)
    assert message in capsys.readouterr().err


class _Sampled(Exception):
    """Raised by the recording source: the sample options are all `test_the_options_reach_the_samples` needs."""


def test_the_options_reach_the_samples(monkeypatch):
    made = []

    class Recording(FirstFrameSource):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            raise _Sampled

    monkeypatch.setattr(finetune_module, "FirstFrameSource", Recording)
    monkeypatch.setattr(finetune_module, "copy_model", lambda model: model)
    augment, perturb = VisualGuideAugmentation(crop_ratio=0.2), SpatialGuidePerturbation(center_ratio=0.0)

    model = types.SimpleNamespace(config=OSMNConfig(base_model="masktrack", width=0.125))  # all it reads first
    with pytest.raises(_Sampled):
        OnlineFinetuning(1, visual_augment=augment, spatial_perturb=perturb, bbox_sup=True,
                         use_original_mask=True)(model, np.zeros((48, 64, 3), np.uint8), np.ones((48, 64)), WORKING)
    assert {k: made[0][k] for k in ("visual_augment", "spatial_perturb", "bbox_sup", "use_original_mask")} == {
        "visual_augment": augment, "spatial_perturb": perturb, "bbox_sup": True, "use_original_mask": True}


def test_first_frame_samples_take_masktracks_original_mask_guide():
    frames, first = synthetic_video(num_frames=1)
    gaussian = FirstFrameSource(frames[0], first, WORKING).batch(0, 3, seed=0)["spatial_guide"]
    original = FirstFrameSource(frames[0], first, WORKING, use_original_mask=True).batch(0, 3, seed=0)
    assert gaussian.max() <= 1.0 and set(np.unique(original["spatial_guide"])) == {0.0, 255.0}


def test_use_original_mask_and_fix_seg_are_refused_where_they_mean_nothing(small_model):
    frames, first = synthetic_video(num_frames=1)
    with pytest.raises(ValueError, match="use_original_mask is masktrack's spatial guide"):
        OnlineFinetuning(1, use_original_mask=True)(small_model, frames[0], first, WORKING)


@pytest.mark.slow
def test_fix_seg_and_fix_bn_keep_their_weights_in_the_fine_tuned_copy(small_model):
    frames, first = synthetic_video(num_frames=1)
    tuned = OnlineFinetuning(2, learning_rate=1e-2, fix_bn=True, fix_seg=True)(small_model, frames[0], first, WORKING)
    for a, b in zip(small_model.segmentation_network.get_weights(), tuned.segmentation_network.get_weights()):
        np.testing.assert_array_equal(a, b)
    for before, after in zip(batch_norm_layers(small_model), batch_norm_layers(tuned)):
        for a, b in zip(before.get_weights(), after.get_weights()):  # gamma, beta and the moving statistics
            np.testing.assert_array_equal(a, b)
    # The modulators trained (the test fails if nothing trains).
    changed = [not np.array_equal(a, b) for a, b in zip(small_model.visual_modulator.get_weights(),
                                                         tuned.visual_modulator.get_weights())]
    assert any(changed)
    # The model given is unchanged, and trainable again for whoever uses it next.
    assert small_model.segmentation_network.trainable
