"""Training: the loss of SPEC 7, the input pipeline, the loop (checkpoints, resuming, TensorBoard), tf.distribute.

Everything runs on a tiny synthetic set (64x48 frames) with `width` 0.125.
"""
import io
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, load_tool, run_tool_process, tiny_train_config, train_until_killed
from osmn_tf.config import OSMNConfig, modulation_layout
from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.layers import SideOutputFusion
from osmn_tf.models.osmn import build_osmn
from osmn_tf.training.config import TrainConfig, preset
from osmn_tf.training.experiment import make_sources
from osmn_tf.training.losses import class_balanced_sigmoid_cross_entropy, weight_decay
from osmn_tf.training.pipeline import batch_dataset, model_inputs
from osmn_tf.training.samples import DavisTrainSource
from osmn_tf.training.trainer import GUIDE_PIXEL_SCALE, Trainer

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

SIZE = (64, 48)
TRAIN = [sys.executable, str(REPO / "tools" / "train.py")]
# A run of the tool that takes seconds: tiny frames, tiny network, no evaluation.
TINY_FLAGS = ["--image-size", "64x48", "--width", "0.125", "--batch-size", "2", "--synthetic-sequences", "3", "2",
              "--visual-modulator-pretrain-steps", "2", "--quiet", "--no-eval"]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    config = SyntheticConfig(image_size=SIZE, num_frames=6)
    write_davis(root, config, 3, split="train")
    write_davis(root, config, 2, split="val")
    return root


@pytest.fixture(scope="module")
def source(synthetic_root):
    # 64: tiny_train_config's (the demo's) guide size.
    return DavisTrainSource(synthetic_root, split="train", image_size=SIZE, scales=(1.0, 0.75), guide_size=64)


def event_values(logdir):
    """`{tag: [(step, value or tensor), ...]}` from a TensorBoard log folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "images": 0, "scalars": 0})
    events.Reload()
    out = {}
    for tag in events.Tags()["tensors"]:
        out[tag] = [(e.step, tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
    for tag in events.Tags()["images"]:
        out[tag] = [(e.step, e.encoded_image_string) for e in events.Images(tag)]
    return out


# ----------------------------------------------------------------------------
# The objective (SPEC 7)
# ----------------------------------------------------------------------------
def numpy_balanced_loss(labels, logits):
    """SPEC 7 written directly: per-pixel sigmoid cross-entropy, classes weighted by the other's share."""
    x = logits.astype(np.float64)
    y = (labels > 0.5).astype(np.float64)
    per_pixel = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    positives, negatives = y.sum(), (1 - y).sum()
    return (negatives * (y * per_pixel).sum() + positives * ((1 - y) * per_pixel).sum()) / (positives + negatives)


@pytest.mark.parametrize("foreground", [0.1, 0.5, 0.0, 1.0])
def test_loss_equals_a_direct_numpy_computation(foreground):
    rng = np.random.default_rng(7)
    logits = (rng.normal(size=(2, 13, 17, 1)) * 8).astype(np.float32)
    logits[0, 0, :4, 0] = [60.0, -60.0, 0.0, 1e-3]  # far from 0: the stable form must not overflow
    labels = (rng.random((2, 13, 17, 1)) < foreground).astype(np.float32)
    got = float(class_balanced_sigmoid_cross_entropy(labels, logits))
    assert np.isfinite(got)
    np.testing.assert_allclose(got, numpy_balanced_loss(labels, logits), rtol=2e-6)


def test_weight_decay_covers_every_trainable_conv_kernel_and_nothing_else():
    model = build_osmn(width=0.125)
    kernels = []

    def walk(layer):
        for sub in getattr(layer, "layers", []):
            walk(sub)
        if isinstance(layer, (keras.layers.Conv2D, SideOutputFusion)) and layer.trainable:
            kernels.append(np.asarray(layer.kernel, np.float64))

    walk(model)
    # VGG16 convs of the FCN and the visual modulator (13 each), fc6-fc8, 4 side
    # outputs, the 1x1 fusion (SideOutputFusion), the spatial modulator's 3 convs.
    assert len(kernels) == 13 + 13 + 3 + 4 + 1 + 3
    expected = 2e-4 * sum((k ** 2).sum() for k in kernels) / 2
    np.testing.assert_allclose(float(weight_decay(model, 2e-4)), expected, rtol=1e-5)
    model.visual_modulator.trainable = False  # frozen kernels are not regularised
    kernels.clear()
    walk(model)
    assert len(kernels) == 13 + 4 + 1 + 3
    np.testing.assert_allclose(float(weight_decay(model, 2e-4)), 2e-4 * sum((k ** 2).sum() for k in kernels) / 2,
                               rtol=1e-5)


