"""The OpenAPI document, the unversioned aliases and methods a route does not take."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import assert_problem as _problem

Z = 8


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


def test_openapi_declares_media_types_errors_and_the_one_of_rule(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    sample = doc["paths"]["/v1/sample"]["post"]["responses"]
    assert "model/gltf-binary" in sample["200"]["content"]
    for status in ("400", "413", "422", "503", "504"):
        assert "application/problem+json" in sample[status]["content"], status
    assert "415" in doc["paths"]["/v1/encode"]["post"]["responses"]
    one_of = doc["components"]["schemas"]["LatentRef"]["oneOf"]
    assert [r["required"] for r in one_of] == [["seed"], ["latent"], ["concept"], ["mean_of"]]


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
