"""Pretraining the visual modulator to tell objects apart (`osmn_tf.training.pretrain`)."""
import io

import numpy as np
import pytest
import tensorflow as tf

from osmn_tf.config import OSMNConfig
from osmn_tf.data.davis import DavisDataset
from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.models.osmn import build_osmn
from osmn_tf.training.config import TrainConfig
from osmn_tf.training.pretrain import object_guides, pretrain_visual_modulator
from osmn_tf.training.samples import DavisTrainSource
from osmn_tf.training.trainer import Trainer, he_initialise_visual_modulator

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

SIZE = (64, 48)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_davis(root, SyntheticConfig(image_size=SIZE, num_frames=6), 2, split="train")
    return DavisTrainSource(root, split="train", image_size=SIZE, guide_size=64)


def test_object_guides_number_the_objects_and_hold_out_one_view_each(source):
    guides, labels, held_out = object_guides(source, views=4, seed=3)
    dataset = DavisDataset(source.dataset.root, 2017, "train")
    num_objects = sum(dataset.num_objects(name) for name in dataset.sequences)
    assert guides.dtype == np.float16 and guides.shape[1:] == (64, 64, 3)
    assert sorted(set(labels)) == list(range(num_objects))
    views = np.bincount(labels)
    expected_views = [min(4, len(source.valid_frames(seq.name, object_id)))
                      for seq in source.sequences for object_id in seq.object_ids]
    assert views.tolist() == expected_views
    assert np.bincount(labels[held_out], minlength=num_objects).tolist() == [int(v > 1) for v in views]
    again = object_guides(source, views=4, seed=3)
    np.testing.assert_array_equal(guides, again[0])


def test_pretraining_learns_to_tell_objects_apart_and_leaves_fc8_alone():
    """Three "objects" told apart by colour: the held-out views are classified right after training."""
    rng = np.random.default_rng(0)
    colours = np.array([[90.0, -60.0, -60.0], [-60.0, 90.0, -60.0], [-60.0, -60.0, 90.0]])
    labels = np.repeat(np.arange(3), 20).astype(np.int32)
    guides = (colours[labels][:, None, None, :] + rng.normal(0, 20, (60, 32, 32, 3))).astype(np.float16)
    held_out = np.zeros(60, bool)
    held_out[[19, 39, 59, 18, 38, 58]] = True
    model = build_osmn(width=0.125, guide_size=32)
    he_initialise_visual_modulator(model, seed=0)
    modulator = model.visual_modulator
    before = {layer.name: [np.asarray(w) for w in layer.weights] for layer in modulator.layers if layer.weights}
    untrained = pretrain_visual_modulator(modulator, guides, labels, held_out, steps=0, progress=False)
    accuracy = pretrain_visual_modulator(modulator, guides, labels, held_out, steps=150, seed=1, progress=False)
    print(f"\nheld-out accuracy: untrained {untrained:.2f}, after 150 steps {accuracy:.2f}")
    assert accuracy == 1.0
    after = {layer.name: [np.asarray(w) for w in layer.weights] for layer in modulator.layers if layer.weights}
    for name in ("conv1_1", "conv5_3", "fc6", "fc7"):
        assert not np.allclose(before[name][0], after[name][0]), name
    for a, b in zip(before["fc8"], after["fc8"]):
        np.testing.assert_array_equal(a, b)


def tiny(source, **changes):
    fields = dict(data_root=str(source.dataset.root), image_size=SIZE, model=OSMNConfig(width=0.125, guide_size=64),
                  batch_size=2, steps=1,
                  learning_rates=(1e-4,), lr_boundaries=(), checkpoint_every=1, log_every=1, image_every=1,
                  validate_every=1, validation_batches=1, eval_working_size=None, visual_modulator_pretrain_steps=3)
    return TrainConfig(**{**fields, **changes})


def test_trainer_pretrains_only_a_fresh_run_and_only_the_visual_modulators_features(source, tmp_path):
    strategy = tf.distribute.get_strategy()
    fresh = Trainer(tiny(source), source, strategy, tmp_path / "weights", log=None)
    before = fresh.model.get_weights()
    segmentation = fresh.model.segmentation_network.get_weights()
    accuracy = fresh.pretrain_visual_modulator(progress=False)
    # The share of the held-out guides classified right: a whole number of them.
    held_out = object_guides(source, seed=0)[2]
    assert held_out.sum() > 0 and 0 <= accuracy <= 1
    assert abs(accuracy * held_out.sum() - round(accuracy * held_out.sum())) < 1e-9
    changed = [not np.array_equal(a, b) for a, b in zip(before, fresh.model.get_weights())]
    assert any(changed)
    for a, b in zip(segmentation, fresh.model.segmentation_network.get_weights()):
        np.testing.assert_array_equal(a, b)
    fc8 = fresh.model.visual_modulator.get_layer("fc8")
    assert not np.asarray(fc8.kernel).any() and np.all(np.asarray(fc8.bias) == 1)

    log = io.StringIO()
    Trainer(tiny(source), source, strategy, tmp_path / "run", log=log).train(progress=False)
    assert "pretrained the visual modulator for 3 steps" in log.getvalue()
    log = io.StringIO()
    Trainer(tiny(source, steps=2), source, strategy, tmp_path / "run", log=log).train(progress=False)
    assert "resumed from step 1" in log.getvalue() and "pretrained" not in log.getvalue()
    log = io.StringIO()
    Trainer(tiny(source, init=str(tmp_path / "run" / "model.keras")), source, strategy, tmp_path / "init",
            log=log).train(progress=False)
    assert "pretrained" not in log.getvalue()


def test_pretraining_needs_sequences():
    with pytest.raises(ValueError, match="visual_modulator_pretrain_steps needs sequences"):
        TrainConfig(dataset="coco", data_root="x", visual_modulator_pretrain_steps=10)
    with pytest.raises(ValueError, match="visual_modulator_pretrain_steps must be >= 0"):
        TrainConfig(visual_modulator_pretrain_steps=-1)
