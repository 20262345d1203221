"""ONNX Runtime sessions behind micro-batching queues, off the event loop.

    engine = Engine.load(bundle_dir, manifest, ...)  # in the lifespan, never at import
    probs = await engine.generate(z, timeout)         # [N, Z] -> [N, R, R, R] float32 in [0, 1]
    mu, logvar, *logits = await engine.encode_image(images, timeout)  # [N, 3, S, S] -> [N, Z]
    mu = await engine.encode_voxels(voxels, timeout)  # [N, 1, R, R, R] float32 -> [N, Z]
    prob = await engine.segment(images, timeout)  # [N, 3, S, S] -> [N, S, S] float32 in [0, 1]

Requests to the same network are batched greedily: a worker takes everything queued (up to
``max_batch`` rows) and runs it as one ONNX Runtime call in a dedicated executor; what arrives
meanwhile forms the next batch, which a second worker (``concurrent`` = 2, the default) starts
while the first runs. So a lone request never waits for company, and
under load batches grow by themselves. ``max_wait_ms`` > 0 additionally holds a batch that is
not full for up to that long (a GPU with a large batch sweet spot may want it).
A full queue raises QueueFull (the API answers 503 + Retry-After); a request that outlives its
deadline raises DeadlineExceeded (504) and its rows are dropped if not yet run.
With ``GAN3D_TRITON_URL`` the same queues send their batches to a Triton Inference Server
instead (``Engine.load(..., remote=TritonServer(...))``, app/triton.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from app.bundle import ONNX_ROLES, Manifest

log = logging.getLogger("gan3d.engine")


class QueueFull(RuntimeError):
    pass


class DeadlineExceeded(TimeoutError):
    pass


@dataclass(frozen=True)
class BatchingConfig:
    max_batch: int = 32  # rows per ONNX Runtime call
    max_wait_ms: float = 0.0  # extra wait for company when a batch is not full (0 = greedy)
    queue_size: int = 256  # requests waiting per network before QueueFull
    # batches in ONNX Runtime at once (all networks together): with 2, the next batch forms and
    # starts while one runs, so the cores do not idle between model calls
    concurrent: int = 1


@dataclass
class _Item:
    x: tuple[np.ndarray, ...]  # [n, ...] rows for each of the network's inputs
    future: asyncio.Future
    deadline: float  # loop.time() after which the rows are not worth running


@dataclass
class Stats:
    """Counters read by /metrics."""

    batches: int = 0
    rows: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    inference_seconds: float = 0.0


AUTO_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]


def make_session(
    path: Path, providers: list[str], threads: int, *, spinning: bool = True
) -> ort.InferenceSession:
    """A session on the first available providers, in the order given. ORT silently drops a
    provider whose libraries are missing; the caller logs what ``get_providers()`` reports.
    ``spinning``: ORT's intra-op threads busy-wait for work between operators (its default);
    off, they sleep, leaving the CPU to the event loop that shares the cores."""
    available = set(ort.get_available_providers())
    wanted = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), opts, providers=wanted)


class Batcher:
    """One network's queue and worker."""

    def __init__(
        self,
        name: str,
        session,  # ort.InferenceSession or app.triton.TritonModel
        executor: ThreadPoolExecutor | None,  # runs ONNX Runtime calls (None for Triton)
        cfg: BatchingConfig,
    ) -> None:
        self.name = name
        # an ONNX Runtime session, or a network on a Triton server (app/triton.py: the same
        # input and output names, and an async ``infer`` in place of ``run``)
        self.session = session
        self.remote = getattr(session, "remote", False)
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [o.name for o in session.get_outputs()]
        self.executor = executor
        self.cfg = cfg
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=cfg.queue_size)
        self.stats = Stats()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._worker(), name=f"{self.name}-{i}")
            for i in range(self.cfg.concurrent)
        ]

    async def stop(self) -> None:
        """Finish what is queued, then stop (graceful shutdown)."""
        await self.queue.join()
        for task in self._tasks:
            task.cancel()

    def run_now(self, *x: np.ndarray) -> list[np.ndarray]:
        """Synchronous call (an array per input, in order), for warm-up and benchmarks."""
        return self.session.run(self.outputs, dict(zip(self.inputs, x, strict=True)))

    async def submit(self, *x: np.ndarray, timeout: float) -> list[np.ndarray]:
        """Rows for each input (as many rows in each) -> the outputs' rows for them."""
        loop = asyncio.get_running_loop()
        item = _Item(x, loop.create_future(), loop.time() + timeout)
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise QueueFull(
                f"the {self.name} queue is full ({self.cfg.queue_size} waiting)"
            ) from None
        try:
            return await asyncio.wait_for(asyncio.shield(item.future), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"{self.name} did not finish within {timeout:.1f} s") from None

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            items, rows = [first], len(first.x[0])
            wait_until = loop.time() + self.cfg.max_wait_ms / 1000
            while rows < self.cfg.max_batch:
                if not self.queue.empty():  # everything already waiting joins this batch
                    nxt = self.queue.get_nowait()
                elif loop.time() < wait_until:
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), wait_until - loop.time())
                    except TimeoutError:
                        break
                else:
                    break
                items.append(nxt)
                rows += len(nxt.x[0])
            now = loop.time()
            live = [it for it in items if now < it.deadline and not it.future.done()]
            try:
                if live:
                    await self._run(live)
            finally:
                for _ in items:
                    self.queue.task_done()

    async def _run(self, items: list[_Item]) -> None:
        x = [np.concatenate(rows) for rows in zip(*(it.x for it in items), strict=True)]
        t = time.perf_counter()
        try:
            if self.remote:  # as long as the latest deadline among these requests allows
                left = max(it.deadline for it in items) - asyncio.get_running_loop().time()
                outs = await self.session.infer(x, timeout=max(left, 0.001))
            else:
                outs = await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.run_now, *x
                )
        except Exception as e:  # a failed call fails these requests, not the worker
            for it in items:
                if not it.future.done():
                    it.future.set_exception(e)
            return
        self.stats.inference_seconds += time.perf_counter() - t
        self.stats.batches += 1
        self.stats.rows += len(x[0])
        self.stats.batch_sizes.append(len(x[0]))
        del self.stats.batch_sizes[:-1000]
        start = 0
        for it in items:
            n = len(it.x[0])
            if not it.future.done():
                it.future.set_result([o[start : start + n] for o in outs])
            start += n

    def depth(self) -> int:
        return self.queue.qsize()