# ----------------------------------------------------------------------------
# The input pipeline
# ----------------------------------------------------------------------------
def test_pipeline_yields_the_sources_batches_in_order_and_resumes(source):
    dataset = batch_dataset(source, 2, seed=3)
    for index, batch in zip(range(3), dataset):
        expected = source.batch(index, 2, 3)
        for key, value in expected.items():
            np.testing.assert_array_equal(batch[key].numpy(), value, err_msg=f"batch {index} {key}")
    resumed = next(iter(batch_dataset(source, 2, seed=3, start_batch=2)))
    np.testing.assert_array_equal(resumed["image"].numpy(), source.batch(2, 2, 3)["image"])
    other_seed = next(iter(batch_dataset(source, 2, seed=4)))
    assert not np.array_equal(other_seed["image"].numpy(), source.batch(0, 2, 3)["image"])


def test_replica_shards_make_up_the_whole_batch(source):
    whole = source.batch(5, 4, 1)
    parts = list(batch_dataset(source, 4, seed=1, start_batch=5, shards=(0, 1), num_shards=2).take(2))
    for key in whole:
        np.testing.assert_array_equal(np.concatenate([p[key].numpy() for p in parts]), whole[key])
    with pytest.raises(ValueError, match="shard"):
        source.batch(0, 3, 1, shard=0, num_shards=2)


# ----------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------
def test_training_checkpoints_resumes_and_writes_tensorboard(synthetic_root, source, tmp_path):
    model_dir = tmp_path / "run"
    log = io.StringIO()
    trainer = Trainer(tiny_train_config(synthetic_root), source, tf.distribute.get_strategy(), model_dir, log=log)
    losses = trainer.train(progress=False)
    assert trainer.step == 3 and np.isfinite(losses["loss/main"])
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-3")
    kept = sorted(p.name for p in model_dir.glob("ckpt-*.index"))
    assert kept == ["ckpt-2.index", "ckpt-3.index"]  # the last two only
    assert json.loads((model_dir / "train_config.json").read_text())["steps"] == 3
    saved = keras.models.load_model(model_dir / "model.keras")
    for a, b in zip(saved.get_weights(), trainer.model.get_weights()):
        np.testing.assert_array_equal(a, b)

    tags = event_values(model_dir / "train")
    assert [s for s, _ in tags["loss/main"]] == [1, 2, 3]
    for tag in ("loss/total", "learning_rate", "steps_per_second", "validation/J", "samples"):
        assert tag in tags, tag
    np.testing.assert_allclose(float(tags["learning_rate"][-1][1]), 1e-4, rtol=1e-6)
    # Validation J at the last step: the mean IoU of the final model's masks on the validation batch.
    batch = source.batch(0, 2, seed=1)  # validation_batches=1 of batch_size 2, seed + 1
    logits = trainer.model(model_inputs(trainer.model, batch), training=False).numpy()
    pred, gt = logits > 0, batch["label"] > 0.5
    union = (pred | gt).sum(axis=(1, 2, 3))
    ious = np.where(union == 0, 1.0, (pred & gt).sum(axis=(1, 2, 3)) / np.maximum(union, 1))
    np.testing.assert_allclose(float(tags["validation/J"][-1][1]), ious.mean(), rtol=1e-6)
    layers = [conv.name for conv in modulation_layout(False)]
    assert layers[0] == "conv3_1" and layers[-1] == "conv5_3" and len(layers) == 9
    for layer in layers:
        for kind in ("visual_gamma", "spatial_scale"):
            history = tags[f"modulation/{kind}/{layer}"]
            assert [s for s, _ in history] == [0, 3]  # before training, and at the last step
            assert history[-1][1].shape[-1] == 3  # TF histograms: (left, right, count) buckets

    # A rerun with more steps continues from the checkpoint: weights, optimizer and step.
    log = io.StringIO()
    again = Trainer(tiny_train_config(synthetic_root, steps=5), source, tf.distribute.get_strategy(), model_dir, log=log)
    again.train(progress=False)
    assert "resumed from step 3" in log.getvalue()
    assert again.step == 5 and int(again.optimizer.iterations.numpy()) == 5
    assert sorted(p.name for p in model_dir.glob("ckpt-*.index")) == ["ckpt-4.index", "ckpt-5.index"]


