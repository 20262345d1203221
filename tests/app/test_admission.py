"""Admission and deadlines: load is shed before work, the deadline covers meshing, and
start-up objects stay out of the cyclic collector."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import assert_problem as _problem
from tests.app.conftest import tiny_settings

Z = 8


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


def test_start_up_objects_are_frozen_out_of_the_cyclic_collector(tiny_bundle: Path) -> None:
    # full collections over start-up objects stalled the event loop: liveness p99 116-140 ms at
    # 10x load before, 24-30 ms after (bench/overload.py)
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(tiny_settings(tiny_bundle))) as c:
        assert c.get("/health/ready").status_code == 200
        assert gc.get_freeze_count() > 0
