"""Shared test fixtures and helpers: the test data, running tools in-process, small models and videos."""
import importlib.util
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The original's numbers and real masks the tests check against (see `data/README.md`).
DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def fidelity_frame():
    """The original's inputs and intermediates on one frame (`data/README.md`), keyed without prefix."""
    import numpy as np

    with np.load(DATA / "osmn_full_chelsea_97x131.npz") as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files}


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
    config.addinivalue_line("markers", "large: builds the full-size VGG16 model (slow, lots of memory)")


def load_tool(name):
    """`tools/<name>.py` as a module (with `tools/` importable, as when the script runs)."""
    if str(REPO / "tools") not in sys.path:
        sys.path.insert(0, str(REPO / "tools"))
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


def small_osmn(width=0.125):
    """A small model whose outputs depend on both guides and vary across pixels (random but fixed weights)."""
    import keras
    import numpy as np

    import osmn_tf

    keras.utils.set_random_seed(3)
    model = osmn_tf.build_osmn(width=width)
    rng = np.random.default_rng(3)

    def scale(variable, std):
        variable.assign(rng.normal(0, std, variable.shape).astype("float32"))

    scale(model.visual_modulator.get_layer("fc8").kernel, 0.05)
    for block in (3, 4, 5):
        scale(model.spatial_modulator.get_layer(f"conv{block}").kernel, 3.0)
    seg = model.segmentation_network
    for name in ("conv2_2_16", "conv3_3_16", "conv4_3_16", "conv5_3_16"):
        scale(seg.get_layer(name).kernel, 0.02)
    scale(seg.get_layer("upscore-fuse").kernel, 1.0)
    return model
