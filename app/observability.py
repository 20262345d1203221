"""Prometheus metrics, JSON logs with a request id, and the optional API key.

Metrics: gan3d_requests_total{route,status}, gan3d_request_seconds{route} (histogram),
gan3d_queue_depth{network}, gan3d_batch_size{network} (histogram), gan3d_inference_seconds_total
{network}; with a Triton server, gan3d_triton_failures_total{network,reason} and
gan3d_triton_ready. Each app has its own registry, so tests and workers never share counters.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem

API_PREFIX = "/v1/"  # what GAN3D_API_KEY protects (aliases are rewritten to it first)
# Every HTML response (the page, /docs) unless it sets its own: scripts and styles from this
# origin only (inline styles allowed: model-viewer's shadow DOM sets them; WebAssembly allowed,
# not JavaScript eval: model-viewer compiles a wasm module), models and images
# from this origin or blob:/data: URLs the page made, never framed by another site.
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self' data: blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csp_with_inline_scripts(html: str) -> str:
    """PAGE_CSP extended by the sha256 of each inline <script> in ``html`` (Swagger UI's page
    starts itself with one), so only those exact scripts may run."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    ]
    return PAGE_CSP.replace("script-src 'self'", " ".join(["script-src 'self'", *hashes]), 1)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gan3d_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "gan3d_request_seconds", "request latency", ["route"], registry=self.registry
        )
        self.queue = Gauge(
            "gan3d_queue_depth", "requests waiting", ["network"], registry=self.registry
        )
        self.batch = Histogram(
            "gan3d_batch_size",
            "rows per inference call",
            ["network"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.inference = Gauge(
            "gan3d_inference_seconds_total",
            "time in ONNX Runtime",
            ["network"],
            registry=self.registry,
        )
        self.mesh_workers = Gauge(
            "gan3d_mesh_workers", "meshing worker processes (0: threads)", registry=self.registry
        )
        self.mesh_restarts = Gauge(
            "gan3d_mesh_pool_restarts_total",
            "meshing pools replaced after a worker died",
            registry=self.registry,
        )
        # with GAN3D_TRITON_URL: calls the Triton server did not serve, and its state at the last
        # readiness check (1 every model ready and matching the bundle, 0 not)
        self.triton_failures = Gauge(
            "gan3d_triton_failures_total",
            "calls to the Triton server that failed (reason: unavailable or deadline)",
            ["network", "reason"],
            registry=self.registry,
        )
        self.triton_up: Gauge | None = None  # made when a Triton server is in use
        self._seen: dict[str, int] = {}

    def triton_ready(self, ready: bool) -> None:
        """The Triton server's state at a readiness check (the gauge exists only with one)."""
        if self.triton_up is None:
            self.triton_up = Gauge(
                "gan3d_triton_ready",
                "the Triton server served every network at the last readiness check",
                registry=self.registry,
            )
        self.triton_up.set(1 if ready else 0)

    def render(self, engine, mesher=None) -> bytes:
        """Refresh engine and meshing gauges, then the exposition text."""
        if mesher is not None:
            self.mesh_workers.set(mesher.workers)
            self.mesh_restarts.set(mesher.restarts)
        if engine is not None:
            for name, b in engine.batchers.items():
                self.queue.labels(name).set(b.depth())
                self.inference.labels(name).set(b.stats.inference_seconds)
                new = b.stats.batches - self._seen.get(name, 0)
                for size in b.stats.batch_sizes[-new:] if new > 0 else []:
                    self.batch.labels(name).observe(size)
                self._seen[name] = b.stats.batches
            if engine.remote is not None:
                for (name, reason), n in engine.remote.failures.items():
                    self.triton_failures.labels(name, reason).set(n)
        return generate_latest(self.registry)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


access = logging.getLogger("gan3d.access")


class RequestContext:
    """Request id (incoming X-Request-ID echoed, else made), API key, access log, metrics.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which wraps every response in an
    extra task and stream: measurable per-request cost at the throughput this service aims at.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics, api_key: str | None) -> None:
        self.app = app
        self.metrics = metrics
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = headers.get("x-request-id", "")[:128] or uuid.uuid4().hex
        start = time.perf_counter()
        path, method = scope["path"], scope["method"]
        status = 500  # what the server answers if the app raises

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out = MutableHeaders(scope=message)
                out.append("X-Request-ID", rid)
                out.append("X-Content-Type-Options", "nosniff")
                if out.get("content-type", "").startswith("text/html"):
                    out.setdefault("Content-Security-Policy", PAGE_CSP)
            await send(message)

        try:
            if (
                self.api_key
                and method != "OPTIONS"
                and path.startswith(API_PREFIX)  # the page, docs, health and metrics stay open
                and not secrets.compare_digest(
                    headers.get("x-api-key", "").encode("latin-1"),  # the raw header bytes
                    self.api_key.encode("utf-8"),
                )
            ):
                response = problem(401, "Unauthorized", "send the service's API key in X-API-Key")
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - start
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.latency.labels(name).observe(seconds)
            access.info(
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": method,
                        "path": path,
                        "status": status,
                        "ms": round(seconds * 1000, 1),
                    }
                },
            )
