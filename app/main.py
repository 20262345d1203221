"""create_app(settings): the lifespan verifies and loads the bundle, warms up, then serves."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match, Mount
from starlette.types import Scope

from app import errors, memory
from app.bundle import BundleError, Manifest, verify
from app.cache import ByteLRU
from app.cpus import available_cores, quota_cores
from app.deps import Loaded
from app.directions import Directions
from app.engine import BatchingConfig, Engine
from app.errors import ProblemCORS
from app.latents import Concepts, LatentSpace, MixturePrior
from app.limits import (
    BodyFirst,
    BodyLimit,
    InFlightLimit,
    JsonBodyLimits,
    RequestDeadline,
    UnversionedAliases,
)
from app.meshpool import MeshPool, default_workers
from app.observability import API_PREFIX, Metrics, RequestContext, csp_with_inline_scripts
from app.openapi import with_bundle_facts
from app.prototypes import Prototypes
from app.recognition import Recognition
from app.routes import edit, encode, generate, meta, reconstruct
from app.settings import Settings
from app.triton import TritonServer

log = logging.getLogger("gan3d")
STATIC_DIR = Path(__file__).parent / "static"


class ServiceState:
    """What the lifespan loaded; handlers read it through app.deps."""

    def __init__(self) -> None:
        self.loaded: Loaded | None = None
        self.not_ready_reason: str = "starting"


def _load(settings: Settings) -> Loaded:
    # 1. meshing workers start first: their imports (~1 s) overlap the bundle's loading
    workers = default_workers() if settings.mesh_workers is None else settings.mesh_workers
    mesher = MeshPool(workers)
    mesher.start_warm_up()
    try:
        # 2. verify the bundle (sha256 of every file, ONNX signatures); refuse to serve otherwise
        return _load_networks(settings, verify(settings.bundle_dir), mesher)
    except BaseException:
        mesher.close()
        raise


def _load_networks(settings: Settings, manifest: Manifest, mesher: MeshPool) -> Loaded:
    # 3. ONNX Runtime sessions on the configured providers, behind micro-batching queues
    batching = BatchingConfig(
        settings.max_batch,
        settings.max_wait_ms,
        settings.queue_size,
        concurrent=settings.concurrent_batches,
    )
    engine = Engine.load(
        settings.bundle_dir,
        manifest,
        providers=settings.providers,
        # 0: ONNX Runtime's own choice (a thread per physical core), unless a container's CPU
        # quota allows fewer cores than that (app/cpus.py)
        threads=settings.intra_op_threads or (available_cores() if quota_cores() else 0),
        spinning=settings.ort_spinning,
        batching=batching,
        remote=(
            TritonServer(settings.triton_url, prefix=settings.triton_model_prefix)
            if settings.triton_url
            else None
        ),
    )
    # 4. the latent space: named concept vectors and the sampling prior
    z = manifest.latent.size
    entry = manifest.file("concepts")
    concepts = Concepts.load(settings.bundle_dir / entry.path, z) if entry else Concepts({}, z)
    entry = manifest.file("prior")
    prior = MixturePrior.load(settings.bundle_dir / entry.path) if entry else None
    space = LatentSpace(z, concepts, std=manifest.latent.std, prior=prior)
    entry = manifest.file("directions")
    directions = Directions.load(settings.bundle_dir / entry.path, z) if entry else None
    # 5. warm-up, so that readiness means the first request is fast
    engine.warm_up()
    entry = manifest.file("prototypes")
    prototypes = Prototypes.load(settings.bundle_dir / entry.path, z) if entry else None
    entry = manifest.file("recognition")
    recognition = (
        Recognition.load(settings.bundle_dir / entry.path, manifest.image.recognizer_features)
        if entry
        else None
    )
    mesher.wait_warm()
    return Loaded(manifest, engine, space, mesher, directions, prototypes, recognition)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service: 1. state and the lifespan that loads the bundle; 2. the limits, as
    middleware; 3. the API's routers; 4. health, metrics, docs and the web page."""
    settings = settings or Settings()
    state = ServiceState()
    app = FastAPI(
        title="gan3d", version="0.1.0", lifespan=_lifespan(settings, state), docs_url=None
    )
    app.get("/docs", include_in_schema=False)(_docs)
    # 1. what handlers read (app/deps.py)
    app.state.gan3d = state
    app.state.settings = settings
    app.state.shape_cache = ByteLRU(settings.shape_cache_bytes)
    app.state.image_slots = asyncio.Semaphore(settings.image_workers)
    errors.install(app)
    metrics = Metrics()
    app.state.metrics = metrics
    # 2. limits, each answering before any work
    _add_limits(app, settings, metrics)
    # 3. the API, and its unversioned aliases
    routers = (generate.router, edit.router, reconstruct.router, encode.router, meta.router)
    for router in routers:
        app.include_router(router)
    versioned = [route.path for r in routers for route in r.routes]
    app.add_middleware(
        UnversionedAliases, first_segments={p.split("/")[2].split(".")[0] for p in versioned}
    )
    # 4. metrics, health, the OpenAPI document with the bundle's facts, the page
    _add_health_and_metrics(app, state, metrics)
    app.openapi = _openapi(app, state)  # type: ignore[method-assign]
    # the demo page and its vendored viewer, last, and never for an API path (there a POST
    # route asked with another method answers 405 with its own Allow, not the files' GET, HEAD)
    app.router.routes.append(
        PageMount("/", app=StaticFiles(directory=STATIC_DIR, html=True), name="static")
    )
    return app


