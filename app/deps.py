"""Request dependencies: the loaded engine and concepts, handed to handlers (tests override).

Both are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool,
two thread hops per request for a dictionary lookup (measured with py-spy under wrk: a fifth of
the server's CPU per request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.bundle import Manifest
from app.directions import Directions
from app.engine import Engine
from app.errors import ApiError
from app.latents import LatentSpace
from app.meshpool import MeshPool
from app.prototypes import Prototypes
from app.recognition import Recognition
from app.settings import Settings


@dataclass
class Loaded:
    """What the lifespan loaded for serving."""

    manifest: Manifest
    engine: Engine
    space: LatentSpace
    mesher: MeshPool  # meshing + file encoding, in worker processes or threads
    directions: Directions | None = None  # None: the bundle has no "directions" file
    prototypes: Prototypes | None = None  # None: no category hints (no "prototypes" file)
    recognition: Recognition | None = None  # None: every photo is taken for an object it knows


async def get_loaded(request: Request) -> Loaded:
    state = request.app.state.gan3d
    if state.loaded is None:
        raise ApiError(503, "Not ready", state.not_ready_reason or "starting")
    return state.loaded


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


LoadedDep = Annotated[Loaded, Depends(get_loaded)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