def test_fix_seg_trains_only_the_modulators_and_fix_bn_keeps_statistics(synthetic_root, source, tmp_path):
    seg = tmp_path / "seg.keras"  # fix_seg keeps weights it is given
    build_osmn(width=0.125, guide_size=64).save(seg)
    config = tiny_train_config(synthetic_root, steps=1, fix_seg=True, fix_bn=True, model={"dropout_rate": 0.0},
                               seg_model_path=str(seg))
    trainer = Trainer(config, source, tf.distribute.get_strategy(), tmp_path / "run", log=None)
    seg_before = [w.copy() for w in trainer.model.segmentation_network.get_weights()]
    spatial_before = [w.copy() for w in trainer.model.spatial_modulator.get_weights()]
    visual_before = [w.copy() for w in trainer.model.visual_modulator.get_weights()]
    trainer.train(progress=False)
    for a, b in zip(seg_before, trainer.model.segmentation_network.get_weights()):
        np.testing.assert_array_equal(a, b)
    bn = trainer.model.spatial_modulator.get_layer("conv3_bn")
    spatial_after = dict(zip([w.path for w in trainer.model.spatial_modulator.weights],
                             trainer.model.spatial_modulator.get_weights()))
    for w, before in zip(trainer.model.spatial_modulator.weights, spatial_before):
        if w.path in (bn.moving_mean.path, bn.moving_variance.path):
            np.testing.assert_array_equal(spatial_after[w.path], before)
    assert any(not np.array_equal(a, b) for a, b in zip(visual_before, trainer.model.visual_modulator.get_weights()))
    # The spatial modulator trains too: its scale and shift convolutions move.
    trainable = {w.path for w in trainer.model.spatial_modulator.trainable_weights}
    moved = [w.path for w, before in zip(trainer.model.spatial_modulator.weights, spatial_before)
             if w.path in trainable and not np.array_equal(spatial_after[w.path], before)]
    assert any("kernel" in path for path in moved), moved


def test_accumulation_adds_the_micro_batches_gradients_and_the_visual_modulator_lr_is_multiplied(
        synthetic_root, source, tmp_path):
    lr, multiplier = 1e-3, 0.25
    config = tiny_train_config(synthetic_root, steps=1, accumulation=2, learning_rates=(lr,), model={"dropout_rate": 0.0},
                         weight_decay=0.0, visual_modulator_lr_multiplier=multiplier)
    trainer = Trainer(config, source, tf.distribute.get_strategy(), tmp_path / "a", log=None)
    reference = Trainer(config, source, tf.distribute.get_strategy(), tmp_path / "b", log=None)
    # fc8 starts at 0, which leaves the visual modulator's VGG16 without gradient in step 1.
    fc8 = np.random.default_rng(0).normal(0, 0.01, trainer.model.visual_modulator.get_layer("fc8").kernel.shape)
    for model in (trainer.model, reference.model):
        model.visual_modulator.get_layer("fc8").kernel.assign(fc8)
    before = [np.asarray(v).copy() for v in trainer.variables]
    for a, b in zip(before, reference.variables):
        np.testing.assert_array_equal(a, np.asarray(b))  # same seed, same start
    trainer.train(progress=False)

    gradients = None
    for index in (0, 1):  # micro-batches 0 and 1 make optimizer step 1
        batch = {k: tf.constant(v) for k, v in source.batch(index, 2, config.seed).items()}
        gradients, _, _ = reference._replica_gradients(batch, gradients)
    # Adam's first step (bias-corrected, TF1's "epsilon hat" form, as Keras):
    # lr * g / (|g| + eps / sqrt(1 - beta2)), eps = 1e-8, beta2 = 0.999.
    visual_modulator = trainer.model.visual_modulator
    multiplied = {id(v) for v in visual_modulator.trainable_variables} - {
        id(v) for v in visual_modulator.get_layer("fc8").trainable_variables}
    checked, checked_multiplied = 0, 0
    for variable, start, gradient in zip(trainer.variables, before, gradients):
        g = np.asarray(gradient, np.float64)
        clear = np.abs(g) > 1e-6
        rate = lr * multiplier if id(variable) in multiplied else lr
        checked_multiplied += int(clear.sum()) if id(variable) in multiplied else 0
        expected = -rate * g / (np.abs(g) + 1e-8 / np.sqrt(1 - 0.999))
        step = np.asarray(variable, np.float64) - start
        np.testing.assert_allclose(step[clear], expected[clear], rtol=2e-3, atol=1e-9, err_msg=variable.path)
        checked += int(clear.sum())
    assert checked > 1000 and checked_multiplied > 1000