def _lifespan(settings: Settings, state: ServiceState):
    """Start-up: verify, load and warm the bundle (a bundle that does not verify is not served,
    and readiness says why); shut-down: drain what is queued, within the drain limit."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        memory.tune()  # freed buffers go back to the system (app/memory.py)
        try:
            state.loaded = _load(settings)
            state.loaded.engine.start()
            # what start-up made lives as long as the process: out of the cyclic collector's
            # way, so that its full collections stay short (they stall the event loop)
            gc.collect()
            gc.freeze()
            state.not_ready_reason = ""
            log.info("serving bundle %s", settings.bundle_dir)
        except BundleError as e:
            # the log names the path; the health endpoint, open to anyone, does not
            state.not_ready_reason = f"bundle {settings.bundle_dir.name} not served: {e}"
            log.error("bundle %s not served: %s", settings.bundle_dir, e)
        yield
        if state.loaded is not None:  # graceful: finish what is queued, within the drain limit
            try:
                await asyncio.wait_for(state.loaded.engine.stop(), settings.drain_timeout_s)
            except TimeoutError:
                log.warning("drain limit %.0f s reached; stopping", settings.drain_timeout_s)
            state.loaded.mesher.close()

    return lifespan


async def _docs() -> HTMLResponse:
    """Swagger UI from the vendored copy in static/vendor (no CDN: works offline)."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="gan3d API",
        swagger_js_url="/vendor/swagger-ui-bundle.js",
        swagger_css_url="/vendor/swagger-ui.css",
        swagger_favicon_url="/vendor/swagger-favicon.png",
    )
    page.headers["Content-Security-Policy"] = csp_with_inline_scripts(bytes(page.body).decode())
    return page


def _add_limits(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """The limits as middleware, added inside out (the last added runs first): CORS, body
    size, request context and the API key, the whole body before admission, JSON bounds,
    in-flight slots, the deadline."""
    app.add_middleware(RequestDeadline, seconds=settings.request_timeout_s)
    app.add_middleware(
        InFlightLimit, max_in_flight=settings.max_in_flight, wait_s=settings.admission_wait_s
    )  # inside: logged
    app.add_middleware(
        JsonBodyLimits,
        max_bytes=settings.max_json_bytes,
        max_containers=settings.max_json_containers,
    )  # outside admission, like BodyFirst: a refused or slow body takes no slot
    app.add_middleware(BodyFirst, timeout_s=settings.body_timeout_s)
    app.add_middleware(RequestContext, metrics=metrics, api_key=settings.api_key)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    if settings.cors_origins:  # outside the limits and auth: their 401/413/503 carry CORS too
        app.add_middleware(
            ProblemCORS,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=[
                "X-Gan3d-Latent",
                "X-Gan3d-Seed",
                "X-Gan3d-Category",
                "X-Gan3d-Category-Probability",
                "X-Gan3d-Blend",
                "X-Gan3d-Mask",
            ],
        )


def _add_health_and_metrics(app: FastAPI, state: ServiceState, metrics: Metrics) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        engine = state.loaded.engine if state.loaded else None
        mesher = state.loaded.mesher if state.loaded else None
        return Response(metrics.render(engine, mesher), media_type="text/plain; version=0.0.4")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    def not_ready(detail: str) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"status": "not ready", "detail": detail},
            headers={"Retry-After": "5"},
        )

    @app.get("/health/ready")
    async def ready() -> Any:
        if state.loaded is None:
            return not_ready(state.not_ready_reason)
        engine = state.loaded.engine
        if engine.remote is not None:  # the networks on a Triton server: it must serve them
            remote_problem = await engine.check_remote()
            metrics.triton_ready(remote_problem is None)
            if remote_problem:
                return not_ready(remote_problem)
        return {
            "status": "ready",
            "bundle": state.loaded.manifest.name,
            "execution_provider": engine.provider,
        }


def _openapi(app: FastAPI, state: ServiceState):
    def openapi() -> dict[str, Any]:
        """FastAPI's document with what the served bundle fixes (concept names, latent size;
        cached once the bundle is loaded)."""
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
        if state.loaded is None:
            return doc
        space = state.loaded.space
        directions = state.loaded.directions.names() if state.loaded.directions else None
        app.openapi_schema = with_bundle_facts(doc, space.concepts.names(), space.size, directions)
        return app.openapi_schema

    return openapi


class PageMount(Mount):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(API_PREFIX):
            return Match.NONE, {}
        return super().matches(scope)
