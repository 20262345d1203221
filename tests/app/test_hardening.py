"""Requests that once stalled, bloated or crashed the service now get a clear 4xx (issue 13)."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from PIL import Image, ImageFile

from app.bundle import ManifestError, load_manifest
from app.main import create_app
from app.schemas import MAX_LATENTS, MAX_MESH_WORK
from app.voxelize import MAX_UPLOAD_TRIANGLES, ShapeFileError, _split_triangles, voxelize_mesh
from tests.app.conftest import tiny_settings

Z = 8


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        yield c


def _problem(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    text = r.text.lower()
    for w in words:
        assert w.lower() in text, (w, r.text)


def test_wide_mean_of_trees_are_refused_before_any_work(client: TestClient) -> None:
    ref: dict = {"seed": 7}
    for _ in range(2):
        ref = {"mean_of": [ref] * 32}  # 1024 leaves, each level within its own limit
    r = client.post("/v1/arithmetic", json={"terms": [{"weight": 1, "ref": ref}]})
    _problem(r, 422, "1024 latents", str(MAX_LATENTS))
    ok = {"mean_of": [{"seed": s} for s in range(16)]}
    r = client.post(
        "/v1/arithmetic", json={"terms": [{"weight": 1, "ref": ok}], "output": {"format": "npy"}}
    )
    assert r.status_code == 200


def test_interpolation_keyframes_count_towards_the_latent_limit(client: TestClient) -> None:
    big = {"mean_of": [{"mean_of": [{"seed": s} for s in range(32)]}] * 2}  # 64 leaves
    r = client.post("/v1/interpolate", json={"keyframes": [big] * 8, "steps": 1})
    _problem(r, 422, "512 latents", "at most 256")


def test_mesh_work_is_capped_with_what_to_lower(client: TestClient) -> None:
    body = {"keyframes": [{"seed": 1}, {"seed": 2}], "steps": 32,
            "output": {"format": "obj", "upsample": 4}}  # fmt: skip
    _problem(client.post("/v1/interpolate", json=body), 422, "upsample", str(MAX_MESH_WORK))
    body["output"]["format"] = "npy"  # voxels need no meshing: allowed
    assert client.post("/v1/interpolate", json=body).status_code == 200


@pytest.mark.parametrize(
    "terms",
    [
        [{"weight": 1, "ref": {"latent": [1e39] + [0.0] * (Z - 1)}}],  # overflows the cast
        [{"weight": 10, "ref": {"latent": [3e38] + [0.0] * (Z - 1)}}],  # overflows the sum
    ],
)
def test_latents_overflowing_float32_are_400(client: TestClient, terms: list) -> None:
    r = client.post("/v1/arithmetic", json={"terms": terms, "output": {"format": "npy"}})
    _problem(r, 400, "float32")


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_paths_between_huge_latents_are_finite_or_400(client: TestClient, method: str) -> None:
    # found by schemathesis: float32 norms overflowed in slerp, and the frames' JSON then 500'd
    big = [3.3e38] * Z
    body = {"keyframes": [{"latent": big}, {"latent": [-x for x in big]}], "method": method,
            "steps": 2, "output": {"format": "npy"}}  # fmt: skip
    r = client.post("/v1/interpolate", json=body)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        _problem(r, 400, "float32")
    else:
        assert all(np.isfinite(s["latent"]).all() for s in r.json()["shapes"])
    body["keyframes"] = [{"latent": big}, {"latent": [x / 2 for x in big]}]
    r = client.post("/v1/interpolate", json=body)
    assert r.status_code in (200, 400), r.text


def test_empty_concept_is_refused_everywhere(client: TestClient) -> None:
    _problem(client.post("/v1/sample", json={"concept": ""}), 422)
    _problem(client.get("/v1/shapes/3.npy?concept="), 422)


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


def test_non_ascii_api_key_is_401_not_500(tiny_bundle: Path) -> None:
    with TestClient(create_app(tiny_settings(tiny_bundle, api_key="s3cret"))) as c:
        r = c.get("/v1/model", headers={"X-API-Key": "sécret".encode()})
        _problem(r, 401)
        assert c.get("/v1/model", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_manifest_that_is_not_utf8_is_a_manifest_error(tmp_path: Path, tiny_bundle: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(b'{"name": "\xff\xfe"}')
    with pytest.raises(ManifestError, match="UTF-8"):
        load_manifest(tmp_path)


def test_latin1_obj_is_read(client: TestClient) -> None:
    obj = (
        "# mod\xe8le en Latin-1\n"
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    ).encode("latin-1")
    r = client.post("/v1/encode", files={"shape": ("m.obj", obj, "text/plain")})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("alias", "body"),
    [("/sample", {"seeds": [3], "output": {"format": "npy"}}), ("/model", None)],
)
def test_unversioned_paths_are_aliases(client: TestClient, alias: str, body: dict | None) -> None:
    if body is None:
        a, b = client.get(alias), client.get("/v1" + alias)
    else:
        a, b = client.post(alias, json=body), client.post("/v1" + alias, json=body)
    assert a.status_code == b.status_code == 200 and a.content == b.content
    assert client.get("/shapes/3.npy").content == client.get("/v1/shapes/3.npy").content
    assert client.get("/").status_code == 200  # the page is still served


async def _asgi_post(app, path: str) -> list[dict]:
    """One empty-bodied POST straight into an ASGI app -> the messages it sent."""
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app({"type": "http", "path": path, "method": "POST"}, receive, send)
    return sent


def test_requests_past_the_in_flight_limit_are_shed_at_once() -> None:
    import asyncio
    import json

    from app.limits import InFlightLimit

    release = asyncio.Event()
    body_read = []

    async def slow_app(scope, receive, send):
        body_read.append(scope["path"])
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = InFlightLimit(slow_app, max_in_flight=1, wait_s=0)  # 0: refuse at once

    async def call(path: str) -> list[dict]:
        return await _asgi_post(limited, path)

    async def scenario():
        first = asyncio.create_task(call("/v1/sample"))
        await asyncio.sleep(0)
        shed = await call("/v1/sample")  # answered while the first is still running
        health = asyncio.create_task(call("/health/live"))  # never shed
        await asyncio.sleep(0)
        release.set()
        return await first, shed, await health

    first, shed, health = asyncio.run(scenario())
    assert first[0]["status"] == 200 and health[0]["status"] == 200
    assert shed[0]["status"] == 503 and (b"retry-after", b"1") in shed[0]["headers"]
    assert json.loads(shed[1]["body"])["title"] == "Overloaded"
    assert body_read == ["/v1/sample", "/health/live"]  # the shed request never reached the app


def test_past_the_limit_a_request_waits_for_a_slot_then_is_shed() -> None:
    import asyncio

    from app.limits import InFlightLimit

    def app_taking(seconds: float):
        async def app(scope, receive, send):
            await asyncio.sleep(seconds)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        return app

    async def status(limited) -> int:
        return (await _asgi_post(limited, "/v1/sample"))[0]["status"]

    async def scenario(work_s: float) -> list[int]:
        limited = InFlightLimit(app_taking(work_s), max_in_flight=1, wait_s=0.5)
        first = asyncio.create_task(status(limited))
        await asyncio.sleep(0)
        return [await status(limited), await first]

    # the slot frees within the wait: the second request is served, not refused
    assert asyncio.run(scenario(0.05)) == [200, 200]
    # it does not: the second is refused once the wait is over
    assert asyncio.run(scenario(3.0)) == [503, 200]


def test_every_response_says_nosniff_and_image_errors_hide_addresses(client: TestClient) -> None:
    assert client.get("/").headers["x-content-type-options"] == "nosniff"
    r = client.post(
        "/v1/reconstruct", files={"image": ("x.png", b"\x89PNG\r\n garbage", "image/png")}
    )
    assert r.status_code == 400 and " at 0x" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"


def test_unexpected_errors_close_the_connection(tiny_bundle: Path, monkeypatch) -> None:
    from app import latents

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(latents, "path", boom)
    with TestClient(create_app(tiny_settings(tiny_bundle)), raise_server_exceptions=False) as c:
        r = c.post("/v1/interpolate", json={"keyframes": [{"seed": 1}, {"seed": 2}]})
    assert r.status_code == 500 and r.headers["connection"] == "close"
    assert "simulated" not in r.text


def test_the_deadline_covers_meshing_too(tiny_bundle: Path, monkeypatch) -> None:
    import time as _time

    from app import meshpool

    real = meshpool.encode_one

    def slow(*a, **k):
        _time.sleep(1.5)  # meshing that outlives the request's deadline
        return real(*a, **k)

    monkeypatch.setattr(meshpool, "encode_one", slow)
    settings = tiny_settings(tiny_bundle, request_timeout_s=0.5)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/sample", json={"seeds": [1]})
        _problem(r, 504, "0.5 s")
        assert c.get("/health/live").status_code == 200


def test_api_key_guards_the_api_only_and_errors_carry_cors(tiny_bundle: Path) -> None:
    settings = tiny_settings(tiny_bundle, api_key="k", cors_origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}
    with TestClient(create_app(settings)) as c:
        assert c.get("/").status_code == 200  # the page itself is public
        r = c.get("/v1/model", headers=origin)
        _problem(r, 401)
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.get("/model", headers=origin)  # the alias is guarded like /v1
        assert r.status_code == 401


def test_cors_wildcard_is_refused() -> None:
    from pydantic import ValidationError

    from app.settings import Settings

    with pytest.raises(ValidationError, match="allowed origins"):
        Settings(cors_origins=["*"])


def test_openapi_declares_media_types_errors_and_the_one_of_rule(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    sample = doc["paths"]["/v1/sample"]["post"]["responses"]
    assert "model/gltf-binary" in sample["200"]["content"]
    for status in ("400", "413", "422", "503", "504"):
        assert "application/problem+json" in sample[status]["content"], status
    assert "415" in doc["paths"]["/v1/encode"]["post"]["responses"]
    one_of = doc["components"]["schemas"]["LatentRef"]["oneOf"]
    assert [r["required"] for r in one_of] == [["seed"], ["latent"], ["concept"], ["mean_of"]]


def test_a_refused_preflight_is_a_problem_document(tiny_bundle: Path) -> None:
    settings = tiny_settings(tiny_bundle, cors_origins=["https://app.example"])
    ask = {"Access-Control-Request-Method": "POST"}
    with TestClient(create_app(settings)) as c:
        r = c.options("/v1/sample", headers={"Origin": "https://evil.example", **ask})
        _problem(r, 400, "GAN3D_CORS_ORIGINS")
        assert "origin" in r.json()["detail"].lower()
        r = c.options("/v1/sample", headers={"Origin": "https://app.example", **ask})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"


def test_html_pages_carry_a_content_security_policy(client: TestClient) -> None:
    import base64
    import hashlib
    import re

    page = client.get("/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in csp and "frame-ancestors 'none'" in csp
    assert "content-security-policy" not in client.get("/v1/model").headers  # JSON: no need
    docs = client.get("/docs")
    inline = re.findall(r"<script>(.*?)</script>", docs.text, flags=re.DOTALL)
    assert inline  # Swagger UI starts itself with an inline script: allowed by its hash only
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]
    assert "'unsafe-inline'" not in docs.headers["content-security-policy"].split("style-src")[0]


def test_a_post_route_asked_with_another_method_names_its_own_methods(client: TestClient) -> None:
    r = client.options("/v1/sample")  # no CORS preflight: once routed past the page's files
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    _problem(r, 405)
    assert client.get("/v1/nothing-here").status_code == 404
    assert client.get("/").status_code == 200  # the page is still served


def test_openapi_names_the_bundles_concepts_and_latent_size(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    names = client.get("/v1/concepts").json()["concepts"]
    ref = doc["components"]["schemas"]["LatentRef"]["properties"]
    assert names and ref["concept"]["enum"] == names
    z = client.get("/v1/model").json()["latent"]["size"]
    assert ref["latent"]["minItems"] == ref["latent"]["maxItems"] == z
    shapes = doc["paths"]["/v1/shapes/{seed}.{fmt}"]["get"]["parameters"]
    concept = next(p for p in shapes if p["name"] == "concept")["schema"]
    assert any("enum" in s for s in concept.get("anyOf", [concept]))


def test_requests_take_json_types_as_the_schema_declares(client: TestClient) -> None:
    r = client.post("/v1/sample", json={"seeds": [1], "output": {"envelope": 0}})
    _problem(r, 422, "envelope")
    r = client.post("/v1/sample", json={"seeds": ["1"]})
    _problem(r, 422, "seeds")
    ref = {"seed": 1, "concept": None}
    r = client.post("/v1/arithmetic", json={"terms": [{"weight": 1, "ref": ref}]})
    _problem(r, 422, "concept: null")


def test_a_422_lists_the_first_problems_and_counts_them_all(client: TestClient) -> None:
    # a bad latent is one problem naming its first bad item (it was one problem per value:
    # eight latents sent as strings were a 268 KB answer at z = 200)
    z = client.get("/v1/model").json()["latent"]["size"]
    body = {"keyframes": [{"latent": ["x"] * z} for _ in range(8)], "steps": 2}
    r = client.post("/v1/interpolate", json=body)
    _problem(r, 422, "keyframes.0.latent", "item 0 is str", "a list of numbers")
    assert r.json()["error_count"] == 8
    # past MAX_REPORTED problems the rest are counted, not listed
    terms = [{"weight": "heavy", "ref": {"latent": [None] * z}} for _ in range(16)]
    r = client.post("/v1/arithmetic", json={"terms": terms})
    _problem(r, 422, "terms.0.weight", "more")
    doc = r.json()
    assert len(doc["errors"]) == 20 and doc["error_count"] == 32
    assert doc["detail"].endswith(f"and {doc['error_count'] - 20} more")
    r = client.post("/v1/sample", json={"seeds": ["1"]})
    _problem(r, 422, "seeds")
    assert r.json()["error_count"] == len(r.json()["errors"]) == 1


def test_start_up_objects_are_frozen_out_of_the_cyclic_collector(tiny_bundle: Path) -> None:
    # full collections over start-up objects stalled the event loop: liveness p99 116-140 ms at
    # 10x load before, 24-30 ms after (bench/overload.py)
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        assert c.get("/health/ready").status_code == 200
        assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("depth", [200, 400, 5_000, 100_000])
def test_deeply_nested_mean_of_is_answered_or_refused(client: TestClient, depth: int) -> None:
    """mean_of nests (a mean of means): 200 levels are served; deeper ones stop in the JSON
    parser (400) or in validation (422), never a 500 from a recursion limit."""
    deep = '{"mean_of": [' * depth + '{"seed": 1}' + "]}" * depth
    body = '{"keyframes": [' + deep + ', {"seed": 2}], "steps": 2, "output": {"format": "npy"}}'
    r = client.post("/v1/interpolate", content=body, headers={"content-type": "application/json"})
    if depth <= 200:
        assert r.status_code == 200, r.text[:300]
    else:
        assert r.status_code in (400, 422), r.text[:300]
        assert r.headers["content-type"].startswith("application/problem+json")
        # a location as deep as the nesting is cut to its last 200 characters
        assert all(len(e["where"]) <= 200 for e in r.json().get("errors", []))
