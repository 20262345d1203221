"""Engine: results match direct ONNX Runtime calls, micro-batching, queue full, deadlines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from app.bundle import verify
from app.engine import BatchingConfig, DeadlineExceeded, Engine, QueueFull


def _engine(bundle: Path, **batching) -> Engine:
    return Engine.load(
        bundle,
        verify(bundle),
        providers=["CPUExecutionProvider"],
        threads=1,
        batching=BatchingConfig(**batching),
    )


def _one_row_each(engine: Engine, z: np.ndarray) -> np.ndarray:
    """Start the engine, submit each row of z as its own concurrent request, stop; -> the
    generated grids in request order."""

    async def main() -> list[np.ndarray]:
        engine.start()
        outs = await asyncio.gather(*(engine.generate(row[None], 5.0) for row in z))
        await engine.stop()
        return outs

    return np.concatenate(asyncio.run(main()))


def test_batched_results_equal_direct_calls(tiny_bundle: Path) -> None:
    engine = _engine(tiny_bundle, max_batch=16, max_wait_ms=50)
    z = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    direct = engine.batchers["generator"].run_now(z)[0][:, 0]

    assert np.allclose(_one_row_each(engine, z), direct, atol=1e-6)
    stats = engine.batchers["generator"].stats
    assert stats.rows == 10 and stats.batches < 10  # concurrent requests were batched


def test_greedy_batching_takes_everything_queued(tiny_bundle: Path) -> None:
    # max_wait_ms 0 (the default): no waiting for company, but whatever is already queued
    # when the worker wakes runs in that one call
    engine = _engine(tiny_bundle, max_batch=8, max_wait_ms=0)
    z = np.random.default_rng(1).standard_normal((12, 8)).astype(np.float32)

    direct = engine.batchers["generator"].run_now(z)[0][:, 0]
    assert np.allclose(_one_row_each(engine, z), direct, atol=1e-6)
    assert engine.batchers["generator"].stats.batch_sizes == [8, 4]  # capped at max_batch


def test_two_batches_at_once_give_each_request_its_own_rows(tiny_bundle: Path) -> None:
    # two workers drain one queue and run batches side by side; every request still gets
    # exactly its rows, and all rows run once
    engine = _engine(tiny_bundle, max_batch=4, concurrent=2)
    z = np.random.default_rng(2).standard_normal((40, 8)).astype(np.float32)
    direct = engine.batchers["generator"].run_now(z)[0][:, 0]
    assert np.allclose(_one_row_each(engine, z), direct, atol=1e-6)
    stats = engine.batchers["generator"].stats
    assert stats.rows == 40 and all(n <= 4 for n in stats.batch_sizes)


def test_queue_full_raises(tiny_bundle: Path) -> None:
    engine = _engine(tiny_bundle, queue_size=1)

    async def main() -> None:  # the worker is not started: nothing drains the queue
        first = asyncio.ensure_future(engine.generate(np.zeros((1, 8), np.float32), 0.2))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="queue is full"):
            await engine.generate(np.zeros((1, 8), np.float32), 0.2)
        with pytest.raises(DeadlineExceeded):
            await first

    asyncio.run(main())


def test_deadline_exceeded_and_rows_dropped(tiny_bundle: Path) -> None:
    engine = _engine(tiny_bundle, max_wait_ms=300, max_batch=64)

    async def main() -> None:
        engine.start()
        with pytest.raises(DeadlineExceeded, match=r"within 0\.1 s"):
            await engine.generate(np.zeros((1, 8), np.float32), 0.1)
        await asyncio.sleep(0.4)
        await engine.stop()

    asyncio.run(main())
    assert engine.batchers["generator"].stats.rows == 0  # expired before it ran


def test_warm_up_and_provider(tiny_bundle: Path) -> None:
    engine = _engine(tiny_bundle)
    engine.warm_up()
    assert engine.provider == "CPUExecutionProvider"
    assert set(engine.batchers) == {"generator", "image_encoder", "voxel_encoder"}


def test_stop_finishes_queued_requests(tiny_bundle: Path) -> None:
    engine = _engine(tiny_bundle, max_batch=2, max_wait_ms=20)

    async def main() -> list[np.ndarray]:
        engine.start()
        z = np.zeros((1, 8), np.float32)
        pending = [asyncio.ensure_future(engine.generate(z, 5.0)) for _ in range(6)]
        await asyncio.sleep(0)  # all six are queued
        await engine.stop()  # graceful: returns only when the queue is drained
        # every queued request got its answer: the callers resume at once, nothing is lost
        return await asyncio.wait_for(asyncio.gather(*pending), 1.0)

    outs = asyncio.run(main())
    assert len(outs) == 6 and engine.batchers["generator"].stats.rows == 6
