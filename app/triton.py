"""The bundle's networks on a Triton Inference Server, when ``GAN3D_TRITON_URL`` is set.

    server = TritonServer("http://triton:8000", prefix="gan3d")   # or grpc://triton:8001
    net = server.model("generator", manifest.file("generator").onnx)
    outs = await net.infer([z], timeout=2.0)      # the same arrays ONNX Runtime would give
    problem = await server.check(nets)            # None when every model is ready and matches

The KServe v2 inference protocol through ``tritonclient``'s asyncio clients, so a call waits in
the event loop, not in a thread. The models are the ones ``python -m training triton`` writes
(``<prefix>_<role>``, the bundle's tensor names). The app's micro-batching queues (app/engine.py)
stay in front: a ``TritonModel`` stands where an ONNX Runtime session would, and Triton's own
dynamic batching merges what several replicas send.

Failures are answers, never hangs: a server that is down, refuses (its queue full) or lacks a
model raises ``TritonUnavailable`` (503 + Retry-After); one slower than the request's deadline
raises ``DeadlineExceeded`` (504) at the deadline, and Triton is told the same deadline so it
drops the rows from its queue. Counted per network and reason for /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from urllib.parse import urlsplit

import numpy as np

from app.bundle import OnnxSignature
from app.engine import DeadlineExceeded

log = logging.getLogger("gan3d.triton")
SCHEMES = ("http", "https", "grpc", "grpcs")
CHECK_TIMEOUT_S = 2.0  # one readiness check of every model


class TritonUnavailable(RuntimeError):
    """The Triton server did not serve a call (down, refused, model missing): 503."""


def parse_url(url: str) -> tuple[str, str, bool]:
    """``http://host:port`` -> ("http", "host:port", ssl); a ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(
            f"{url!r} is not a Triton address: use http://host:port (HTTP/REST) or "
            "grpc://host:port (gRPC); https:// and grpcs:// for TLS"
        )
    protocol = "grpc" if parts.scheme.startswith("grpc") else "http"
    return protocol, parts.netloc, parts.scheme.endswith("s")


class TritonServer:
    """One client per event loop (tritonclient's asyncio clients are single-threaded), made on
    first use inside the running loop."""

    def __init__(self, url: str, *, prefix: str = "gan3d") -> None:
        self.url = url
        self.protocol, self.address, self.ssl = parse_url(url)
        self.prefix = prefix
        self._client = None
        self._mod = None
        self.failures: Counter[tuple[str, str]] = Counter()  # (network, reason) -> calls
        self._last_problem: str | None = ""  # "" = not checked yet

    def _lib(self):
        if self._mod is None:
            if self.protocol == "grpc":
                import tritonclient.grpc.aio as mod
            else:
                import tritonclient.http.aio as mod
            self._mod = mod
        return self._mod

    def client(self):
        if self._client is None:
            self._client = self._lib().InferenceServerClient(self.address, ssl=self.ssl)
        return self._client

    def model(self, role: str, signature: OnnxSignature, max_batch: int = 32) -> TritonModel:
        return TritonModel(self, role, f"{self.prefix}_{role}", signature, max_batch)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def check(self, models: list[TritonModel]) -> str | None:
        """None when every model is ready and declares the bundle's tensors; else what is not."""
        try:
            problem = await asyncio.wait_for(self._check(models), CHECK_TIMEOUT_S)
        except TimeoutError:
            problem = f"the inference server did not answer within {CHECK_TIMEOUT_S:.0f} s"
        except Exception as e:  # any client failure: not ready (the log says how)
            problem = "the inference server is not reachable"
            log.debug("Triton at %s: %s", self.url, e)
        if problem != self._last_problem:  # logged when it changes, not at every probe
            if problem:
                log.warning("Triton at %s: %s", self.url, problem)
            else:
                log.info("Triton at %s serves every network", self.url)
            self._last_problem = problem
        return problem

    async def _check(self, models: list[TritonModel]) -> str | None:
        client = self.client()
        for m in models:
            if not await client.is_model_ready(m.model):
                return f"Triton model {m.model} is not ready (or not loaded)"
            if m.declared is None:
                meta = await self._metadata(m.model)
                problem = m.match(meta)
                if problem:
                    return problem
        return None

    async def _metadata(self, model: str) -> dict:
        client = self.client()
        if self.protocol == "grpc":
            return await client.get_model_metadata(model, as_json=True)
        return await client.get_model_metadata(model)


