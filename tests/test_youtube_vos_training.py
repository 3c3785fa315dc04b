"""YouTube-VOS training (`tools/train.py --stage youtube-vos`) on the synthetic YouTube-VOS layout, 64x48 frames."""
import dataclasses
import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, load_tool, run_tool_process, train_until_killed
from osmn_tf.data.davis import read_mask
from osmn_tf.data.frames import resize_mask
from osmn_tf.data.guides import mask_bbox
from osmn_tf.data.synthetic import SyntheticConfig, write_youtube_vos
from osmn_tf.training.config import TrainConfig, preset
from osmn_tf.training.experiment import make_sources
from osmn_tf.training.samples import YouTubeVOSTrainSource

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

SIZE = (64, 48)
TRAIN = [sys.executable, str(REPO / "tools" / "train.py")]


@pytest.fixture(scope="module")
def ytvos_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ytvos")
    # Every object after the first enters later: the source must start each at its own first frame.
    config = dataclasses.replace(SyntheticConfig(image_size=SIZE, num_frames=6), late_entry_prob=1.0)
    write_youtube_vos(root, config, 3, split="train")
    return root


def tiny_flags(root, model_dir):
    return ["--stage", "youtube-vos", "--data-root", str(root), "--model-dir", str(model_dir), "--image-size", "64x48",
            "--width", "0.125", "--guide-size", "64", "--batch-size", "2", "--quiet"]


def meta_frames(root):
    meta = json.loads((root / "train" / "meta.json").read_text())["videos"]
    return {video: {int(i): obj["frames"] for i, obj in info["objects"].items()} for video, info in meta.items()}


def test_items_are_consecutive_annotated_frames_of_each_object(ytvos_root):
    source = YouTubeVOSTrainSource(ytvos_root, image_size=SIZE, guide_size=64, cache_dir=ytvos_root / "cache")
    frames = meta_frames(ytvos_root)
    expected = sorted((video, object_id, a, b) for video, objects in frames.items()
                      for object_id, stems in objects.items() for a, b in zip(stems[:-1], stems[1:]))
    assert sorted(source.item(i) for i in range(len(source))) == expected
    late = [(v, i) for v, objects in frames.items() for i, stems in objects.items() if stems[0] != "00000"]
    assert late, "the synthetic set must hold objects that enter later"
    batch = source.batch(0, 3, seed=0)
    assert batch["image"].shape == (3, SIZE[1], SIZE[0], 3) and batch["guide_image"].shape == (3, 64, 64, 3)
    # Each item's label is the object's mask in its frame.
    video, object_id, _, stem = source.item(0)
    label = source.sample(0, np.random.default_rng(0), SIZE)["label"][..., 0]
    mask = read_mask(ytvos_root / "train" / "Annotations" / video / f"{stem}.png") == object_id
    np.testing.assert_array_equal(label, resize_mask(mask, SIZE))


def test_valid_guide_frames_follow_the_ratios_at_the_training_size(ytvos_root):
    frames = meta_frames(ytvos_root)

    def expected(label_ratio, bbox_ratio, size):
        out = {}
        for video, objects in frames.items():
            for object_id, stems in objects.items():
                valid = []
                for stem in stems:
                    labels = resize_mask(read_mask(ytvos_root / "train" / "Annotations" / video / f"{stem}.png"), size)
                    mask = labels == object_id
                    area = mask.sum()
                    xmin, ymin, xmax, ymax = mask_bbox(mask)
                    if area and area > labels.size * label_ratio and area > (xmax - xmin) * (ymax - ymin) * bbox_ratio:
                        valid.append(stem)
                out[video, object_id] = valid or [stems[0]]
        return out

    def actual(source):
        return {(v, i): source.valid_frames(v, i) for v, objects in frames.items() for i in objects}

    cache = ytvos_root / "cache"
    # Ratios chosen so that some frames pass and some fail on the synthetic objects.
    for label_ratio, bbox_ratio in ((0.003, 0.2), (0.03, 0.5), (0.08, 0.2)):
        source = YouTubeVOSTrainSource(ytvos_root, image_size=SIZE, label_valid_ratio=label_ratio,
                                       bbox_valid_ratio=bbox_ratio, guide_size=64, cache_dir=cache)
        assert actual(source) == expected(label_ratio, bbox_ratio, SIZE)
    assert expected(0.08, 0.2, SIZE) != expected(0.003, 0.2, SIZE)
    # Measured at the training size, as the release (the cache is keyed by it).
    small = YouTubeVOSTrainSource(ytvos_root, image_size=(16, 12), label_valid_ratio=0.08, guide_size=64,
                                  cache_dir=cache)
    assert actual(small) == expected(0.08, 0.2, (16, 12))
    # Without random guides every item's visual guide is the object's first annotated frame.
    first = YouTubeVOSTrainSource(ytvos_root, image_size=SIZE, random_guide=False, guide_size=64, cache_dir=cache)
    assert actual(first) == {(v, i): [stems[0]] for v, objects in frames.items() for i, stems in objects.items()}
    with pytest.raises(ValueError, match="label_valid_ratio must be in"):
        YouTubeVOSTrainSource(ytvos_root, image_size=SIZE, label_valid_ratio=1.5, cache_dir=cache)


