"""Training with each base model (issue 27): `--base-model`, `--fix-seg` with `--seg-model-path` /
`--vis-mod-model-path`, fix_bn over lite's MobileNets, lite's pixel scale, summaries per base model.

Tiny synthetic set (64x64 frames: lite needs multiples of 32), width 0.125.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import load_tool, run_tool, tiny_train_config
from osmn_tf.config import BASE_MODELS, DEFAULT_INPUT_SCALE, modulation_layout
from osmn_tf.data.synthetic import SyntheticConfig, write_davis
from osmn_tf.models.osmn import build_osmn
from osmn_tf.training.config import DEMO_MODELS, preset
from osmn_tf.training.samples import DavisTrainSource
from osmn_tf.training.summaries import TrainingSummaries
from osmn_tf.training.freezing import batch_norm_layers
from osmn_tf.training.trainer import Trainer
from osmn_tf.weights.checkpoints import saved_config
from osmn_tf.weights.networks import load_network_weights

# Each test trains, runs a tool end to end or builds full-size networks.
pytestmark = pytest.mark.slow

SIZE = (64, 64)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    config = SyntheticConfig(image_size=SIZE, num_frames=5)
    write_davis(root, config, 2, split="train")
    return root


@pytest.fixture(scope="module")
def source(synthetic_root):
    return DavisTrainSource(synthetic_root, split="train", image_size=SIZE, scales=(1.0,), guide_size=64)


def train_config(synthetic_root, base_model, model=None, **changes):
    return tiny_train_config(synthetic_root, model={"base_model": base_model, "dropout_rate": 0.0, **(model or {})},
                             image_size=SIZE, steps=1, **changes)


def saved_model(tmp_path, name, **options):
    """A `.keras` OSMN of width 0.125 with random weights (a segmentation network to fix, or a modulator to load)."""
    from conftest import randomize_weights

    model = build_osmn(width=0.125, guide_size=64, **options)
    randomize_weights(model, seed=len(name))
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return model, path


# (base model, model options): the visual modulator on a fixed network, as MaskTrack-M and OSVOS-M
# (lite cannot drop its spatial modulator alone: it trains beside the visual one, as the release's).
FIX_SEG_CASES = [("osvos", {"use_spatial_modulator": False}), ("masktrack", {}), ("lite", {})]


@pytest.mark.slow
@pytest.mark.parametrize("base_model, options", FIX_SEG_CASES)
def test_fix_seg_trains_the_modulators_on_the_segmentation_network_it_loads(base_model, options, synthetic_root,
                                                                            source, tmp_path):
    # An OSVOS / MaskTrack network is an OSMN model without modulators (lite: the segmentation network of one).
    network_options = {} if base_model == "lite" else {"use_visual_modulator": False, "use_spatial_modulator": False}
    fixed, seg_path = saved_model(tmp_path, "seg", base_model=base_model, **network_options)
    modulator, vis_path = saved_model(tmp_path, "vis", base_model=base_model, **options)
    config = train_config(synthetic_root, base_model, options, fix_seg=True, seg_model_path=str(seg_path),
                          vis_mod_model_path=str(vis_path))
    trainer = Trainer(config, source, tf.distribute.get_strategy(), tmp_path / "run", log=None)
    loaded = trainer.model.segmentation_network.get_weights()
    for a, b in zip(fixed.segmentation_network.get_weights(), loaded):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(modulator.visual_modulator.get_weights(), trainer.model.visual_modulator.get_weights()):
        np.testing.assert_array_equal(a, b)
    visual_before = trainer.model.visual_modulator.get_weights()
    trainer.train(progress=False)
    for a, b in zip(loaded, trainer.model.segmentation_network.get_weights()):
        np.testing.assert_array_equal(a, b)  # fails if any weight of the segmentation network moved
    assert any(not np.array_equal(a, b) for a, b in zip(visual_before, trainer.model.visual_modulator.get_weights()))


def test_fix_seg_without_the_segmentation_networks_weights_is_refused(synthetic_root):
    with pytest.raises(ValueError, match="seg_model_path"):
        train_config(synthetic_root, "masktrack", fix_seg=True)


def test_load_network_weights_refuses_another_base_model_or_width(tmp_path):
    _, path = saved_model(tmp_path, "osvos")
    with pytest.raises(ValueError, match="base_model 'osvos' in the file, 'masktrack' asked"):
        load_network_weights(build_osmn(width=0.125, guide_size=64, base_model="masktrack"), path,
                             "segmentation_network")
    with pytest.raises(ValueError, match="width 0.125 in the file, 0.25 asked"):
        load_network_weights(build_osmn(width=0.25, guide_size=64), path, "visual_modulator")
    with pytest.raises(ValueError, match="has no visual_modulator"):
        load_network_weights(build_osmn(width=0.125, guide_size=64, use_visual_modulator=False), path,
                             "visual_modulator")


@pytest.mark.slow
@pytest.mark.parametrize("fix_bn", [True, False])
def test_fix_bn_keeps_the_statistics_of_lites_mobilenets(fix_bn, synthetic_root, source, tmp_path):
    trainer = Trainer(train_config(synthetic_root, "lite", fix_bn=fix_bn), source, tf.distribute.get_strategy(),
                      tmp_path / "run", log=None)
    layers = batch_norm_layers(trainer.model)
    model = trainer.model
    # Both MobileNets' and the spatial modulator's.
    networks = (model.segmentation_network, model.visual_modulator, model.spatial_modulator)
    expected = [layer for network in networks for layer in network.layers
                if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(expected) > 27 and {id(layer) for layer in layers} == {id(layer) for layer in expected}
    before = [(layer.path, np.array(layer.moving_mean), np.array(layer.gamma)) for layer in layers]
    trainer.train(progress=False)
    moved = [path for (path, mean, gamma), layer in zip(before, layers)
             if not (np.array_equal(mean, layer.moving_mean) and np.array_equal(gamma, layer.gamma))]
    if fix_bn:
        assert moved == []
    else:
        assert len(moved) == len(layers)


def test_lite_trains_at_its_pixel_scale(synthetic_root, source, tmp_path):
    from osmn_tf.training.pipeline import model_inputs

    batch = source.batch(0, 2, 0)
    for base_model, scale in (("lite", DEFAULT_INPUT_SCALE["lite"]), ("osvos", 1.0)):
        model = Trainer(train_config(synthetic_root, base_model), source, tf.distribute.get_strategy(),
                        tmp_path / base_model, log=None).model
        # The sources normalise at scale 1; what reaches the network is at the model's scale, as when segmenting.
        inputs = dict(zip([t.name.split(":")[0] for t in model.inputs], model_inputs(model, batch)))
        for key in ("image", "guide_image"):
            np.testing.assert_allclose(np.asarray(inputs[key]), batch[key] * scale, rtol=1e-6)
        np.testing.assert_array_equal(np.asarray(inputs["spatial_guide"]), batch["spatial_guide"])


@pytest.mark.parametrize("base_model", BASE_MODELS)
def test_summaries_histogram_every_modulated_layer_of_each_base_model(base_model, source, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = build_osmn(width=0.125, guide_size=64, base_model=base_model)
    batch = {k: v * DEFAULT_INPUT_SCALE[base_model] if k in ("image", "guide_image") else v
             for k, v in source.batch(0, 2, 0).items()}
    summaries = TrainingSummaries(tmp_path / "train")
    summaries.probe(0, model, batch, np.zeros_like(batch["label"]), scale=DEFAULT_INPUT_SCALE[base_model])
    summaries.flush()
    events = EventAccumulator(str(tmp_path / "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    layers = [conv.name for conv in modulation_layout(False, 0.125, base_model)]
    assert {f"modulation/visual_gamma/{layer}" for layer in layers} <= tags
    spatial = {f"modulation/spatial_scale/{layer}" for layer in layers}
    assert spatial <= tags if base_model != "masktrack" else not spatial & tags
    if base_model == "lite":
        assert "modulation/visual_gamma/Conv2d_13_pointwise" in tags


# ----------------------------------------------------------------------------
# tools/train.py
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("base_model", BASE_MODELS)
def test_demo_has_a_model_of_each_base_model(base_model):
    tool = load_tool("train")
    config = tool.make_config(tool.parse_args(["--base-model", base_model]))
    assert config.model == DEMO_MODELS[base_model] and config.model.base_model == base_model
    assert config == preset("demo", model={"base_model": base_model})
    stage = tool.make_config(tool.parse_args(["--stage", "coco", "--data-root", "x", "--base-model", base_model]))
    assert (stage.model.base_model, stage.model.width) == (base_model, 1.0)


def test_lite_demo_is_mobilenet_without_vgg16_options():
    demo = preset("demo", model={"base_model": "lite"})
    assert (demo.model.width, demo.model.mod_early_conv, demo.visual_modulator_init) == (0.25, False, "keras")
    with pytest.raises(ValueError, match="visual_modulator_init 'he'"):
        demo.replace(visual_modulator_init="he")


def test_base_model_comes_from_init_and_a_contradicting_flag_is_one_line(tmp_path):
    _, lite = saved_model(tmp_path, "lite", base_model="lite")
    assert saved_config(lite).base_model == "lite"
    tool = load_tool("train")
    config = tool.make_config(tool.parse_args(["--init", str(lite), "--width", "0.125"]))
    assert config.model.base_model == "lite"
    code, message = run_tool("train", "--base-model", "osvos", "--init", lite, "--model-dir", tmp_path / "run")
    assert code != 0 and "\n" not in message
    assert message.startswith("error: --base-model osvos contradicts --init") and "holds a lite model" in message
    code, message = run_tool("train", "--base-model", "osvos", "--fix-seg", "--seg-model-path", lite,
                             "--model-dir", tmp_path / "run")
    assert code != 0 and "--seg-model-path" in message and "\n" not in message


def test_the_tools_base_models_are_the_configs():
    import cli_args

    assert cli_args.BASE_MODELS == BASE_MODELS
