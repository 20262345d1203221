"""Under load: queue full -> 503 + Retry-After, deadline -> 504, readiness only after warm-up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from app.engine import Engine
from app.main import create_app
from tests.app.conftest import tiny_settings


def test_deadline_is_504(tiny_bundle: Path) -> None:
    with TestClient(
        create_app(tiny_settings(tiny_bundle, max_wait_ms=500, request_timeout_s=0.05))
    ) as c:
        r = c.post("/v1/sample", json={"seeds": [1], "output": {"format": "npy"}})
    # the engine's deadline and the whole-request deadline are the same setting: either answers
    assert r.status_code == 504 and r.json()["title"] == "Deadline exceeded"
    assert "0.05 s" in r.json()["detail"] or "did not finish within" in r.json()["detail"]


def test_queue_full_is_503_with_retry_after(tiny_bundle: Path) -> None:
    settings = tiny_settings(tiny_bundle, queue_size=1, max_batch=1, max_wait_ms=0)
    with TestClient(create_app(settings)) as c:
        gate = threading.Event()
        batcher = c.app.state.gan3d.loaded.engine.batchers["generator"]
        run_now = batcher.run_now

        def slow(*x):  # hold the worker so that the queue fills up
            gate.wait(5)
            return run_now(*x)

        batcher.run_now = slow

        def call(i: int):
            return c.post("/v1/sample", json={"seeds": [i], "output": {"format": "npy"}})

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(call, i) for i in range(6)]
            threading.Timer(1.0, gate.set).start()
            responses = [f.result() for f in futures]
    codes = sorted(r.status_code for r in responses)
    assert 200 in codes and 503 in codes, codes
    busy = next(r for r in responses if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "queue is full" in busy.json()["detail"]


def test_ready_only_after_warm_up(tiny_bundle: Path, monkeypatch) -> None:
    seen = {}
    app = create_app(tiny_settings(tiny_bundle))
    warm_up = Engine.warm_up

    def spy(self: Engine) -> None:  # readiness as seen from inside warm-up
        seen["during"] = app.state.gan3d.loaded
        warm_up(self)

    monkeypatch.setattr(Engine, "warm_up", spy)
    with TestClient(app) as c:
        assert c.get("/health/ready").status_code == 200
    assert seen["during"] is None  # not ready while warming up