def test_preset_is_the_releases_youtube_vos_training():
    stage = preset("youtube-vos", data_root="x")
    assert stage.dataset == "youtube-vos" and stage.image_size == (448, 256) and stage.scales == (1.0,)
    assert (stage.learning_rates, stage.lr_boundaries, stage.steps, stage.batch_size) == ((1e-5, 1e-6), (200_000,),
                                                                                          300_000, 8)
    assert stage.random_guide and not stage.fix_bn and not stage.skip_blank_frames
    assert (stage.label_valid_ratio, stage.bbox_valid_ratio) == (0.003, 0.2)
    tool = load_tool("train")
    config = tool.make_config(tool.parse_args(["--stage", "youtube-vos", "--data-root", "x", "--label-valid-ratio",
                                               "0.01", "--bbox-valid-ratio", "0.4", "--no-random-guide"]))
    assert (config.label_valid_ratio, config.bbox_valid_ratio, config.random_guide) == (0.01, 0.4, False)
    with pytest.raises(ValueError, match="visual_modulator_pretrain_steps needs sequences in the DAVIS layout"):
        preset("youtube-vos", data_root="x", visual_modulator_pretrain_steps=2)


@pytest.mark.slow
def test_tool_trains_on_youtube_vos_and_passes_the_ratios(ytvos_root, tmp_path):
    model_dir = tmp_path / "run"
    result = run_tool_process("train", *tiny_flags(ytvos_root, model_dir), "--steps", "2", "--checkpoint-every", "1",
                              "--label-valid-ratio", "0.08", "--bbox-valid-ratio", "0.3")
    assert result.returncode == 0, result.stderr
    assert "YouTubeVOSTrainSource" in result.stdout and (model_dir / "model.keras").is_file()
    config = TrainConfig(**json.loads((model_dir / "train_config.json").read_text()))
    assert (config.dataset, config.label_valid_ratio, config.bbox_valid_ratio) == ("youtube-vos", 0.08, 0.3)
    source, validation = make_sources(config, model_dir)
    assert isinstance(source, YouTubeVOSTrainSource) and validation is None
    assert (source.label_valid_ratio, source.bbox_valid_ratio, source.random_guide) == (0.08, 0.3, True)
    assert source.image_size == SIZE and source.guide_size == 64


@pytest.mark.slow
def test_tool_resumes_youtube_vos_training_after_sigkill(ytvos_root, tmp_path):
    model_dir = tmp_path / "run"
    args = tiny_flags(ytvos_root, model_dir) + ["--steps", "200", "--checkpoint-every", "2"]
    latest = train_until_killed(TRAIN + args, model_dir)
    assert not (model_dir / "model.keras").exists()
    # ckpt-4's files may be written before the checkpoint list names it: the latest is 2 or later.
    assert latest >= 2
    result = run_tool_process("train", *tiny_flags(ytvos_root, model_dir), "--steps", str(latest + 1))
    assert result.returncode == 0, result.stderr
    assert f"resumed from step {latest}" in result.stderr
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{latest + 1}")
    assert (model_dir / "model.keras").is_file()
    assert not list(model_dir.glob(".*partial*"))
