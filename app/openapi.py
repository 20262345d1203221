"""What the API's responses look like, for the OpenAPI document: shape files in their media
types, JSON envelopes, and RFC 9457 problem documents for every error status it can answer."""

from __future__ import annotations

from typing import Any

from app.encoding import MESH_FORMATS, VOXEL_FORMATS

FLOAT32_MAX = 3.4028234663852886e38
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
                "error_count": {"type": "integer"},
            },
        }
    }
}
_WHY = {
    400: "a bad latent, image or shape file",
    401: "the API key is missing or wrong (when GAN3D_API_KEY is set)",
    404: "this bundle lacks the network the endpoint needs",
    408: "the request body did not arrive within GAN3D_BODY_TIMEOUT_S",
    413: "the request body is over GAN3D_MAX_UPLOAD_BYTES (JSON: GAN3D_MAX_JSON_BYTES)",
    415: "an unsupported file type",
    422: "the request does not validate, the shape is empty, or the answer would be over "
    "GAN3D_MAX_RESPONSE_BYTES",
    503: "overloaded or not ready: retry after Retry-After",
    504: "the request outlived GAN3D_REQUEST_TIMEOUT_S",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"description": _WHY[s], "content": _PROBLEM} for s in statuses}


COMMON = (401, 408, 413, 422, 503, 504)
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


def with_bundle_facts(
    doc: dict[str, Any], names: list[str], z_size: int, directions: list[str] | None = None
) -> dict[str, Any]:
    """What the served bundle fixes, in the document: every string schema of a property or
    query parameter named ``concept`` gets the enum ``names`` (the bundle's concepts), every
    ``direction`` the enum ``directions`` (its edit directions), every
    ``latent`` array exactly ``z_size`` float32 items: what clients and fuzzers may send."""

    def typed(schema: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        return [s for s in [schema, *schema.get("anyOf", [])] if s.get("type") == kind]

    def strings(schema: dict[str, Any]) -> list[dict[str, Any]]:
        return typed(schema, "string")

    for schema in doc.get("components", {}).get("schemas", {}).values():
        for s in strings(schema.get("properties", {}).get("concept", {})):
            s["enum"] = names
        for s in strings(schema.get("properties", {}).get("direction", {})):
            if directions:
                s["enum"] = directions
        for s in typed(schema.get("properties", {}).get("latent", {}), "array"):
            s["minItems"] = s["maxItems"] = z_size
            s["items"] = {**s.get("items", {}), "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
    for path in doc.get("paths", {}).values():
        for op in path.values():
            for param in op.get("parameters", []):
                if param.get("name") == "concept":
                    for s in strings(param.get("schema", {})):
                        s["enum"] = names
    return doc
