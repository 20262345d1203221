"""Probability grids + latents -> an HTTP response (one file, or a JSON envelope of several).

One shape in a binary format: the file itself with its media type, the latent in the header
``X-Gan3d-Latent`` (base64 of little-endian float32) and the seed, if any, in ``X-Gan3d-Seed``.
Several shapes, or ``envelope: true``: JSON {"shapes": [{"latent", "seed", "format",
"media_type", "empty", "data" (base64, null when empty)}], "threshold", "resolution"}.
An empty shape (nothing above the threshold) is ``"empty": true`` in an envelope; as a single
mesh file it is a 422 problem naming the threshold and carrying the latent.

An answer is bounded (``max_bytes``, GAN3D_MAX_RESPONSE_BYTES): its size is estimated from the
shapes' surfaces before anything is meshed, and a request over the bound is a 422 that says what
to lower; the encoded files are checked again. Envelopes are assembled as bytes off the event
loop (a 255 MB JSON answer once stalled it for 2.5 s).
"""

from __future__ import annotations

import base64
import json

import numpy as np
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.encoding import MESH_FORMATS, VOXEL_FORMATS, estimate_file_bytes
from app.errors import ApiError
from app.meshing import estimate_triangles
from app.meshpool import MeshPool, mesh_options
from app.schemas import Output, check_mesh_work

ENVELOPE_SHAPE_OVERHEAD = 200  # an envelope entry's keys, seed, format and media type
LATENT_NUMBER_BYTES = 26  # one latent number in JSON, at most ("-1.2345678901234567e-05,")


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
    max_bytes: int,
    name: str = "shape",
    headers: dict[str, str] | None = None,
) -> Response:
    """probs [N, R, R, R], latents [N, Z]; ``headers`` go on the response either way; the
    answer is at most ``max_bytes`` (else 422, before meshing when the estimate says so)."""
    seeds = seeds or [None] * len(probs)
    try:  # the body was checked for 32^3 grids; the bundle's own may be finer
        check_mesh_work(len(probs), out, int(probs.shape[1]))
    except ValueError as e:
        raise ApiError(422, "Invalid request", str(e)) from None
    envelope = out.envelope if out.envelope is not None else len(probs) > 1
    estimate = await run_in_threadpool(
        answer_bytes, probs, out, threshold, envelope=envelope, latent_size=latents.shape[1]
    )
    if estimate > max_bytes:
        raise _too_large(estimate, max_bytes, len(probs), out)
    files = await mesher.encode(probs, out, threshold)
    actual = sum(len(f or b"") for f in files) * (4 / 3 if envelope else 1)
    if actual > max_bytes:  # the estimate is an upper one; this guards the rare miss
        raise _too_large(int(actual), max_bytes, len(probs), out)
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
    body = await run_in_threadpool(
        envelope_bytes, files, latents, seeds, out.format, threshold, int(probs.shape[1])
    )
    return Response(body, media_type="application/json", headers=headers)


def answer_bytes(
    probs: np.ndarray, out: Output, threshold: float, *, envelope: bool, latent_size: int
) -> int:
    """An upper estimate of the answer's size in bytes for probs [N, R, R, R], before any
    meshing: each shape's triangles from its surface (app/meshing.py), times the format's bytes
    per triangle; base64 and the latents on top for an envelope."""
    r = int(probs.shape[1])
    if out.format in MESH_FORMATS:
        options = mesh_options(out, threshold)
        sizes = [
            estimate_file_bytes(out.format, triangles=estimate_triangles(p, options), resolution=r)
            for p in probs
        ]
    else:
        sizes = [estimate_file_bytes(out.format, triangles=0, resolution=r)] * len(probs)
    if not envelope:
        return sum(sizes)
    per_shape = ENVELOPE_SHAPE_OVERHEAD + LATENT_NUMBER_BYTES * latent_size
    return sum(4 * (n + 2) // 3 + per_shape for n in sizes)


def _too_large(size: int, most: int, shapes: int, out: Output) -> ApiError:
    lower = ["ask for fewer shapes"] if shapes > 1 else []
    if out.format in MESH_FORMATS:
        if out.upsample > 1:
            lower.append("lower output.upsample")
        lower += ["raise output.threshold", "set output.target_faces"]
        if out.format != "glb":
            lower.append("use glb (the most compact mesh format)")
    else:
        lower.append("use npy with output.occupancy (1 byte a voxel) or json (1 bit)")
    return ApiError(
        422,
        "Answer too large",
        f"the answer would be about {size / 2**20:.1f} MiB ({shapes} shape"
        f"{'s' if shapes > 1 else ''} as {out.format}); at most {most / 2**20:.1f} MiB "
        f"(GAN3D_MAX_RESPONSE_BYTES): {', '.join(lower)}",
        estimated_bytes=size,
        max_bytes=most,
    )


def envelope_bytes(
    files: list[bytes | None],
    latents: np.ndarray,
    seeds: list[int | None],
    fmt: str,
    threshold: float,
    resolution: int,
) -> bytes:
    """The JSON envelope, byte for byte what json.dumps of {"shapes": [...], "threshold",
    "resolution"} gives with Starlette's JSONResponse options, but assembled from parts: each
    shape's payload is base64 spliced in as bytes, never escaped or copied by the JSON encoder."""

    def dumps(value: object) -> bytes:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")

    shapes = []
    for data, z, seed in zip(files, latents, seeds, strict=True):
        head = {
            "latent": [float(v) for v in z],
            "seed": seed,
            "format": fmt,
            "media_type": media_type(fmt),
            "empty": data is None,
        }
        payload = b"null" if data is None else b'"' + base64.b64encode(data) + b'"'
        shapes.append(dumps(head)[:-1] + b',"data":' + payload + b"}")
    tail = {"threshold": threshold, "resolution": resolution}
    return b'{"shapes":[' + b",".join(shapes) + b"]," + dumps(tail)[1:]
