"""Probability grids + latents -> an HTTP response (one file, or a JSON envelope of several).

One shape in a binary format: the file itself with its media type, the latent in the header
``X-Gan3d-Latent`` (base64 of little-endian float32) and the seed, if any, in ``X-Gan3d-Seed``.
Several shapes, or ``envelope: true``: JSON {"shapes": [{"latent", "seed", "format",
"media_type", "empty", "data" (base64, null when empty)}], "threshold", "resolution"}.
An empty shape (nothing above the threshold) is ``"empty": true`` in an envelope; as a single
mesh file it is a 422 problem naming the threshold and carrying the latent.
"""

from __future__ import annotations

import base64

import numpy as np
from fastapi.responses import JSONResponse, Response

from app.encoding import MESH_FORMATS, VOXEL_FORMATS
from app.errors import ApiError
from app.meshpool import MeshPool
from app.schemas import Output


def latent_b64(z: np.ndarray) -> str:
    return base64.b64encode(np.asarray(z, dtype="<f4").tobytes()).decode("ascii")


def media_type(fmt: str) -> str:
    return {**MESH_FORMATS, **VOXEL_FORMATS}[fmt]


async def shapes_response(
    probs: np.ndarray,
    latents: np.ndarray,
    out: Output,
    *,
    mesher: MeshPool,
    threshold: float,
    seeds: list[int | None] | None = None,
    name: str = "shape",
    headers: dict[str, str] | None = None,
) -> Response:
    """probs [N, R, R, R], latents [N, Z]; ``headers`` go on the response either way."""
    seeds = seeds or [None] * len(probs)
    files = await mesher.encode(probs, out, threshold)
    envelope = out.envelope if out.envelope is not None else len(probs) > 1
    if not envelope:
        data, z, seed = files[0], latents[0], seeds[0]
        if data is None:
            raise ApiError(
                422,
                "Empty shape",
                f"no voxel reaches the threshold {threshold}; lower output.threshold or "
                "use another latent",
                latent=[float(v) for v in z],
                seed=seed,
            )
        headers = {
            **(headers or {}),
            "X-Gan3d-Latent": latent_b64(z),
            "Content-Disposition": f'inline; filename="{name}.{out.format}"',
        }
        if seed is not None:
            headers["X-Gan3d-Seed"] = str(seed)
        return Response(data, media_type=media_type(out.format), headers=headers)
    shapes = [
        {
            "latent": [float(v) for v in z],
            "seed": seed,
            "format": out.format,
            "media_type": media_type(out.format),
            "empty": data is None,
            "data": None if data is None else base64.b64encode(data).decode("ascii"),
        }
        for data, z, seed in zip(files, latents, seeds, strict=True)
    ]
    return JSONResponse(
        {"shapes": shapes, "threshold": threshold, "resolution": int(probs.shape[1])},
        headers=headers,
    )
