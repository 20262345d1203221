"""Headers, keys, CORS and error bodies: what a browser or a stranger sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import assert_problem as _problem
from tests.app.conftest import tiny_settings

Z = 8


def test_non_ascii_api_key_is_401_not_500(tiny_bundle: Path) -> None:
    with TestClient(create_app(tiny_settings(tiny_bundle, api_key="s3cret"))) as c:
        r = c.get("/v1/model", headers={"X-API-Key": "sécret".encode()})
        _problem(r, 401)
        assert c.get("/v1/model", headers={"X-API-Key": "s3cret"}).status_code == 200


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
