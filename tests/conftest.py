"""Shared test fixtures and helpers: the test data, running tools in-process, small models and videos."""
import importlib.util
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The original's numbers and real masks the tests check against (see `data/README.md`).
DATA = REPO / "tests" / "data"
# The tools' own modules (`cli_args`, `segment_run`) import as when a tool runs.
sys.path.insert(0, str(REPO / "tools"))


@pytest.fixture(scope="session")
def fidelity_frame():
    """The original's inputs and intermediates on one frame (`data/README.md`), keyed without prefix."""
    import numpy as np

    with np.load(DATA / "osmn_full_chelsea_97x131.npz") as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files}


# The base models' fixtures (data/README.md): file, key prefix, and the keys they share with
# osmn_full_chelsea_97x131.npz (bit-equal there, so stored once).
_INPUTS = ("raw_image", "raw_mask", "guide_image", "spatial_guide", "image", "visual_params")
BASE_MODEL_FIXTURES = {
    "lite": ("osmn_lite_chelsea_128x192.npz", "chelsea_128x192", ("raw_image", "raw_mask")),
    "deeplab": ("osmn_deeplab_chelsea_97x131.npz", "chelsea_97x131",
                _INPUTS + ("sp_conv3", "sp_conv4", "block2", "block3", "block4")),
    "masktrack": ("osmn_masktrack_chelsea_97x131.npz", "chelsea_97x131", _INPUTS),
    "masktrack_origmask_aligned": ("osmn_masktrack_chelsea_97x131.npz", "chelsea_97x131_origmask_aligned",
                                   tuple(k for k in _INPUTS if k != "spatial_guide")),
}


def base_model_fixture(case):
    """The original's inputs and intermediates for one case of `BASE_MODEL_FIXTURES`, keyed without prefix."""
    import numpy as np

    file, prefix, shared = BASE_MODEL_FIXTURES[case]
    with np.load(DATA / "osmn_full_chelsea_97x131.npz") as full:
        values = {key: full[f"chelsea_97x131/{key}"] for key in shared}
    with np.load(DATA / file) as data:
        values.update({key.split("/", 1)[1]: data[key] for key in data.files if key.split("/", 1)[0] == prefix})
    return values


@pytest.fixture(scope="session")
def tf1_checkpoint(tmp_path_factory):
    """Returns a function variant -> prefix of a checkpoint with the original's names.

    Each variant is written once per test session by `tf1_checkpoint.py` (about
    660 MB and 15 s each) into a temporary folder, in a subprocess so that its
    memory is returned at once.
    """
    import subprocess

    prefixes = {}

    def make(variant="full"):
        if variant not in prefixes:
            prefix = tmp_path_factory.mktemp(f"tf1_{variant}") / "osmn.ckpt"
            subprocess.run(
                [sys.executable, str(REPO / "tests" / "tf1_checkpoint.py"), str(prefix), "--variant", variant],
                check=True,
                capture_output=True,
            )
            prefixes[variant] = str(prefix)
        return prefixes[variant]

    return make


def pytest_configure(config):
    config.addinivalue_line("markers", "large: builds a full-size model (slow, lots of memory)")
    config.addinivalue_line("markers", "slow: left out of the fast tier (`pytest -m \"not slow\"`)")


def pytest_collection_modifyitems(items):
    # A full-size network is slow: `large` tests are out of the fast tier too.
    for item in items:
        if item.get_closest_marker("large") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def load_tool(name):
    """`tools/<name>.py` as a module (with `tools/` importable, as when the script runs)."""
    spec = importlib.util.spec_from_file_location(f"{name}_tool", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(name, *args):
    """Runs tools/<name>.py's main in this process; returns (exit code, message)."""
    try:
        load_tool(name).main([str(a) for a in args])
    except SystemExit as e:
        return (e.code if isinstance(e.code, int) else 1), str(e.code)
    return 0, ""


def run_tool_process(name, *args, env=None, timeout=600):
    """Runs tools/<name>.py as users do, in a fresh process from the repository root; a `CompletedProcess`."""
    import os
    import subprocess

    return subprocess.run([sys.executable, str(REPO / "tools" / f"{name}.py"), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})})


