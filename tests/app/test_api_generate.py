"""HTTP API on a tiny bundle: sampling, interpolation, arithmetic, formats, errors."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient

from app.encoding import unpack_json
from app.main import create_app
from app.settings import Settings
from tests.app.conftest import tiny_settings

Z = 8


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator[TestClient]:
    settings = tiny_settings(tiny_bundle, cors_origins=["https://app.example"])
    with TestClient(create_app(settings)) as c:
        yield c


def _latent(resp) -> np.ndarray:
    return np.frombuffer(base64.b64decode(resp.headers["x-gan3d-latent"]), dtype="<f4")


def test_sample_one_glb_with_latent_and_seed(client: TestClient) -> None:
    r = client.post("/v1/sample", json={"seeds": [3]})
    assert r.status_code == 200 and r.headers["content-type"] == "model/gltf-binary"
    assert r.headers["x-gan3d-seed"] == "3" and _latent(r).shape == (Z,)
    mesh = trimesh.load(io.BytesIO(r.content), file_type="glb", force="mesh")
    assert len(mesh.faces) > 0
    again = client.post("/v1/sample", json={"seeds": [3]})
    assert again.content == r.content  # same request, same bytes


def test_sample_drawn_seeds_are_returned_and_reproduce(client: TestClient) -> None:
    r = client.post("/v1/sample", json={"n": 3, "output": {"format": "npy"}})
    assert r.status_code == 200
    shapes = r.json()["shapes"]
    assert len(shapes) == 3 and all(s["seed"] is not None for s in shapes)
    again = client.post(
        "/v1/sample", json={"seeds": [shapes[1]["seed"]], "output": {"format": "npy"}}
    )
    assert base64.b64decode(shapes[1]["data"]) == again.content


@pytest.mark.parametrize("fmt", ["obj", "ply", "stl", "binvox", "json", "npy"])
def test_every_format(client: TestClient, fmt: str) -> None:
    r = client.post("/v1/sample", json={"seeds": [1], "output": {"format": fmt}})
    assert r.status_code == 200, r.text
    if fmt == "json":
        assert unpack_json(r.json()).shape == (8, 8, 8)
    elif fmt == "npy":
        assert np.load(io.BytesIO(r.content)).shape == (8, 8, 8)
    else:
        assert len(r.content) > 50


def test_concept_and_temperature(client: TestClient) -> None:
    a = client.post("/v1/sample", json={"seeds": [5], "concept": "chair", "temperature": 0.01})
    assert a.status_code == 200
    concept = np.load(client.app.state.settings.bundle_dir / "concepts.npz")["chair"]
    assert np.allclose(_latent(a), concept, atol=0.05)


def test_interpolate_frames_and_endpoints(client: TestClient) -> None:
    body = {
        "keyframes": [{"seed": 1}, {"concept": "chair"}, {"latent": [0.5] * Z}],
        "steps": 3,
        "method": "lerp",
        "output": {"format": "npy"},
    }
    r = client.post("/v1/interpolate", json=body)
    assert r.status_code == 200, r.text
    frames = r.json()["shapes"]
    assert len(frames) == 7
    assert np.allclose(frames[-1]["latent"], [0.5] * Z)
    assert np.allclose(
        frames[3]["latent"],
        np.load(client.app.state.settings.bundle_dir / "concepts.npz")["chair"],
        atol=1e-6,
    )


def test_arithmetic_returns_the_sum(client: TestClient) -> None:
    body = {
        "terms": [
            {"weight": 1, "ref": {"concept": "chair"}},
            {"weight": -1, "ref": {"mean_of": [{"seed": 1}, {"seed": 2}]}},
            {"weight": 0.5, "ref": {"latent": [1.0] * Z}},
        ]
    }
    r = client.post("/v1/arithmetic", json=body)
    assert r.status_code == 200, r.text
    from app.latents import from_seed

    chair = np.load(client.app.state.settings.bundle_dir / "concepts.npz")["chair"]
    want = chair - (from_seed(1, Z) + from_seed(2, Z)) / 2 + 0.5
    assert np.allclose(_latent(r), want, atol=1e-5)


def test_concepts_and_model(client: TestClient) -> None:
    assert client.get("/v1/concepts").json()["concepts"] == ["chair"]
    m = client.get("/v1/model").json()
    assert m["name"] == "tiny-test" and m["execution_provider"] == "CPUExecutionProvider"
    ready = client.get("/health/ready").json()
    assert ready["execution_provider"] == "CPUExecutionProvider"


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/v1/sample", {"n": 99}, 422, "n: Input should be less than or equal to 16"),
        ("/v1/sample", {"seeds": [-1]}, 422, "seeds must be in [0, 2^63 - 1]"),
        (
            "/v1/sample",
            {"concept": "spaceship"},
            400,
            "unknown concept 'spaceship'; known concepts: chair",
        ),
        ("/v1/sample", {"temperature": 0}, 422, "temperature"),
        ("/v1/sample", {"output": {"format": "fbx"}}, 422, "output.format"),
        ("/v1/sample", {"output": {"join_level": 1.5}}, 422, "output.join_level"),
        ("/v1/sample", {"n": 2, "seeds": [1]}, 422, "n is 2 but 1 seeds were given"),
        ("/v1/sample", {"bogus": 1}, 422, "bogus: Extra inputs are not permitted"),
        ("/v1/interpolate", {"keyframes": [{"seed": 1}]}, 422, "at least 2"),
        (
            "/v1/interpolate",
            {"keyframes": [{"seed": 1}, {"seed": 2, "concept": "chair"}]},
            422,
            "give exactly one of seed, latent, concept, mean_of (got seed, concept)",
        ),
        (
            "/v1/interpolate",
            {"keyframes": [{"seed": 1}, {"latent": [1.0] * 3}]},
            400,
            "must have 8 numbers",
        ),
        ("/v1/arithmetic", {"terms": []}, 422, "at least 1"),
    ],
)
def test_bad_input_is_a_problem_document(
    client: TestClient, path: str, body: dict, status: int, needle: str
) -> None:
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    doc = r.json()
    assert doc["status"] == status and needle in doc["detail"], doc


def test_non_finite_latent_is_400(client: TestClient) -> None:
    body = b'{"terms": [{"weight": 1, "ref": {"latent": [1e999, 0, 0, 0, 0, 0, 0, 0]}}]}'
    r = client.post("/v1/arithmetic", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "finite" in r.json()["detail"]


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/v1/sample", content=b"{nope", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]


def test_empty_shape_single_and_envelope(client: TestClient) -> None:
    # z = 0 gives probability 0.5 everywhere in the tiny generator: nothing reaches 0.6
    zero = {"latent": [0.0] * Z}
    out = {"threshold": 0.6}
    r = client.post("/v1/arithmetic", json={"terms": [{"weight": 1, "ref": zero}], "output": out})
    assert r.status_code == 422 and r.json()["title"] == "Empty shape"
    assert r.json()["latent"] == [0.0] * Z and "lower output.threshold" in r.json()["detail"]
    body = {"keyframes": [zero, zero], "steps": 1, "output": out}
    r = client.post("/v1/interpolate", json=body)
    assert r.status_code == 200 and all(
        s["empty"] and s["data"] is None for s in r.json()["shapes"]
    )


def test_cors_allow_list(client: TestClient) -> None:
    ok = client.options(
        "/v1/sample",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert ok.headers.get("access-control-allow-origin") == "https://app.example"
    bad = client.options(
        "/v1/sample",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in bad.headers


def test_not_ready_generation_is_503(tiny_bundle: Path) -> None:
    (tiny_bundle / "manifest.json").unlink()
    with TestClient(create_app(Settings(bundle_dir=tiny_bundle))) as c:
        r = c.post("/v1/sample", json={})
        assert r.status_code == 503 and "manifest.json" in r.json()["detail"]


def test_cacheable_shape_url(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.get("/v1/shapes/3.glb")
    assert r.status_code == 200 and r.headers["content-type"] == "model/gltf-binary"
    assert r.headers["cache-control"] == "public, max-age=86400" and r.headers["etag"]
    post = client.post("/v1/sample", json={"seeds": [3]})
    assert post.content == r.content
    cached = client.get("/v1/shapes/3.glb", headers={"If-None-Match": r.headers["etag"]})
    assert cached.status_code == 304 and cached.content == b""
    other = client.get("/v1/shapes/3.glb?threshold=0.4")
    assert other.headers["etag"] != r.headers["etag"]
    # the same bundle and URL meshed by another version of the service: another ETag
    monkeypatch.setattr("app.routes.generate.MESHING_VERSION", "test")
    assert client.get("/v1/shapes/3.glb").headers["etag"] != r.headers["etag"]
    bad = client.get("/v1/shapes/3.fbx")
    assert bad.status_code == 422 and "fmt" in bad.json()["detail"]


def test_sample_source_real_draws_around_the_real_model_kernels(tmp_path: Path) -> None:
    from tests.tiny_bundle import make_tiny_bundle

    bundle = tmp_path / "b"
    make_tiny_bundle(bundle, prior=True)
    with TestClient(create_app(tiny_settings(bundle))) as c:
        assert c.get("/v1/model").json()["sample_sources"] == ["any", "real", "procedural"]

        def latents(source: str) -> np.ndarray:
            r = c.post(
                "/v1/sample",
                json={"seeds": list(range(12)), "source": source, "output": {"format": "npy"}},
            )
            assert r.status_code == 200, r.text
            return np.array([s["latent"] for s in r.json()["shapes"]])

        real, proc, mixed = latents("real"), latents("procedural"), latents("any")
        # the two kernels (codes 3 and 4 in dimension 0, 3 elsewhere) spread only where the
        # chairs differ: bandwidth 0.3 x their std 0.5 in dimension 0
        assert np.all(real[:, 1:] == 3.0) and np.all((real[:, 0] > 2.3) & (real[:, 0] < 4.7))
        assert np.all(proc < -2)
        assert (mixed > 0).all(1).any() and (mixed < 0).all(1).any()  # half from each
        url = c.get("/v1/shapes/3.npy?source=real")
        assert url.status_code == 200 and np.allclose(_latent(url), real[3])
        assert url.headers["etag"] != c.get("/v1/shapes/3.npy").headers["etag"]
        r = c.post("/v1/sample", json={"seeds": [1], "source": "imaginary"})
        assert r.status_code == 422 and "source" in r.text


def test_sample_source_real_needs_kernels(client: TestClient) -> None:
    assert client.get("/v1/model").json()["sample_sources"] == ["any", "procedural"]
    r = client.post("/v1/sample", json={"seeds": [1], "source": "real"})
    assert r.status_code == 400 and "no real-model kernels" in r.json()["detail"]
