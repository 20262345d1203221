from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny_bundle import make_tiny_bundle

# Services under test mesh in threads unless a test asks for worker processes (tests/app/
# test_meshpool.py): spawning two workers per app would add seconds to each of hundreds of tests
os.environ.setdefault("GAN3D_MESH_WORKERS", "0")


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    make_tiny_bundle(out)
    return out


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` procedural dataset, built once per test session."""
    from training.data.procedural import DATA_PRESETS, build

    root = tmp_path_factory.mktemp("data")
    build(DATA_PRESETS["tiny"], root, workers=1)
    return root
