"""A 64^3 bundle end to end on a tiny model: every output format, the voxel upload, a photo,
and the meshing-work limit counted at the bundle's own resolution (a 64^3 shape is eight
32^3 ones)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image

from app.encoding import unpack_json
from app.main import create_app
from app.schemas import MAX_MESH_WORK
from tests.app.conftest import assert_problem, tiny_settings
from tests.tiny_bundle import make_tiny_bundle

R = 64


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    bundle = tmp_path_factory.mktemp("r64") / "bundle"
    make_tiny_bundle(bundle, r=R, z=8)
    with TestClient(create_app(tiny_settings(bundle))) as c:
        yield c


def _sample(c: TestClient, fmt: str, **output):
    body = {"seeds": [3], "temperature": 0.3, "output": {"format": fmt, **output}}
    r = c.post("/v1/sample", json=body)
    assert r.status_code == 200, r.text[:300]
    return r


def test_the_model_says_its_resolution(client: TestClient) -> None:
    assert client.get("/v1/model").json()["voxel_resolution"] == R


@pytest.mark.parametrize("fmt", ["glb", "obj", "ply", "stl"])
def test_meshes_at_64(client: TestClient, fmt: str) -> None:
    # the tiny generator is noise: a high threshold keeps its mesh small
    r = _sample(client, fmt, threshold=0.97)
    mesh = trimesh.load(io.BytesIO(r.content), file_type=fmt, force="mesh")
    assert len(mesh.faces) > 0 and np.abs(mesh.vertices).max() <= 1.01  # smoothing may overshoot


def test_voxels_at_64(client: TestClient) -> None:
    probs = np.load(io.BytesIO(_sample(client, "npy").content))
    assert probs.shape == (R, R, R) and probs.dtype == np.float32
    occupancy = unpack_json(json.loads(_sample(client, "json").content))
    assert occupancy.shape == (R, R, R)
    assert b"\ndim 64 64 64\n" in _sample(client, "binvox").content[:80]


def test_uploads_at_64(client: TestClient) -> None:
    grid = np.zeros((R, R, R), np.uint8)
    grid[16:48, 8:56, 20:44] = 1
    buf = io.BytesIO()
    np.save(buf, grid)
    r = client.post("/v1/encode", files={"shape": ("box.npy", buf.getvalue())})
    assert r.status_code == 200 and r.json()["resolution"] == R
    img = Image.new("RGB", (96, 96), "white")
    img.paste((30, 60, 200), (30, 20, 70, 80))
    png = io.BytesIO()
    img.save(png, "PNG")
    files = {"image": ("box.png", png.getvalue(), "image/png")}
    r = client.post("/v1/reconstruct", files=files, data={"output": '{"format": "npy"}'})
    assert r.status_code == 200 and np.load(io.BytesIO(r.content)).shape == (R, R, R)


def test_mesh_work_counts_the_bundles_resolution(client: TestClient) -> None:
    # 16 shapes at upsample 2 pass the body's check (16 x 8 = 128 at 32^3) but are 16 x 64
    # = 1024 units at 64^3
    body = {"n": 16, "output": {"format": "glb", "upsample": 2}}
    assert_problem(client.post("/v1/sample", json=body), 422, "64^3", str(MAX_MESH_WORK))
