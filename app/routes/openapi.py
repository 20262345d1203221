"""What the API's responses look like, for the OpenAPI document: shape files in their media
types, JSON envelopes, and RFC 9457 problem documents for every error status it can answer."""

from __future__ import annotations

from typing import Any

from app.encoding import MESH_FORMATS, VOXEL_FORMATS

_PROBLEM = {
    "application/problem+json": {
        "schema": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object"}},
            },
        }
    }
}
_WHY = {
    400: "a bad latent, image or shape file",
    401: "the API key is missing or wrong (when GAN3D_API_KEY is set)",
    404: "this bundle lacks the network the endpoint needs",
    413: "the request body is over GAN3D_MAX_UPLOAD_BYTES",
    415: "an unsupported file type",
    422: "the request does not validate, or the shape is empty",
    503: "overloaded or not ready: retry after Retry-After",
    504: "the request outlived GAN3D_REQUEST_TIMEOUT_S",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": _WHY[s], "content": _PROBLEM} for s in statuses}


COMMON = (401, 413, 422, 503, 504)
SHAPE_FILES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "one shape as a file in the requested format (latent in X-Gan3d-Latent), "
        "or a JSON envelope of several shapes",
        "content": {
            **{media: {"schema": {"type": "string", "format": "binary"}}
               for media in {**MESH_FORMATS, **VOXEL_FORMATS}.values()
               if media != "application/json"},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}  # fmt: skip
