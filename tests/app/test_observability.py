"""Metrics, request ids, JSON access logs and the API key."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from app.observability import JsonFormatter
from tests.app.conftest import tiny_settings


def _client(bundle: Path, **kw) -> TestClient:
    return TestClient(create_app(tiny_settings(bundle, **kw)))


def test_metrics_count_requests_and_batches(tiny_bundle: Path) -> None:
    with _client(tiny_bundle) as c:
        c.post("/v1/sample", json={"seeds": [1, 2], "output": {"format": "npy"}})
        c.post("/v1/sample", json={"n": 99})
        text = c.get("/metrics").text
    assert 'gan3d_requests_total{route="/v1/sample",status="200"} 1.0' in text
    assert 'gan3d_requests_total{route="/v1/sample",status="422"} 1.0' in text
    assert 'gan3d_batch_size_count{network="generator"}' in text
    assert 'gan3d_queue_depth{network="generator"} 0.0' in text
    assert "gan3d_request_seconds_bucket" in text


def test_request_id_is_echoed_or_made(tiny_bundle: Path, caplog) -> None:
    with _client(tiny_bundle) as c, caplog.at_level(logging.INFO, logger="gan3d.access"):
        r = c.get("/health/live", headers={"X-Request-ID": "abc-123"})
        assert r.headers["x-request-id"] == "abc-123"
        assert len(c.get("/health/live").headers["x-request-id"]) == 32
    record = next(r for r in caplog.records if r.name == "gan3d.access")
    doc = json.loads(JsonFormatter().format(record))
    assert doc["request_id"] == "abc-123" and doc["status"] == 200 and doc["path"] == "/health/live"


def test_api_key_guards_v1_but_not_health(tiny_bundle: Path) -> None:
    with _client(tiny_bundle, api_key="s3cret") as c:
        r = c.get("/v1/concepts")
        assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
        assert c.get("/v1/concepts", headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.get("/v1/concepts", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/health/ready").status_code == 200
        assert c.get("/metrics").status_code == 200
