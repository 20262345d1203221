"""Probability grids -> file bytes, meshed on every core.

Marching cubes (scikit-image) and the mesh clean-up hold the GIL: two threads meshing run no
faster than one (measured), so the server's thread pool meshed on one core while the second
idled between model calls. A pool of worker processes meshes one shape per worker at a time;
the server process keeps the event loop and the model. Workers are spawned (not forked: the
server holds ONNX Runtime's threads) and import only numpy, scipy, scikit-image, trimesh and
pydantic. The bytes do not depend on where a shape was meshed (tested).

A worker that dies (killed, out of memory) breaks the pool: the request that saw it is meshed
in the server's threads instead, the pool is replaced, and the event is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.cpus import available_cores
from app.encoding import VOXEL_FORMATS, encode_mesh, encode_voxels
from app.meshing import MeshOptions, to_mesh
from app.schemas import Output

log = logging.getLogger("gan3d")


def mesh_options(out: Output, threshold: float) -> MeshOptions:
    """The meshing a request's ``output`` asks for, at ``threshold``."""
    return MeshOptions(
        threshold=threshold,
        upsample=out.upsample,
        largest_component=out.largest_component,
        join_level=out.join_level,
        min_part_fraction=out.min_part_fraction,
        smooth_iterations=out.smooth_iterations,
        target_faces=out.target_faces,
    )


def encode_one(prob: np.ndarray, out: Output, threshold: float) -> bytes | None:
    """prob [R, R, R] float32 in [0, 1] -> file bytes, or None for an empty mesh."""
    if out.format in VOXEL_FORMATS:
        return encode_voxels(prob, out.format, threshold=threshold, occupancy=out.occupancy)
    mesh = to_mesh(prob, mesh_options(out, threshold))
    return None if mesh is None else encode_mesh(mesh, out.format)


def _warm(_: int) -> int:
    """Runs once in each worker at start-up: the first mesh pays for imports and page faults."""
    x = np.linspace(-1.0, 1.0, 16, dtype=np.float32)
    ball = np.clip(
        1.0 - np.sqrt(x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None] ** 2), 0, 1
    )
    encode_one(ball, Output(), 0.5)
    return os.getpid()


def default_workers() -> int:
    """One worker per core this process may use (app/cpus.py: affinity capped by a container's
    CPU quota); 0 (mesh in threads) on a single core."""
    cores = available_cores()
    return cores if cores > 1 else 0


class MeshPool:
    """Meshes and encodes shapes: in ``workers`` processes, or in threads when 0."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.restarts = 0  # pools replaced after a worker died
        self._pool = self._new_pool() if workers > 0 else None
        self._warming = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def start_warm_up(self) -> None:
        """Starts every worker and has it mesh a small ball (in the background: call
        :meth:`wait_warm` once the rest of start-up is done)."""
        if self._pool is not None:
            self._warming = [self._pool.submit(_warm, i) for i in range(self.workers)]

    def wait_warm(self) -> None:
        for f in self._warming or []:
            f.result()
        self._warming = None

    async def encode(self, probs: np.ndarray, out: Output, threshold: float) -> list[bytes | None]:
        """probs [N, R, R, R] float32 in [0, 1] -> N files (None: empty mesh), in order."""

        def here() -> list[bytes | None]:
            return [encode_one(p, out, threshold) for p in probs]

        if out.format in VOXEL_FORMATS:  # microseconds of numpy: any hop would cost more
            return here()
        pool = self._pool
        if pool is None:
            return await run_in_threadpool(here)
        loop = asyncio.get_running_loop()
        try:
            jobs = [loop.run_in_executor(pool, encode_one, p, out, threshold) for p in probs]
            return list(await asyncio.gather(*jobs))
        except BrokenProcessPool:
            self._replace(pool)
            return await run_in_threadpool(here)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is not broken:  # another request already replaced it
            return
        log.error("a meshing worker died; replacing the pool of %d workers", self.workers)
        self.restarts += 1
        self._pool = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (for tests and metrics)."""
        return sorted(self._pool._processes) if self._pool is not None else []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