def test_he_initialisation_gives_the_visual_modulator_features_of_order_one(synthetic_root, source, tmp_path):
    batch = source.batch(0, 4, seed=0)

    def fc7(trainer):
        visual_modulator = trainer.model.visual_modulator
        probe = keras.Model(visual_modulator.inputs, visual_modulator.get_layer("fc7").output)
        return np.asarray(probe({"guide_image": batch["guide_image"]}, training=False))

    he = Trainer(tiny_train_config(synthetic_root, visual_modulator_init="he"), source, tf.distribute.get_strategy(),
                 tmp_path / "he", log=None)
    glorot = Trainer(tiny_train_config(synthetic_root, visual_modulator_init="keras"), source,
                     tf.distribute.get_strategy(), tmp_path / "glorot", log=None)
    layers = {layer.name: layer for layer in he.model.visual_modulator.layers}
    for name in ("conv1_1", "conv3_2", "conv5_3", "fc6", "fc7"):
        kernel = np.asarray(layers[name].kernel)
        fan_in = np.prod(kernel.shape[:-1])
        expected = np.sqrt(2 / fan_in) / (GUIDE_PIXEL_SCALE if name == "conv1_1" else 1)
        assert abs(kernel.std() / expected - 1) < 0.15, name
    # One random stream: same-shaped layers differ.
    assert not np.array_equal(np.asarray(layers["conv5_2"].kernel), np.asarray(layers["conv5_3"].kernel))
    assert not np.asarray(layers["fc8"].kernel).any() and np.all(np.asarray(layers["fc8"].bias) == 1)
    # The segmentation network keeps Keras' initialisation.
    for a, b in zip(he.model.segmentation_network.get_weights(), glorot.model.segmentation_network.get_weights()):
        np.testing.assert_array_equal(a, b)
    he_mean, glorot_mean = fc7(he).mean(), fc7(glorot).mean()
    print(f"\nfc7 mean activation: he {he_mean:.3g}, keras {glorot_mean:.3g}")
    assert 0.05 < he_mean < 5 and glorot_mean < 0.05


# ----------------------------------------------------------------------------
# tools/train.py as users run it
# ----------------------------------------------------------------------------
def test_tool_resumes_after_sigkill(tmp_path):
    model_dir = tmp_path / "run"
    args = TINY_FLAGS + ["--model-dir", str(model_dir), "--steps", "200", "--checkpoint-every", "2"]
    latest = train_until_killed(TRAIN + args, model_dir)
    # ckpt-4's files may be written before the checkpoint list names it: the latest is 2 or later.
    assert latest >= 2
    result = run_tool_process("train", *TINY_FLAGS, *["--model-dir", str(model_dir), "--steps", str(latest + 1)])
    assert result.returncode == 0, result.stderr
    assert f"resumed from step {latest}" in result.stderr
    assert "pretrained" not in result.stderr  # the checkpoint holds the pretrained visual modulator
    assert tf.train.latest_checkpoint(str(model_dir)).endswith(f"ckpt-{latest + 1}")
    assert not list(model_dir.glob(".*partial*"))


def test_tool_reports_bad_input_clearly(tmp_path):
    result = run_tool_process("train", *["--dataset", "coco", "--model-dir", str(tmp_path / "a")])
    assert result.returncode != 0 and "needs a data root (--data-root)" in result.stderr
    missing = tmp_path / "nowhere"
    result = run_tool_process("train", *["--dataset", "davis", "--data-root", str(missing), "--model-dir", str(tmp_path / "b")])
    assert result.returncode != 0 and str(missing) in result.stderr
    result = run_tool_process("train", *TINY_FLAGS, *["--model-dir", str(tmp_path / "c"), "--init", str(tmp_path / "none.keras")])
    assert result.returncode != 0 and "none.keras" in result.stderr
    assert "Traceback" not in result.stderr


