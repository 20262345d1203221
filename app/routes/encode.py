"""POST /v1/encode: your mesh or voxels (multipart) -> a latent fitted to them."""

from __future__ import annotations

import time
from pathlib import PurePath
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from app import voxelize
from app.deps import LoadedDep, SettingsDep
from app.errors import ApiError
from app.fitting import (
    DEFAULT_FIT_STEPS,
    DEFAULT_FIXED_POINT_STEPS,
    MAX_FIT_STEPS,
    MAX_FIXED_POINT_STEPS,
    Adam,
    fixed_point_step,
)
from app.openapi import COMMON, errors
from app.overlap import iou

router = APIRouter(prefix="/v1", tags=["upload"], responses=errors(400, 404, 415, *COMMON))
MESH_TYPES = ("glb", "obj", "off", "stl", "ply")
VOXEL_TYPES = ("npy", "binvox")


@router.post("/encode", summary="a mesh (GLB/OBJ/OFF/STL/PLY) or voxels (npy/binvox) -> latent")
async def encode(
    loaded: LoadedDep,
    settings: SettingsDep,
    shape: Annotated[UploadFile, File(description="file type from its name's suffix")],
    up: Annotated[Literal["y", "z"], Form(description="the file's up axis")] = "y",
    refine: Annotated[
        int | None,
        Form(
            ge=0,
            le=MAX_FIT_STEPS,
            description="steps that fit the latent to the upload, from the voxel encoder's "
            "code: gradient steps on the generator's reconstruction loss when the bundle has "
            f"a generator_gradient graph (default {DEFAULT_FIT_STEPS}, at most {MAX_FIT_STEPS}),"
            f" else fixed-point steps (default {DEFAULT_FIXED_POINT_STEPS}, at most "
            f"{MAX_FIXED_POINT_STEPS}); 0 = the encoder's code as it is",
        ),
    ] = None,
) -> dict:
    m, engine = loaded.manifest, loaded.engine
    if not engine.has("voxel_encoder"):
        raise ApiError(404, "Not available", "this bundle has no voxel encoder")
    gradient = engine.has("generator_gradient")
    steps, most = (
        (DEFAULT_FIT_STEPS, MAX_FIT_STEPS)
        if gradient
        else (DEFAULT_FIXED_POINT_STEPS, MAX_FIXED_POINT_STEPS)
    )
    if refine is not None and refine > most:
        raise ApiError(
            422,
            "Invalid request",
            f"refine: at most {most} steps with this bundle "
            f"({'gradient' if gradient else 'fixed-point'} fitting)",
        )
    steps = steps if refine is None else refine
    suffix = PurePath(shape.filename or "").suffix.lower().lstrip(".")
    if suffix not in MESH_TYPES + VOXEL_TYPES:
        raise ApiError(
            415,
            "Unsupported shape file",
            f"file type {suffix or '(none)'!r} is not accepted; name the file with one "
            f"of: {', '.join(MESH_TYPES + VOXEL_TYPES)}",
        )
    data = await shape.read()
    r = m.voxel_resolution

    def to_grid() -> np.ndarray:
        if suffix == "npy":
            return voxelize.read_npy(data, r)
        if suffix == "binvox":
            return voxelize.read_binvox(data, r)
        most = voxelize.MAX_UPLOAD_TRIANGLES
        mesh = voxelize.load_mesh(data, suffix, max_triangles=most)
        return voxelize.voxelize_mesh(mesh, r, up=up, max_triangles=most)

    try:
        grid = await run_in_threadpool(to_grid)
    except voxelize.ShapeFileError as e:
        raise ApiError(400, "Bad shape file", f"{shape.filename}: {e}") from None
    if not grid.any():
        raise ApiError(400, "Bad shape file", f"{shape.filename}: voxelises to an empty grid")
    # one deadline for the request's model calls, however many steps it asks for
    deadline = time.monotonic() + settings.request_timeout_s

    def left() -> float:
        return deadline - time.monotonic()

    code = await engine.encode_voxels(grid[None, None].astype(np.float32), left())
    z, target = code, grid[None].astype(np.float32)
    if gradient:  # Adam on the generator's reconstruction loss (app/fitting.py)
        adam = Adam()
        for _ in range(steps):
            grad, _loss = await engine.gradient(z, target, left())
            z = adam.step(z, grad)
    else:  # z <- z + rate * (V(upload) - V(G(z))): the decoded shape's code moves to the upload's
        for _ in range(steps):
            decoded = await engine.generate(z, left())  # [1, R, R, R] probabilities
            again = await engine.encode_voxels(decoded[:, None], left())
            z = fixed_point_step(z, code, again)
    fitted = (await engine.generate(z, left()))[0] > m.threshold
    return {
        "latent": [float(v) for v in z[0]],
        "resolution": r,
        "occupied_voxels": int(grid.sum()),
        "refine_steps": steps,
        "refine_method": "gradient" if gradient else "fixed-point",
        # how well the latent reproduces the upload: IoU of its decoded shape with the grid
        "fit_iou": round(float(iou(fitted[None], grid[None].astype(bool))[0]), 4),
    }
