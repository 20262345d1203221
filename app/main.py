"""create_app(settings): the lifespan verifies the bundle; routers report health and the model."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.bundle import BundleError, Manifest, verify
from app.settings import Settings

log = logging.getLogger("gan3d")


class ServiceState:
    """What the lifespan loaded; handlers read it, tests may replace it."""

    def __init__(self) -> None:
        self.manifest: Manifest | None = None
        self.not_ready_reason: str = "starting"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = ServiceState()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # 1. verify the bundle (sha256 of every file, ONNX signatures); refuse to serve otherwise
        try:
            state.manifest = verify(settings.bundle_dir)
            state.not_ready_reason = ""
            log.info("bundle %s verified", settings.bundle_dir)
        except BundleError as e:
            state.not_ready_reason = f"bundle {settings.bundle_dir} not served: {e}"
            log.error(state.not_ready_reason)
        yield

    app = FastAPI(title="gan3d", version="0.1.0", lifespan=lifespan)
    app.state.gan3d = state
    app.state.settings = settings

    @app.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/health/ready")
    def ready() -> Any:
        if state.manifest is None:
            return JSONResponse(
                status_code=503,
                content={"status": "not ready", "detail": state.not_ready_reason},
                headers={"Retry-After": "5"},
            )
        return {"status": "ready", "bundle": state.manifest.name}

    @app.get("/v1/model")
    def model() -> Any:
        if state.manifest is None:
            return JSONResponse(status_code=503, content={"detail": state.not_ready_reason})
        return state.manifest.model_dump(mode="json")

    return app
