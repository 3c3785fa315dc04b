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
