"""POST /v1/reconstruct (photo -> shape) and /v1/encode (your shape -> latent): multipart."""

from __future__ import annotations

import time
from pathlib import PurePath
from typing import Annotated, Literal

import numpy as np
from anyio import from_thread
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app import images, memory, voxelize
from app.bundle import ImageSpec
from app.deps import LoadedDep, SettingsDep
from app.errors import ApiError, validation_problem
from app.fitting import DEFAULT_FIT_STEPS, MAX_FIT_STEPS, Adam
from app.latents import LatentError
from app.overlap import iou
from app.prototypes import ANY
from app.results import shapes_response
from app.routes.openapi import COMMON, SHAPE_FILES, errors
from app.schemas import Output

# fixed-point refinement, for bundles without a generator_gradient graph
MAX_FIXED_POINT_STEPS = 8
DEFAULT_FIXED_POINT_STEPS = 3
FIXED_POINT_RATE = 0.5
router = APIRouter(prefix="/v1", tags=["upload"], responses=errors(400, 404, 415, *COMMON))
MESH_TYPES = ("glb", "obj", "off", "stl", "ply")
VOXEL_TYPES = ("npy", "binvox")


def _output(raw: str | None) -> Output:
    try:
        return Output.model_validate_json(raw) if raw else Output()
    except ValidationError as e:
        detail, listed = validation_problem(e.errors(), ("output",))
        raise ApiError(422, "Invalid request", detail, **listed) from None


def _framed(data: bytes, spec: ImageSpec, segment, *, max_pixels: int) -> tuple[np.ndarray, dict]:
    """Upload bytes -> (the encoder's input [3, S, S] float32, framing info); then the memory
    the photo took is given back (app/memory.py)."""
    try:
        return images.find_object(images.decode(data, max_pixels=max_pixels), spec, segment)
    finally:
        memory.trim()


@router.post(
    "/reconstruct",
    responses=SHAPE_FILES,
    summary="an object photo (PNG/JPEG/WebP) -> its 3D shape + latent",
)
async def reconstruct(
    request: Request,
    loaded: LoadedDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG or WebP; alpha is used as the mask")],
    output: Annotated[str | None, Form(description="JSON of the output options")] = None,
    category: Annotated[
        str | None,
        Form(
            min_length=1,
            max_length=100,
            description="what the photo shows, when you know it (e.g. table): the answer then "
            "blends only that category's prototype shapes; without it, only the shapes of the "
            "category the encoder sees (X-Gan3d-Category); 'any' blends every prototype "
            "(bundles whose GET /v1/model has image.prototypes)",
        ),
    ] = None,
) -> Response:
    m = loaded.manifest
    if not loaded.engine.has("image_encoder") or m.image is None:
        raise ApiError(404, "Not available", "this bundle has no image encoder")
    out = _output(output)
    protos = loaded.prototypes
    if category is not None and protos is None:
        raise ApiError(400, "No category hints", "this bundle's image encoder takes no category")
    if category is not None:
        try:
            protos.check(category)  # before the image is read and the model runs
        except LatentError as e:
            raise ApiError(400, "Bad category", str(e)) from None
    data = await image.read()
    # 1. decode, find the object and crop off the event loop (a busy photo: the segmenter
    # cuts the object out, when the bundle has one; its runs go through the engine's batcher
    # from the worker thread); 2. encoder -> latent; 3. generator -> shape
    segment = None
    if loaded.engine.has("segmenter"):

        def segment(x: np.ndarray) -> np.ndarray:
            prob = from_thread.run(loaded.engine.segment, x[None], settings.request_timeout_s)
            return prob[0]

    try:  # at most GAN3D_IMAGE_WORKERS photos decoded and framed at once; the rest wait
        async with request.app.state.image_slots:
            x, info = await run_in_threadpool(
                _framed, data, m.image, segment, max_pixels=settings.max_image_pixels
            )
    except images.ImageInputError as e:
        raise ApiError(415 if "format" in str(e) else 400, "Bad image", str(e)) from None
    outs = await loaded.engine.encode_image(x[None], settings.request_timeout_s)
    z, seen = outs[0], {"X-Gan3d-Mask": info["mask_source"]}  # then, with prototypes:
    if protos is not None and len(outs) > 2:
        # what the encoder takes the photo to show; the answer blends only that category's
        # prototype codes, or the named one's (app/prototypes.py says why and how much)
        guess, prob = protos.guess(outs[2][0])
        blended = category or guess
        z = outs[0] if blended == ANY else protos.blend(outs[2], blended)
        seen |= {
            "X-Gan3d-Category": guess,
            "X-Gan3d-Category-Probability": f"{prob:.3f}",
            "X-Gan3d-Blend": blended,
        }
    probs = await loaded.engine.generate(z, settings.request_timeout_s)
    return await shapes_response(
        probs,
        z,
        out,
        mesher=loaded.mesher,
        max_bytes=settings.max_response_bytes,
        threshold=out.threshold or m.image_threshold or m.threshold,
        name="reconstruction",
        headers=seen,
    )


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
            z = z + FIXED_POINT_RATE * (code - again)
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
