"""GET /v1/model, /v1/concepts: what is being served."""

from __future__ import annotations

from fastapi import APIRouter

from app.deps import LoadedDep
from app.latents import SOURCES
from app.openapi import errors

router = APIRouter(prefix="/v1", tags=["meta"], responses=errors(401, 503))


@router.get("/model", summary="the verified bundle manifest and the execution provider in use")
async def model(loaded: LoadedDep) -> dict:
    prior = loaded.space.prior
    real = prior is not None and prior.has_kernels
    return {
        **loaded.manifest.model_dump(mode="json"),
        "execution_provider": loaded.engine.provider,
        # POST /v1/sample's "source" values this bundle's prior serves
        "sample_sources": [s for s in SOURCES if real or s != "real"],
    }


@router.get("/concepts", summary="named latent vectors usable as concept / ref.concept")
async def concepts(loaded: LoadedDep) -> dict:
    names = loaded.space.concepts.names()
    m = loaded.manifest
    return {
        "concepts": names,
        "categories": [c for c in m.categories if c in names],
        "attribute_directions": [a.name for a in m.attributes if a.name in names],
    }
