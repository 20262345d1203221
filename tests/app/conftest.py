from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.settings import Settings


def tiny_settings(bundle: Path, **overrides: object) -> Settings:
    """Service settings for a test bundle: CPU provider, one ONNX Runtime thread."""
    return Settings(
        bundle_dir=bundle, providers=["CPUExecutionProvider"], intra_op_threads=1, **overrides
    )


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator[TestClient]:
    """The service on the tiny test bundle, started and stopped around one test."""
    from app.main import create_app

    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        yield c


def assert_problem(r, status: int, *words: str) -> dict:
    """``r`` is a problem document with ``status`` whose text holds each of ``words``
    (case-insensitive) -> its JSON body."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json")
    text = r.text.lower()
    for w in words:
        assert w.lower() in text, (w, r.text[:500])
    return r.json()