def test_tool_passes_the_sample_options_to_the_sources(tmp_path):
    model_dir = tmp_path / "run"
    result = run_tool_process("train", *TINY_FLAGS, *["--model-dir", str(model_dir), "--steps", "1", "--sg-center-perturb-ratio", "0.5",
                                    "--sg-std-perturb-ratio", "0.3", "--bbox-sup", "--no-random-guide",
                                    "--skip-blank-frames"])
    assert result.returncode == 0, result.stderr
    # TINY_FLAGS pretrain the visual modulator for 2 steps; --quiet reports it in lines.
    assert "pretrain step 2/2" in result.stderr and "pretrained the visual modulator for 2 steps" in result.stderr
    config = TrainConfig(**json.loads((model_dir / "train_config.json").read_text()))
    assert (config.sg_center_perturb_ratio, config.sg_std_perturb_ratio) == (0.5, 0.3)
    assert (config.bbox_sup, config.random_guide, config.skip_blank_frames) == (True, False, True)
    train, validation = make_sources(config, model_dir)
    for source in (train, validation):
        assert (source.spatial_perturb.center_ratio, source.spatial_perturb.scale_ratio) == (0.5, 0.3)
        assert (source.bbox_sup, source.random_guide, source.skip_blank_frames) == (True, False, True)
        # Without random guides every object's visual guide is its first visible frame (frame 0 here).
        name, object_id, _, _ = source.item(0)
        assert source.valid_frames(name, object_id) == [0]
    # The defaults are the release's: masked guides from random valid frames, every frame trained on.
    defaults = make_sources(TrainConfig(**{**json.loads((model_dir / "train_config.json").read_text()),
                                          "bbox_sup": False, "random_guide": True, "skip_blank_frames": False}),
                            model_dir)[0]
    assert (defaults.bbox_sup, defaults.random_guide, defaults.skip_blank_frames) == (False, True, False)
    tool = load_tool("train")
    crop = tool.make_config(tool.parse_args(["--stage", "coco", "--data-root", "x", "--random-crop-ratio", "0.1"]))
    assert crop.random_crop_ratio == 0.1 and tool.make_config(tool.parse_args([])).random_crop_ratio == 0.0
    result = run_tool_process("train", *TINY_FLAGS, *["--model-dir", str(tmp_path / "bad"), "--sg-std-perturb-ratio", "-1"])
    assert result.returncode != 0 and "sg_std_perturb_ratio must be >= 0, got -1.0" in result.stderr


def test_coco_source_gets_the_crop_ratio_and_bbox_sup(tmp_path, monkeypatch):
    from osmn_tf.training import experiment

    made = {}
    monkeypatch.setattr(experiment, "CocoSource", lambda *args, **kwargs: made.setdefault("kwargs", kwargs))
    config = TrainConfig(dataset="coco", data_root=str(tmp_path), random_crop_ratio=0.25, bbox_sup=True,
                         visual_modulator_pretrain_steps=0)
    make_sources(config, tmp_path)
    assert made["kwargs"]["random_crop_ratio"] == 0.25 and made["kwargs"]["bbox_sup"] is True


def test_presets_are_the_releases_stages():
    coco, davis = preset("coco", data_root="x"), preset("davis", data_root="x")
    assert (coco.learning_rates, coco.lr_boundaries, coco.steps, coco.batch_size) == ((1e-5, 1e-6), (200_000,),
                                                                                      300_000, 8)
    assert coco.model == davis.model == OSMNConfig()  # the paper's network: width 1, 224x224 guides
    assert coco.image_size == (400, 400) and not coco.fix_bn
    assert (davis.learning_rates, davis.steps, davis.batch_size, davis.fix_bn) == ((1e-6,), 50_000, 4, True)
    for stage in (coco, davis):  # options not in the release stay off in its stages
        assert not stage.model.mod_early_conv
        assert (stage.visual_modulator_init, stage.visual_modulator_lr_multiplier) == ("keras", 1.0)
        assert stage.visual_modulator_pretrain_steps == 0
        assert (stage.sg_center_perturb_ratio, stage.sg_std_perturb_ratio) == (0.2, 0.4)