def synthetic_video(num_frames=5, size=(80, 60), seed=0):
    """Frames with three squares drifting right, and frame 0's ids (1, 2, 5: ids need not be consecutive)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    background = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    frames = []
    for t in range(num_frames):
        frame = background.copy()
        for x, y, colour in [(5, 5, (255, 0, 0)), (40, 10, (0, 255, 0)), (20, 35, (0, 0, 255))]:
            frame[y : y + 15, x + 2 * t : x + 2 * t + 15] = colour
        frames.append(frame)
    first = np.zeros((h, w), np.uint8)
    first[5:20, 5:20], first[10:25, 40:55], first[35:50, 20:35] = 1, 2, 5
    return frames, first


def write_frames(folder, frames, suffix=".png", quality=95):
    """Writes `frames` as `folder/00000<suffix>`, ... (a frame folder as users give one); returns `folder`."""
    from PIL import Image

    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{t:05d}{suffix}", quality=quality)
    return folder


def train_until_killed(command, model_dir, step=4, timeout=300):
    """Runs a training `command` and SIGKILLs it once a checkpoint of `step` or later exists; returns the newest
    checkpoint's step that TensorFlow lists."""
    import os
    import signal
    import subprocess
    import time

    import tensorflow as tf

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        deadline = time.time() + timeout
        # Any checkpoint: max_to_keep=2 deletes the older ones as training goes on.
        while max((int(p.stem.split("-")[1]) for p in model_dir.glob("ckpt-*.index")), default=0) < step:
            assert process.poll() is None, f"training ended before a checkpoint of step {step}"
            assert time.time() < deadline, f"no checkpoint of step {step} after {timeout} s"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return int(tf.train.latest_checkpoint(str(model_dir)).rsplit("-", 1)[1])


