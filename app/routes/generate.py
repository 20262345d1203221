"""POST /v1/sample, /v1/interpolate, /v1/arithmetic: latents -> generator -> shapes."""

from __future__ import annotations

import hashlib
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Path, Query, Request, Response

from app import latents
from app.cache import ByteLRU, Cached
from app.deps import LoadedDep, SettingsDep
from app.meshing import DEFAULT_UPSAMPLE, MESHING_VERSION
from app.openapi import COMMON, SHAPE_FILES, errors
from app.results import shapes_response
from app.schemas import (
    ArithmeticRequest,
    Format,
    InterpolateRequest,
    Output,
    SampleRequest,
    Source,
)

router = APIRouter(prefix="/v1", tags=["generate"], responses=errors(400, *COMMON))


@router.post(
    "/sample",
    responses=SHAPE_FILES,
    summary="n shapes from seeds (given or drawn), optionally near a concept",
)
async def sample(body: SampleRequest, loaded: LoadedDep, settings: SettingsDep) -> Response:
    m = loaded.manifest
    # 1. seeds: given, or drawn and returned so that the call can be repeated
    seeds = body.seeds or [
        int(s) for s in np.random.default_rng().integers(0, latents.MAX_SEED, body.n)
    ]
    # 2. latents from the bundle's prior, around a concept when one is named
    space = loaded.space
    centre = space.concepts.get(body.concept) if body.concept else None
    z = np.stack(
        [
            space.seed(s, temperature=body.temperature, centre=centre, source=body.source)
            for s in seeds
        ]
    )
    # 3. generator, then meshing / encoding
    probs = await loaded.engine.generate(z, settings.request_timeout_s)
    threshold = body.output.threshold or m.threshold
    return await shapes_response(
        probs,
        z,
        body.output,
        mesher=loaded.mesher,
        max_bytes=settings.max_response_bytes,
        threshold=threshold,
        seeds=seeds,
    )


@router.post("/interpolate", summary="frames along a path through two or more keyframes")
async def interpolate(
    body: InterpolateRequest, loaded: LoadedDep, settings: SettingsDep
) -> Response:
    m = loaded.manifest
    keys = [loaded.space.resolve(k) for k in body.keyframes]
    z = latents.path(keys, body.steps, method=body.method)
    probs = await loaded.engine.generate(z, settings.request_timeout_s)
    threshold = body.output.threshold or m.threshold
    out = body.output.model_copy(update={"envelope": True})  # frames always come as a list
    return await shapes_response(
        probs,
        z,
        out,
        mesher=loaded.mesher,
        max_bytes=settings.max_response_bytes,
        threshold=threshold,
        name="frame",
    )


@router.post(
    "/arithmetic",
    responses=SHAPE_FILES,
    summary="a weighted sum of latents, e.g. chair - armless + armrests",
)
async def arithmetic(body: ArithmeticRequest, loaded: LoadedDep, settings: SettingsDep) -> Response:
    m = loaded.manifest
    terms = [(t.weight, loaded.space.resolve(t.ref)) for t in body.terms]
    z = latents.weighted_sum(terms)[None]
    probs = await loaded.engine.generate(z, settings.request_timeout_s)
    threshold = body.output.threshold or m.threshold
    return await shapes_response(
        probs,
        z,
        body.output,
        mesher=loaded.mesher,
        max_bytes=settings.max_response_bytes,
        threshold=threshold,
        name="arithmetic",
    )


@router.get(
    "/shapes/{seed}.{fmt}",
    responses=SHAPE_FILES,
    summary="one shape by seed; cacheable, for <model-viewer src>",
)
async def shape_by_seed(
    seed: Annotated[int, Path(ge=0, le=latents.MAX_SEED)],
    fmt: Annotated[Format, Path(description="file format")],
    loaded: LoadedDep,
    settings: SettingsDep,
    request: Request,
    concept: Annotated[str | None, Query(min_length=1)] = None,
    temperature: Annotated[float, Query(gt=0, le=3)] = 1.0,
    source: Annotated[Source, Query()] = "any",
    threshold: Annotated[float | None, Query(gt=0, lt=1)] = None,
    upsample: Annotated[int, Query(ge=1, le=4)] = DEFAULT_UPSAMPLE,
) -> Response:
    """The same bytes as POST /v1/sample with these options, plus ETag / Cache-Control: the
    bytes depend only on the bundle and the URL, so caches may keep them."""
    # the bytes depend on the generator, the prior and the concepts the seed and URL pick,
    # and on how the service meshes
    m = loaded.manifest
    files = "|".join(f.sha256 for r in ("generator", "prior", "concepts") if (f := m.file(r)))
    tag_src = f"{files}|{MESHING_VERSION}|{request.url.path}|{request.url.query}"
    etag = '"' + hashlib.sha256(tag_src.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    cache: ByteLRU = request.app.state.shape_cache
    hit = cache.get(etag)  # the ETag names the bundle, path and query: the same bytes
    if hit is not None:
        return Response(hit.body, media_type=hit.media_type, headers={**hit.headers, **headers})
    body = SampleRequest(
        seeds=[seed],
        concept=concept,
        temperature=temperature,
        source=source,
        output=Output(format=fmt, threshold=threshold, upsample=upsample, envelope=False),
    )
    response = await sample(body, loaded, settings)
    own = {
        k: v for k, v in response.headers.items() if k.lower().startswith(("x-gan3d", "content-d"))
    }
    cache.put(etag, Cached(bytes(response.body), response.media_type, own))
    response.headers.update(headers)
    return response