class Engine:
    def __init__(
        self, manifest: Manifest, batchers: dict[str, Batcher], provider: str, remote=None
    ) -> None:
        self.manifest = manifest
        self.batchers = batchers
        self.provider = provider  # the execution provider actually in use, or "triton"
        self.remote = remote  # the app.triton.TritonServer serving the networks, if one does

    @classmethod
    def load(
        cls,
        bundle_dir: Path,
        manifest: Manifest,
        *,
        providers: list[str],
        threads: int,
        batching: BatchingConfig,
        spinning: bool = True,
        remote=None,
    ) -> Engine:
        """``remote``: an app.triton.TritonServer that serves every network in place of
        in-process ONNX Runtime sessions (the queues in front stay here)."""
        if remote is not None:
            batchers = {
                role: Batcher(
                    role, remote.model(role, entry.onnx, batching.max_batch), None, batching
                )
                for role in ONNX_ROLES
                if (entry := manifest.file(role)) is not None
            }
            log.info("networks served by the Triton server at %s", remote.url)
            return cls(manifest, batchers, "triton", remote)
        explicit = bool(providers)  # empty: the best available, CUDA first
        providers = providers or AUTO_PROVIDERS
        executor = ThreadPoolExecutor(batching.concurrent, thread_name_prefix="gan3d-ort")
        batchers = {}
        provider = "CPUExecutionProvider"
        for role in ONNX_ROLES:
            entry = manifest.file(role)
            if entry is None:
                continue
            sess = make_session(
                Path(bundle_dir) / entry.path, providers, threads, spinning=spinning
            )
            provider = sess.get_providers()[0]
            batchers[role] = Batcher(role, sess, executor, batching)
        if explicit and provider != providers[0]:
            log.warning("execution provider %s requested, %s in use", providers[0], provider)
        log.info("ONNX Runtime provider in use: %s", provider)
        return cls(manifest, batchers, provider)

    def start(self) -> None:
        for b in self.batchers.values():
            b.start()

    async def stop(self) -> None:
        for b in self.batchers.values():
            await b.stop()
        if self.remote is not None:
            await self.remote.close()

    async def check_remote(self) -> str | None:
        """With a Triton server: None when it serves every network, else what is wrong."""
        return await self.remote.check([b.session for b in self.batchers.values()])

    def warm_up(self) -> None:
        """A call per network at batch 1 so the first request is not slow, and the generator at
        its max batch too (under load it runs full batches; the encoders, which serve uploads,
        rarely do, and warming them at max batch cost half a second of cold start)."""
        z, r = self.manifest.latent.size, self.manifest.voxel_resolution
        for role, b in self.batchers.items():
            if b.remote:  # a Triton server warms its own models (config.pbtxt model_warmup)
                continue
            for n in (1, b.cfg.max_batch) if role == "generator" else (1,):
                if role == "generator":
                    b.run_now(np.zeros((n, z), np.float32))
                elif role == "voxel_encoder":
                    b.run_now(np.zeros((n, 1, r, r, r), np.float32))
                elif role == "generator_gradient":
                    b.run_now(np.zeros((n, z), np.float32), np.zeros((n, r, r, r), np.float32))
                else:
                    s = self.manifest.image.size if self.manifest.image else 0
                    b.run_now(np.zeros((n, 3, s, s), np.float32))

    def has(self, role: str) -> bool:
        return role in self.batchers

    async def generate(self, z: np.ndarray, timeout: float) -> np.ndarray:
        (probs,) = await self.batchers["generator"].submit(z.astype(np.float32), timeout=timeout)
        return probs[:, 0]

    async def encode_image(self, images: np.ndarray, timeout: float) -> list[np.ndarray]:
        """images [N, 3, S, S] -> [mu, logvar] [N, Z] each, then, for a prototype encoder,
        the prototype logits [N, K]."""
        return await self.batchers["image_encoder"].submit(
            images.astype(np.float32), timeout=timeout
        )

    async def segment(self, images: np.ndarray, timeout: float) -> np.ndarray:
        """images [N, 3, S, S] -> where the object is, [N, S, S] float32 in [0, 1]."""
        (prob,) = await self.batchers["segmenter"].submit(
            images.astype(np.float32), timeout=timeout
        )
        return prob[:, 0]

    async def recognize(self, images: np.ndarray, timeout: float) -> np.ndarray:
        """images [N, 3, S, S] -> the recognizer's unit feature vectors [N, D] float32."""
        (features,) = await self.batchers["recognizer"].submit(
            images.astype(np.float32), timeout=timeout
        )
        return features

    async def encode_voxels(self, voxels: np.ndarray, timeout: float) -> np.ndarray:
        mu, _ = await self.batchers["voxel_encoder"].submit(
            voxels.astype(np.float32), timeout=timeout
        )
        return mu

    async def gradient(
        self, z: np.ndarray, target: np.ndarray, timeout: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """z [N, Z], target grids [N, R, R, R] -> (gradient [N, Z], loss [N]) of the generator's
        reconstruction loss (bundle role generator_gradient)."""
        grad, loss = await self.batchers["generator_gradient"].submit(
            z.astype(np.float32), target.astype(np.float32), timeout=timeout
        )
        return grad, loss