def assert_layer_round_trips(layer):
    """A custom layer's config survives `from_config` and Keras' (de)serialization (keras-hub's layer test)."""
    import keras

    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def assert_models_reload_in_a_fresh_process(models, folder):
    """Each `{name: (model, inputs)}` saved as `.keras`, loaded by `keras.models.load_model` in a new Python
    (nothing registered by hand), gives bit-equal outputs: a lost weight or config field shows."""
    import subprocess
    import textwrap

    import numpy as np

    expected = {}
    for name, (model, inputs) in models.items():
        expected[name] = np.asarray(model(inputs, training=False))
        assert expected[name].std() > 1e-4, f"{name}: outputs too flat to show a lost weight"
        model.save(folder / f"{name}.keras")
        np.savez(folder / f"{name}.npz", *inputs)
    script = textwrap.dedent(f"""
        import keras, numpy as np
        import osmn_tf
        for name in {list(models)!r}:
            model = keras.models.load_model({str(folder)!r} + f"/{{name}}.keras")
            assert type(model).__name__ == "OSMN", type(model)
            data = np.load({str(folder)!r} + f"/{{name}}.npz")
            inputs = [data[f"arr_{{i}}"] for i in range(len(data.files))]
            np.save({str(folder)!r} + f"/{{name}}.out.npy", np.asarray(model(inputs, training=False)))
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, outputs in expected.items():
        np.testing.assert_array_equal(np.load(folder / f"{name}.out.npy"), outputs, err_msg=name)


def assert_objects_together_equal_each_alone(segmenter, frames, first):
    """Each object's probabilities, segmented with the others in one batch, equal those of its video alone."""
    import numpy as np

    together = [r.probabilities for r in segmenter.track(frames, first)][1:]
    for k, object_id in enumerate(np.unique(first[first > 0])):
        alone = [r.probabilities for r in segmenter.track(frames, np.where(first == object_id, first, 0))][1:]
        for t, (a, b) in enumerate(zip(alone, together)):
            np.testing.assert_allclose(a[0], b[k], atol=2e-5, err_msg=f"object {object_id}, frame {t + 1}")
    # The probabilities are not trivially equal across objects (the test could fail).
    assert np.abs(together[0][0] - together[0][1]).max() > 1e-3


def randomize_weights(weights, std=0.05, seed=0, rng=None):
    """Gives `weights` (a model's, or a list of variables) random normal values, in place.

    BatchNorm variances get 1 added, so they stay positive. Non-default values
    everywhere make a weight lost on the way (saving, converting) change the outputs.
    `rng` (a numpy Generator) replaces `seed` to continue one random stream.
    """
    import numpy as np

    rng = np.random.default_rng(seed) if rng is None else rng
    for w in getattr(weights, "weights", weights):
        w.assign(rng.normal(0.0, std, w.shape).astype(w.dtype) + (1.0 if "variance" in w.path else 0.0))


def small_osmn(width=0.125, **options):
    """A small model whose outputs depend on both guides and vary across pixels (random but fixed weights).

    `options` are `osmn_tf.build_osmn`'s (e.g. `use_spatial_modulator=False`,
    `base_model="lite"`). A fresh fc8 has weights 0 and biases 1 (every object
    would get the same scales), and the fresh spatial modulator and side
    outputs barely move the output: those get random weights of a size that
    matters (`_SMALL_MODEL_KERNELS` for the other base models).
    """
    import keras
    import numpy as np

    import osmn_tf

    keras.utils.set_random_seed(3)
    model = osmn_tf.build_osmn(width=width, **options)
    rng = np.random.default_rng(3)
    base_model = model.config.base_model
    if base_model != "osvos":
        for network, std, names in _SMALL_MODEL_KERNELS[base_model]:
            if getattr(model, network) is not None:
                layers = [getattr(model, network).get_layer(name) for name in names]
                randomize_weights([layer.kernel for layer in layers], std, rng=rng)
        return model
    if model.visual_modulator is not None:
        randomize_weights([model.visual_modulator.get_layer("fc8").kernel], 0.05, rng=rng)
    if model.spatial_modulator is not None:
        randomize_weights([model.spatial_modulator.get_layer(f"conv{block}").kernel for block in (3, 4, 5)], 3.0,
                          rng=rng)
    seg = model.segmentation_network
    randomize_weights([seg.get_layer(name).kernel for name in ("conv2_2_16", "conv3_3_16", "conv4_3_16",
                                                                "conv5_3_16")], 0.02, rng=rng)
    randomize_weights([seg.get_layer("upscore-fuse").kernel], 1.0, rng=rng)
    return model


# small_osmn's random kernels for the other base models: (network, std, layers). Fresh heads give every
# object the same scales; fresh spatial maps and ASPP branches (N(0, 0.001)) barely move the logits.
_ASPP = [f"fc{i}_{k}" for k in range(1, 5) for i in (6, 7)]
_SMALL_MODEL_KERNELS = {
    "lite": [("visual_modulator", 0.05, ["Conv2d_1c_1x1", "Conv2d_out_1", "Conv2d_out_2", "Conv2d_out_3",
                                          "Conv2d_out_4"]),
             ("spatial_modulator", 3.0, ["conv3", "conv5", "conv11", "conv13"])],
    "deeplab": [("visual_modulator", 0.05, ["fc8"]), ("spatial_modulator", 3.0, ["conv3", "conv4", "conv5"]),
                ("segmentation_network", 0.1, _ASPP),
                ("segmentation_network", 1.0, [f"fc8_voc12_{k}" for k in range(1, 5)])],
    "masktrack": [("visual_modulator", 0.05, ["fc8"]), ("segmentation_network", 0.1, _ASPP),
                  ("segmentation_network", 1.0, [f"fc8_{k}" for k in range(1, 5)])],
}


@pytest.fixture(scope="session")
def small_model():
    """`small_osmn()`, built once per session (do not change its weights in a test)."""
    return small_osmn()


@pytest.fixture(scope="session")
def small_weights(small_model, tmp_path_factory):
    """`small_model` saved as a `.keras` file."""
    path = tmp_path_factory.mktemp("weights") / "small.keras"
    small_model.save(path)
    return path


def tiny_train_config(synthetic_root, model=None, **changes):
    """A `TrainConfig` that trains in seconds on `synthetic_root` (64x48 frames); `model`: `OSMNConfig` fields
    on top of width 0.125 and 64x64 guides, `changes`: `TrainConfig` fields."""
    from osmn_tf.config import OSMNConfig
    from osmn_tf.training.config import TrainConfig

    fields = dict(data_root=str(synthetic_root), image_size=(64, 48),
                  model=OSMNConfig(**{"width": 0.125, "guide_size": 64, **(model or {})}), batch_size=2, steps=3,
                  learning_rates=(1e-4,), lr_boundaries=(), checkpoint_every=1, log_every=1, image_every=3,
                  validate_every=3, validation_batches=1, eval_working_size=None)
    return TrainConfig(**{**fields, **changes})


def route_to_saved_model(loaded):
    """Stands in for the HTTP hop: a request body in, the response body TF Serving's REST API would give out.

    The body goes through JSON text both ways, as over the wire; the signature runs
    in this process with `tf.saved_model.load` (no TF Serving binary can be installed here).
    """
    import json

    import tensorflow as tf

    dtypes = {"frame": tf.uint8, "masks": tf.uint8}
    calls, bodies = [], []

    def send(body):
        body = json.loads(json.dumps(body))
        calls.append(body["signature_name"])
        bodies.append(body)
        signature = loaded.signatures[body["signature_name"]]
        out = signature(**{k: tf.constant(v, dtype=dtypes.get(k, tf.float32)) for k, v in body["inputs"].items()})
        out = {k: v.numpy().tolist() for k, v in out.items()}
        # Columnar format: a single output is not named.
        response = {"outputs": next(iter(out.values())) if len(out) == 1 else out}
        return json.loads(json.dumps(response))

    send.calls, send.bodies = calls, bodies  # signature names; request bodies
    return send
