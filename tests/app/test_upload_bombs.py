"""Uploads that once stalled, bloated or crashed the service (voxel, mesh and image bombs)
now get a clear 4xx (issue 13)."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from app.bundle import ManifestError, load_manifest
from app.voxelize import MAX_UPLOAD_TRIANGLES, ShapeFileError, _split_triangles, voxelize_mesh
from tests.app.conftest import assert_problem as _problem

Z = 8


@pytest.mark.parametrize("side", [0, 1])
def test_zero_size_and_tiny_voxel_uploads(client: TestClient, side: int) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ones((side,) * 3, np.uint8))
    files = {"shape": ("v.npy", buf.getvalue(), "application/octet-stream")}
    r = client.post("/v1/encode", files=files)
    if side == 0:
        _problem(r, 400, "side of 1")
    else:
        assert r.status_code == 200, r.text


def test_zero_size_binvox_is_a_clear_error(client: TestClient) -> None:
    data = b"#binvox 1\ndim 0 0 0\ntranslate 0 0 0\nscale 1\ndata\n"
    files = {"shape": ("v.binvox", data, "application/octet-stream")}
    assert 400 <= client.post("/v1/encode", files=files).status_code < 500


def _binvox(side: int, voxels: int) -> bytes:
    """A binvox file declaring ``side``^3 voxels whose run-length data holds ``voxels``, all
    occupied: 255 voxels per 2 bytes, so a few MB can stand for a billion voxels."""
    pairs = -(-voxels // 255)
    rle = np.empty(2 * pairs, np.uint8)
    rle[0::2], rle[1::2] = 1, 255
    rle[-1] = voxels - 255 * (pairs - 1)
    header = f"#binvox 1\ndim {side} {side} {side}\ntranslate 0 0 0\nscale 1\ndata\n"
    return header.encode() + rle.tobytes()


@pytest.mark.parametrize(
    ("side", "voxels", "message"),
    [(1024, 1024**3, "side of 1 to 256"), (64, 1024**3, "does not fill the 262,144 voxels")],
)
def test_binvox_run_length_bombs_are_refused_before_decoding(
    client: TestClient, side: int, voxels: int, message: str
) -> None:
    """8.4 MB (within the upload limit) of run-length data for 1024^3 voxels decoded to 1.2 GB
    in the upload thread before its side was checked."""
    data = _binvox(side, voxels)
    assert len(data) < 10 * 2**20
    tracemalloc.start()
    try:
        r = client.post("/v1/encode", files={"shape": ("v.binvox", data, "application/x-binvox")})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    _problem(r, 400, message)
    assert peak < 100 * 2**20  # the file's bytes a few times over, never the decoded grid


def test_a_binvox_grid_at_the_largest_side_is_encoded(client: TestClient) -> None:
    files = {"shape": ("v.binvox", _binvox(256, 256**3), "application/x-binvox")}
    assert client.post("/v1/encode", files=files).status_code == 200


def _with_json(glb: bytes, edit) -> bytes:
    """A GLB with its JSON chunk changed by ``edit(doc)``."""
    (length,) = struct.unpack_from("<I", glb, 12)
    doc, binary = json.loads(glb[20 : 20 + length]), glb[20 + length :]
    edit(doc)
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    out = struct.pack("<III", 0x46546C67, 2, 20 + len(js) + len(binary))
    return out + struct.pack("<II", len(js), 0x4E4F534A) + js + binary


def test_glb_placeholder_arrays_are_refused_before_reading(client: TestClient) -> None:
    """A GLB accessor without data in the file is zero-filled at its declared count: 432 bytes
    declaring 20 M vertices took 12 s and 4.7 GB before the empty mesh was refused."""
    n = 20_000_000

    def zeros(doc: dict) -> None:  # the same mesh, its arrays without data: zeros
        doc["accessors"] = [
            {"componentType": 5126, "count": n, "type": "VEC3"},
            {"componentType": 5125, "count": 3 * n, "type": "SCALAR"},
        ]
        doc["meshes"] = [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}]

    box = trimesh.Scene([trimesh.creation.box()]).export(file_type="glb")
    data = _with_json(box, zeros)
    r = client.post("/v1/encode", files={"shape": ("zeros.glb", data, "model/gltf-binary")})
    _problem(r, 400, "accessors declare 480,000,000 bytes")


def test_glb_textures_are_not_decoded(client: TestClient, monkeypatch) -> None:
    """Only geometry is voxelised: a texture is an image trimesh would decode (two 8000 x 8000
    ones in a 0.2 MB GLB took 3.4 s and 730 MB)."""
    meshes = []
    for k in range(2):
        box = trimesh.creation.box(extents=(1, 1, 1))
        box.apply_translation((2 * k, 0, 0))
        uv = np.random.default_rng(k).random((len(box.vertices), 2))
        material = trimesh.visual.material.SimpleMaterial(image=Image.new("RGB", (64, 64), "red"))
        box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        meshes.append(box)
    data = trimesh.Scene(meshes).export(file_type="glb")
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im) or load(im))
    r = client.post("/v1/encode", files={"shape": ("boxes.glb", data, "model/gltf-binary")})
    assert r.status_code == 200, r.text
    assert decoded == []


def test_glb_instancing_is_counted_before_the_instances_are_joined(client: TestClient) -> None:
    """55 KB placing one 1,280-triangle sphere at 2,000 nodes joined to 2.6 M triangles, whose
    voxelisation ran for minutes."""
    sphere = trimesh.Scene([trimesh.creation.icosphere(subdivisions=3)]).export(file_type="glb")

    def place(doc: dict) -> None:
        doc["nodes"] = [{"mesh": 0}] * 2000
        doc["scenes"] = [{"nodes": list(range(2000))}]

    data = _with_json(sphere, place)
    r = client.post("/v1/encode", files={"shape": ("many.glb", data, "model/gltf-binary")})
    _problem(r, 400, "2,560,000 triangles (instances counted)", "1,000,000")


def test_long_triangles_are_refused_before_the_voxeliser_splits_them() -> None:
    """Trimesh's voxeliser splits every triangle until its edges are shorter than a voxel:
    4,000 random triangles across a 195 KB STL became ~20 M (36 s, 5.5 GB). The service's
    limit is on that count, estimated before voxelising, as an upper bound of the split."""
    rng = np.random.default_rng(0)
    mesh = trimesh.Trimesh(rng.uniform(-1, 1, (3000, 3)), np.arange(3000).reshape(1000, 3))
    with pytest.raises(ShapeFileError, match="would be split into about 1,2"):
        voxelize_mesh(mesh, 32, max_triangles=MAX_UPLOAD_TRIANGLES)
    small = trimesh.Trimesh(mesh.vertices[:60] * 0.3, np.arange(60).reshape(20, 3))
    pitch = 0.1
    _, faces = trimesh.remesh.subdivide_to_size(small.vertices, small.faces, pitch, max_iter=20)
    assert len(faces) <= _split_triangles(small.triangles, pitch) <= 4 * len(faces)
    ball = trimesh.creation.icosphere(subdivisions=4)  # ordinary geometry: far below the limit
    assert voxelize_mesh(ball, 32, max_triangles=MAX_UPLOAD_TRIANGLES).any()


def test_long_thin_images_are_refused(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (30000, 1), "white").save(buf, "PNG")
    files = {"image": ("strip.png", buf.getvalue(), "image/png")}
    _problem(client.post("/v1/reconstruct", files=files), 400, "8:1")


def test_wide_photo_within_the_aspect_limit_is_cropped_without_a_huge_canvas(
    client: TestClient,
) -> None:
    img = Image.new("RGB", (4000, 500), "white")
    img.paste((120, 60, 30), (100, 100, 3900, 400))  # an object spanning the width
    buf = io.BytesIO()
    img.save(buf, "PNG")
    r = client.post("/v1/reconstruct", files={"image": ("wide.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200, r.text


def test_latin1_obj_is_read(client: TestClient) -> None:
    obj = (
        "# mod\xe8le en Latin-1\n"
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    ).encode("latin-1")
    r = client.post("/v1/encode", files={"shape": ("m.obj", obj, "text/plain")})
    assert r.status_code == 200, r.text


def test_manifest_that_is_not_utf8_is_a_manifest_error(tmp_path: Path, tiny_bundle: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(b'{"name": "\xff\xfe"}')
    with pytest.raises(ManifestError, match="UTF-8"):
        load_manifest(tmp_path)
