"""Requests are refused with a clear 4xx before they cost work: latent limits, JSON types,
mesh work, overflow, nesting (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.schemas import MAX_LATENTS, MAX_MESH_WORK
from tests.app.conftest import assert_problem as _problem

Z = 8


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
