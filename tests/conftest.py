"""Shared test fixtures: where `../shared` lives."""
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIDELITY = SHARED / "fidelity"


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} is missing: the fidelity data must sit beside the repository")
    return SHARED


@pytest.fixture(scope="session")
def fidelity_frame(shared_dir):
    """The original's inputs and intermediates on one frame (`fidelity/README.md`), keyed without prefix."""
    import numpy as np

    with np.load(FIDELITY / "osmn_full_chelsea_97x131.npz") as data:
        return {key.split("/", 1)[1]: data[key] for key in data.files}


@pytest.fixture(scope="session")
def tf1_checkpoint(tmp_path_factory, shared_dir):
    """Returns a function variant -> prefix of a checkpoint with the original's names.

    Each variant is written once per test session by the fixture script in
    `../shared/fidelity` (about 660 MB and 15 s each) into a temporary folder.
    """
    import subprocess
    import sys

    prefixes = {}

    def make(variant="full"):
        if variant not in prefixes:
            prefix = tmp_path_factory.mktemp(f"tf1_{variant}") / "osmn.ckpt"
            subprocess.run(
                [sys.executable, str(FIDELITY / "make_tf1_checkpoint.py"), str(prefix), "--variant", variant],
                check=True,
                capture_output=True,
            )
            prefixes[variant] = str(prefix)
        return prefixes[variant]

    return make


def pytest_configure(config):
    config.addinivalue_line("markers", "large: builds the full-size VGG16 model (slow, lots of memory)")
