"""POST /v1/reconstruct: a photo (multipart) -> its shape and latent."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from anyio import from_thread
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app import images, memory
from app.bundle import ImageSpec
from app.deps import LoadedDep, SettingsDep
from app.errors import ApiError, validation_problem
from app.latents import LatentError
from app.openapi import COMMON, SHAPE_FILES, errors
from app.prototypes import ANY
from app.results import shapes_response
from app.schemas import Output

router = APIRouter(prefix="/v1", tags=["upload"], responses=errors(400, 404, 415, *COMMON))
MAX_VIEWS = 8  # photos of one object in one request


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


CLOSEST = 3  # categories a "Not recognised" answer names


async def _check_recognised(loaded, batch: np.ndarray, outs: list, timeout: float) -> None:
    """422 "Not recognised" when the photos show none of the bundle's categories
    (app/recognition.py), naming the closest ones the encoder sees and how to force an answer."""
    features = await loaded.engine.recognize(batch, timeout)
    score = loaded.recognition.score(features)
    if loaded.recognition.recognised(score):
        return
    protos, closest = loaded.prototypes, []
    if protos is not None and len(outs) > 2:
        mass = protos.mass(_pooled(outs[2]))[0]
        order = np.argsort(-mass)[:CLOSEST]
        closest = [{"category": protos.names[i], "probability": round(float(mass[i]), 3)}
                   for i in order]  # fmt: skip
    named = ", ".join(f"{c['category']} ({c['probability']:.0%})" for c in closest)
    known = ", ".join(loaded.manifest.categories or (protos.names if protos else []))
    raise ApiError(
        422,
        "Not recognised",
        f"the photo does not look like any of the things this model knows ({known})"
        + (f"; the closest are {named}" if named else "")
        + ". To get a shape anyway, name what it shows with category=<one of them>, or send "
        "category=any for a blend of every kind",
        closest=closest,
        recognition_score=round(score, 4),
        threshold=loaded.recognition.threshold,
    )


def _pooled(rows: np.ndarray) -> np.ndarray:
    """[V, D] per-view outputs -> [1, D]: their mean (one view: unchanged)."""
    return rows if len(rows) == 1 else rows.mean(0, keepdims=True).astype(np.float32)


async def _frame_views(
    request: Request, loaded, settings, uploads: list[UploadFile]
) -> tuple[list[np.ndarray], list[str]]:
    """Each upload -> (the encoder's input [3, S, S] float32, how its object was found), in
    the server's threads, at most GAN3D_IMAGE_WORKERS at once. A busy photo: the segmenter
    cuts the object out, when the bundle has one; its runs go through the engine's batcher
    from the worker thread. A bad upload is a 400 (415: not an image format) naming it."""
    segment = None
    if loaded.engine.has("segmenter"):

        def segment(x: np.ndarray) -> np.ndarray:
            prob = from_thread.run(loaded.engine.segment, x[None], settings.request_timeout_s)
            return prob[0]

    xs, masks = [], []
    for i, upload in enumerate(uploads):
        data = await upload.read()
        try:
            async with request.app.state.image_slots:
                x, info = await run_in_threadpool(
                    _framed, data, loaded.manifest.image, segment,
                    max_pixels=settings.max_image_pixels,
                )  # fmt: skip
        except images.ImageInputError as e:
            status = 415 if "format" in str(e) else 400
            if len(uploads) == 1:
                raise ApiError(status, "Bad image", str(e)) from None
            which = f"image {i + 1} of {len(uploads)}" + (
                f" ({upload.filename})" if upload.filename else ""
            )
            raise ApiError(status, "Bad image", f"{which}: {e}", image_index=i) from None
        xs.append(x)
        masks.append(info["mask_source"])
    return xs, masks


@router.post(
    "/reconstruct",
    responses=SHAPE_FILES,
    summary="1-8 photos of one object (PNG/JPEG/WebP) -> its 3D shape + latent",
)
async def reconstruct(
    request: Request,
    loaded: LoadedDep,
    settings: SettingsDep,
    image: Annotated[
        list[UploadFile],
        File(
            description=f"PNG, JPEG or WebP; alpha is used as the mask. Repeat the field for up "
            f"to {MAX_VIEWS} photos of the same object: the answer pools what the encoder sees "
            "in all of them (the mean of its logits over the prototype codes)"
        ),
    ],
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
    if not 1 <= len(image) <= MAX_VIEWS:
        raise ApiError(
            422,
            "Invalid request",
            f"{len(image)} images; send 1 to {MAX_VIEWS} photos of one object",
        )
    # 1. decode, find the object and crop each photo off the event loop; 2. encoder ->
    # latent, pooled over the views; 3. generator -> shape
    xs, masks = await _frame_views(request, loaded, settings, image)
    batch = np.stack(xs)
    outs = await loaded.engine.encode_image(batch, settings.request_timeout_s)
    z, seen = _pooled(outs[0]), {"X-Gan3d-Mask": ",".join(masks)}  # then, with prototypes:
    if protos is not None and len(outs) > 2:
        # what the encoder takes the photos to show (its logits, averaged over the views); the
        # answer blends only that category's prototype codes, or the named one's
        # (app/prototypes.py says why and how much)
        logits = _pooled(outs[2])
        guess, prob = protos.guess(logits[0])
        blended = category or guess
        if blended != ANY:
            z = protos.blend(logits, blended)
        elif len(xs) > 1:  # every code, by the pooled logits
            z = protos.blend_every(logits)
        seen |= {
            "X-Gan3d-Category": guess,
            "X-Gan3d-Category-Probability": f"{prob:.3f}",
            "X-Gan3d-Blend": blended,
        }
    if category is None and loaded.recognition is not None:  # a hint skips the check
        await _check_recognised(loaded, batch, outs, settings.request_timeout_s)
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
