"""The in-process cache of GET /v1/shapes/{seed}.{fmt} responses, and its byte bound."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.cache import ByteLRU, Cached
from app.main import create_app
from tests.app.conftest import tiny_settings


def test_a_repeated_shape_url_is_served_from_the_cache_byte_for_byte(tiny_bundle: Path) -> None:
    app = create_app(tiny_settings(tiny_bundle))
    with TestClient(app) as c:
        first = c.get("/v1/shapes/3.glb?temperature=0.5")
        again = c.get("/v1/shapes/3.glb?temperature=0.5")
        cache = app.state.shape_cache
        assert first.status_code == again.status_code == 200
        assert cache.hits == 1 and cache.misses == 1 and len(cache) == 1
        assert again.content == first.content
        for h in ("content-type", "x-gan3d-latent", "x-gan3d-seed", "etag", "cache-control"):
            assert again.headers[h] == first.headers[h], h
        # what the cache serves is what POST /v1/sample makes for the same options
        posted = c.post("/v1/sample", json={"seeds": [3], "temperature": 0.5})
        assert posted.content == first.content


def test_no_cache_when_its_size_is_zero(tiny_bundle: Path) -> None:
    app = create_app(tiny_settings(tiny_bundle, shape_cache_bytes=0))
    with TestClient(app) as c:
        for _ in range(2):
            assert c.get("/v1/shapes/3.npy").status_code == 200
        assert app.state.shape_cache.hits == 0 and len(app.state.shape_cache) == 0


def test_the_cache_keeps_within_its_bytes_dropping_the_least_recently_used() -> None:
    cache = ByteLRU(25)
    for key in "abc":
        cache.put(key, Cached(b"x" * 10, "application/x-npy", {}))
    assert cache.bytes == 20 and cache.get("a") is None  # a went first
    cache.get("b")  # b is now the most recent: c goes next
    cache.put("d", Cached(b"y" * 10, "application/x-npy", {}))
    assert cache.get("c") is None and cache.get("b") is not None and cache.bytes == 20
    cache.put("huge", Cached(b"z" * 26, "application/x-npy", {}))  # over the bound: not kept
    assert cache.get("huge") is None and cache.bytes <= 25