class TritonModel:
    """What app.engine.Batcher needs of a network, served by Triton: the bundle's input and
    output names, and ``infer`` (async) in place of an ONNX Runtime session's ``run``."""

    remote = True

    def __init__(
        self,
        server: TritonServer,
        role: str,
        model: str,
        signature: OnnxSignature,
        max_batch: int,
    ) -> None:
        self.server = server
        self.role = role
        self.model = model
        self.signature = signature
        self.max_batch = max_batch  # rows per Triton call (its config's max_batch_size)
        self.declared: dict | None = None  # Triton's metadata, once it matched

    def get_inputs(self):
        return self.signature.inputs

    def get_outputs(self):
        return self.signature.outputs

    def match(self, meta: dict) -> str | None:
        """Triton's metadata against the bundle's signature: the same tensor names, and the
        same row shapes (a value per row may be declared [1])."""
        for kind in ("inputs", "outputs"):
            theirs = {t["name"]: [int(d) for d in t["shape"][1:]] for t in meta.get(kind, [])}
            for t in getattr(self.signature, kind):
                ours = [int(d) for d in t.shape[1:]]
                if t.name not in theirs:
                    return (
                        f"Triton model {self.model} has no {kind[:-1]} {t.name!r} "
                        f"(it has {sorted(theirs)}): not the bundle's network"
                    )
                if theirs[t.name] != ours and not (ours == [] and theirs[t.name] in ([1], [])):
                    return (
                        f"Triton model {self.model} declares {t.name} as {theirs[t.name]} per "
                        f"row; the bundle's network has {ours}"
                    )
        self.declared = meta
        return None

    async def infer(self, x: list[np.ndarray], timeout: float) -> list[np.ndarray]:
        """Rows for each input -> the outputs' rows, in chunks of at most ``max_batch`` rows
        sent at once. Raises TritonUnavailable or DeadlineExceeded."""
        n = len(x[0])
        starts = range(0, n, self.max_batch)
        deadline = time.monotonic() + timeout
        chunks = [[a[s : s + self.max_batch] for a in x] for s in starts]
        try:
            parts = await asyncio.wait_for(
                asyncio.gather(*(self._call(c, deadline) for c in chunks)), timeout
            )
        except TimeoutError:
            self.server.failures[(self.role, "deadline")] += 1
            raise DeadlineExceeded(
                f"{self.role} on the Triton server did not finish within {timeout:.1f} s"
            ) from None
        except TritonUnavailable:
            self.server.failures[(self.role, "unavailable")] += 1
            raise
        return [np.concatenate(rows) for rows in zip(*parts, strict=True)]

    async def _call(self, x: list[np.ndarray], deadline: float) -> list[np.ndarray]:
        mod = self.server._lib()
        grpc = self.server.protocol == "grpc"
        binary = {} if grpc else {"binary_data": True}  # HTTP: raw bytes, not JSON numbers
        inputs = []
        for spec, a in zip(self.signature.inputs, x, strict=True):
            inp = mod.InferInput(spec.name, list(a.shape), "FP32")
            inp.set_data_from_numpy(np.ascontiguousarray(a, np.float32), **binary)
            inputs.append(inp)
        outputs = [mod.InferRequestedOutput(t.name, **binary) for t in self.signature.outputs]
        # Triton drops the request from its queue once this has passed (microseconds)
        left_us = max(1, int((deadline - time.monotonic()) * 1e6))
        try:
            result = await self.server.client().infer(
                self.model, inputs, outputs=outputs, timeout=left_us
            )
        except Exception as e:  # connection, protocol or refusal alike; the log says which
            log.warning("Triton at %s did not serve %s: %s", self.server.url, self.model, e)
            raise TritonUnavailable(
                f"the inference server did not serve the {self.role} network"
            ) from e
        n = len(x[0])
        return [
            result.as_numpy(t.name).reshape(n, *[int(d) for d in t.shape[1:]])
            for t in self.signature.outputs
        ]
