"""Meshing in worker processes: the same bytes as in-process, and a dead worker loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.meshpool import MeshPool, encode_one
from app.schemas import Output
from tests.app.conftest import tiny_settings


def _blobs(n: int) -> np.ndarray:
    """n smooth random probability grids [n, 16, 16, 16] float32 in [0, 1]."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    raw = rng.random((n, 16, 16, 16)).astype(np.float32)
    return np.stack([ndimage.gaussian_filter(g, 1.5) for g in raw]) * 2 - 0.4


@pytest.fixture(scope="module")
def pool() -> MeshPool:
    p = MeshPool(2)
    p.start_warm_up()
    p.wait_warm()
    yield p
    p.close()


@pytest.mark.parametrize("fmt", ["glb", "obj", "stl", "npy"])
def test_workers_give_the_bytes_meshing_in_process_gives(pool: MeshPool, fmt: str) -> None:
    probs = _blobs(5)
    out = Output(format=fmt, upsample=2, smooth_iterations=1)
    got = asyncio.run(pool.encode(probs, out, 0.5))
    want = [encode_one(p, out, 0.5) for p in probs]
    assert got == want and all(g is not None for g in got)


def test_an_empty_shape_stays_empty_through_the_workers(pool: MeshPool) -> None:
    probs = np.zeros((2, 16, 16, 16), np.float32)
    probs[1] = _blobs(1)[0]
    got = asyncio.run(pool.encode(probs, Output(), 0.5))
    assert got[0] is None and got[1] is not None


def test_a_killed_worker_is_replaced_and_its_request_still_answered(tiny_bundle: Path) -> None:
    app = create_app(tiny_settings(tiny_bundle, mesh_workers=2))
    with TestClient(app) as c:
        mesher = app.state.gan3d.loaded.mesher
        before = c.post("/v1/sample", json={"seeds": [4, 5, 6]})
        assert before.status_code == 200
        pids = mesher.worker_pids()
        assert len(pids) == 2 and os.getpid() not in pids
        os.kill(pids[0], signal.SIGKILL)
        after = c.post("/v1/sample", json={"seeds": [4, 5, 6]})
        assert after.status_code == 200 and after.content == before.content
        assert mesher.restarts == 1
        again = c.post("/v1/sample", json={"seeds": [4, 5, 6]})
        assert again.content == before.content
        assert not set(mesher.worker_pids()) & set(pids)
        metrics = c.get("/metrics").text
        assert "gan3d_mesh_workers 2.0" in metrics
        assert "gan3d_mesh_pool_restarts_total 1.0" in metrics


def test_the_service_answers_the_same_bytes_with_and_without_workers(tiny_bundle: Path) -> None:
    body = {"keyframes": [{"seed": 1}, {"seed": 2}], "steps": 4, "output": {"format": "glb"}}
    answers = []
    for workers in (0, 2):
        with TestClient(create_app(tiny_settings(tiny_bundle, mesh_workers=workers))) as c:
            r = c.post("/v1/interpolate", json=body)
            assert r.status_code == 200
            answers.append(r.content)
    assert answers[0] == answers[1]
