"""GET /v1/directions and POST /v1/edit on a tiny bundle (two fixture directions)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import tiny_settings


@pytest.fixture
def client(tiny_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        yield c


def _latent(resp) -> np.ndarray:
    return np.frombuffer(base64.b64decode(resp.headers["x-gan3d-latent"]), dtype="<f4")


def _vector(bundle: Path, name: str) -> np.ndarray:
    raw = json.loads((bundle / "directions.json").read_text())["directions"]
    return np.asarray(next(d["vector"] for d in raw if d["name"] == name), np.float32)


def test_directions_are_listed_without_their_vectors(client: TestClient) -> None:
    found = client.get("/v1/directions").json()["directions"]
    assert [d["name"] for d in found] == ["chair.tall_back", "chair.pc1", "any.sefa1"]
    assert found[0] == {
        "name": "chair.tall_back",
        "category": "chair",
        "kind": "binary",
        "range": [-1.5, 1.5],
        "meaning": "+1 gives a chair a tall back",
    }
    # a category keeps its own directions and those for every category
    car = client.get("/v1/directions?category=car").json()["directions"]
    assert [d["name"] for d in car] == ["any.sefa1"]
    chair = client.get("/v1/directions?category=chair").json()["directions"]
    assert [d["name"] for d in chair] == ["chair.tall_back", "chair.pc1", "any.sefa1"]


def test_an_edit_moves_the_start_latent_along_the_direction(
    client: TestClient, tiny_bundle: Path
) -> None:
    start = client.post("/v1/sample", json={"seeds": [4]})
    r = client.post(
        "/v1/edit",
        json={"start": {"seed": 4}, "edits": [{"direction": "chair.tall_back", "amount": 0.5}]},
    )
    assert r.status_code == 200 and r.headers["content-type"] == "model/gltf-binary"
    expect = _latent(start) + 0.5 * _vector(tiny_bundle, "chair.tall_back")
    assert np.allclose(_latent(r), expect, atol=1e-5)


def test_steps_return_the_slider_path_as_frames(client: TestClient) -> None:
    body = {"start": {"seed": 4}, "steps": 4, "output": {"format": "npy"},
            "edits": [{"direction": "chair.pc1", "amount": -2},
                      {"direction": "chair.tall_back", "amount": 1}]}  # fmt: skip
    r = client.post("/v1/edit", json=body)
    assert r.status_code == 200
    shapes = r.json()["shapes"]
    z = np.array([s["latent"] for s in shapes])
    assert len(shapes) == 5 and np.allclose(z[2], (z[0] + z[4]) / 2, atol=1e-5)


def _problem(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    for w in words:
        assert w.lower() in r.text.lower(), (w, r.text)


@pytest.mark.parametrize(
    ("edits", "status", "words"),
    [
        ([{"direction": "chair.wings", "amount": 1}], 400, ["unknown direction", "/v1/directions"]),
        ([{"direction": "chair.tall_back", "amount": 2}], 400, ["outside [-1.5, 1.5]"]),
        ([{"direction": "chair.pc1", "amount": 1}] * 9, 422, ["edits"]),
        ([], 422, ["edits"]),
        ([{"direction": "chair.pc1", "amount": 11}], 422, ["amount"]),
    ],
)
def test_bad_edits_say_what_is_wrong(client: TestClient, edits, status, words) -> None:
    r = client.post("/v1/edit", json={"start": {"seed": 1}, "edits": edits})
    _problem(r, status, *words)


def test_a_bundle_without_directions_answers_404(tiny_bundle: Path) -> None:
    from app.bundle import load_manifest, write_manifest

    manifest = load_manifest(tiny_bundle)
    files = [f for f in manifest.files if f.role != "directions"]
    write_manifest(tiny_bundle, manifest.model_copy(update={"files": files}))
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        assert c.get("/v1/directions").json() == {"directions": []}
        r = c.post(
            "/v1/edit",
            json={"start": {"seed": 1}, "edits": [{"direction": "chair.pc1", "amount": 1}]},
        )
        _problem(r, 404, "no edit directions")
