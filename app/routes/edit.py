"""GET /v1/directions and POST /v1/edit: a start shape moved along named latent directions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app import latents
from app.deps import LoadedDep, SettingsDep
from app.errors import ApiError
from app.openapi import COMMON, SHAPE_FILES, errors
from app.results import shapes_response
from app.schemas import EditRequest

router = APIRouter(prefix="/v1", tags=["edit"], responses=errors(*COMMON))


@router.get("/directions", summary="the bundle's edit directions (sliders)")
async def directions(
    loaded: LoadedDep,
    category: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> dict:
    """Each direction's name, category, kind (binary, continuous, discrete, discovered), the
    range of amounts it accepts and what +1 does; ``category`` keeps that category's and those
    for every category (category "any")."""
    found = loaded.directions.by_name.values() if loaded.directions else []
    keep = None if category is None else {category, "any"}
    return {"directions": [d.describe() for d in found if keep is None or d.category in keep]}


@router.post(
    "/edit",
    responses={**SHAPE_FILES, **errors(400, 404, *COMMON)},
    summary="a start shape moved along named directions (optionally the path as frames)",
)
async def edit(body: EditRequest, loaded: LoadedDep, settings: SettingsDep) -> Response:
    if loaded.directions is None:
        raise ApiError(404, "No directions", "this bundle has no edit directions")
    # 1. the start latent, then the sum of amount x direction
    start = loaded.space.resolve(body.start)
    try:
        end = loaded.directions.apply(start, [(e.direction, e.amount) for e in body.edits])
    except latents.LatentError as e:
        raise ApiError(400, "Bad edit", str(e)) from None
    # 2. the edited shape, or the straight path to it from the start (the slider's frames)
    z = end[None] if body.steps is None else latents.path([start, end], body.steps, method="lerp")
    probs = await loaded.engine.generate(z, settings.request_timeout_s)
    threshold = body.output.threshold or loaded.manifest.threshold
    out = body.output
    if body.steps is not None:
        out = out.model_copy(update={"envelope": True})  # frames always come as a list
    return await shapes_response(
        probs,
        z,
        out,
        mesher=loaded.mesher,
        max_bytes=settings.max_response_bytes,
        threshold=threshold,
        name="edit",
    )