def test_demo_preset_trains_the_visual_modulator_from_random_weights_and_flags_override_it():
    tool = load_tool("train")
    demo = tool.make_config(tool.parse_args([]))
    assert demo == preset("demo")
    assert demo.model == OSMNConfig(width=0.125, guide_size=64, mod_early_conv=True)
    assert (demo.visual_modulator_init, demo.visual_modulator_lr_multiplier) == ("he", 0.1)
    release = tool.make_config(tool.parse_args(["--no-mod-early-conv", "--visual-modulator-init", "keras",
                                                "--visual-modulator-lr-multiplier", "1"]))
    assert (release.model.mod_early_conv, release.visual_modulator_init, release.visual_modulator_lr_multiplier) == (
        False, "keras", 1.0)
    coco = tool.make_config(tool.parse_args(["--stage", "coco", "--data-root", "x", "--mod-early-conv"]))
    assert coco.model == OSMNConfig(mod_early_conv=True)
    ablation = tool.make_config(tool.parse_args(["--no-visual-modulator"]))
    # The demo's ablation keeps the rest of the demo's model.
    assert ablation.model == OSMNConfig(width=0.125, guide_size=64, mod_early_conv=True, use_visual_modulator=False)


# ----------------------------------------------------------------------------
# tf.distribute on CPU
# ----------------------------------------------------------------------------
def test_two_replicas_train_exactly_like_one_device(tmp_path):
    """MirroredStrategy over 2 logical CPUs: same losses and weights as one device with the same global batch.

    With a learning-rate multiplier, whose per-variable lookup must hold for mirrored variables too.
    """
    runs = {}
    for name, extra in (("one", ["--strategy", "one_device"]),
                        ("two", ["--strategy", "mirrored", "--cpu-replicas", "2"])):
        model_dir = tmp_path / name
        result = run_tool_process("train", *TINY_FLAGS, *["--model-dir", str(model_dir), "--steps", "3", "--log-every", "1",
                                        "--dropout", "0", "--lr", "1e-5", "--visual-modulator-init", "he",
                                        "--visual-modulator-lr-multiplier", "0.5"] + extra)
        assert result.returncode == 0, result.stderr
        runs[name] = model_dir
    assert "MirroredStrategy with 2 replica(s)" in result.stdout
    one, two = (event_values(runs[n] / "train")["loss/main"] for n in ("one", "two"))
    np.testing.assert_allclose([float(v) for _, v in two], [float(v) for _, v in one], rtol=1e-5)
    a = keras.models.load_model(runs["one"] / "model.keras").get_weights()
    b = keras.models.load_model(runs["two"] / "model.keras").get_weights()
    for x, y in zip(a, b):
        np.testing.assert_allclose(y, x, atol=1e-6)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_localhost_train_and_exit_cleanly(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    model_dir = tmp_path / "run"
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        # A worker whose peer died hangs and ignores SIGTERM: timeout -k kills it.
        command = ["timeout", "-k", "10", "300"] + TRAIN + TINY_FLAGS + [
            "--model-dir", str(model_dir), "--steps", "2", "--strategy", "multi_worker"]
        processes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env={**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}))
    outputs = [p.communicate() for p in processes]
    for index, (process, (out, err)) in enumerate(zip(processes, outputs)):
        assert process.returncode == 0, f"worker {index} exited with {process.returncode}:\n{err[-3000:]}"
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in outputs[0][0]
    assert tf.train.latest_checkpoint(str(model_dir)).endswith("ckpt-2")
    assert (model_dir / "model.keras").is_file()
    assert not (model_dir / "scratch" / "worker-1").exists()  # the other worker cleaned up


def test_data_benchmark_prints_data_and_training_rates():
    result = run_tool_process("benchmark_data", "--only", "davis", "--synthetic-sequences", "1",
                              "--synthetic-frames", "3", "--batches", "1", "--batch-size", "2", "--train-steps", "1",
                              "--width", "0.125")
    assert result.returncode == 0, result.stderr
    for line in ("1 process:", "tf.data parallel map:", "training, width 0.125:"):
        assert line in result.stdout, result.stdout
