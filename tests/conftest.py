from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_bundle import make_tiny_bundle


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    make_tiny_bundle(out)
    return out
