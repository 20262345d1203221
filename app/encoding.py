"""Meshes and probability grids -> bytes + media type. Same input, same bytes.

Formats: glb, obj, ply, stl (meshes); npy (float32 probabilities or uint8 occupancy), binvox,
and packed JSON (occupancy bits, documented in :func:`packed_json`).
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import trimesh
from trimesh.visual.material import PBRMaterial

MESH_FORMATS = {
    "glb": "model/gltf-binary",
    "obj": "model/obj",
    "ply": "application/ply",
    "stl": "model/stl",
}
VOXEL_FORMATS = {
    "npy": "application/x-npy",
    "binvox": "application/x-binvox",
    "json": "application/json",
}
DEFAULT_COLOUR = (156, 170, 199, 255)  # a light steel blue, visible on white and dark pages


def encode_mesh(mesh: trimesh.Trimesh, fmt: str, *, colour=DEFAULT_COLOUR) -> bytes:
    """A mesh in world coordinates -> file bytes (glb carries normals and a PBR material)."""
    if fmt == "glb":
        mesh = mesh.copy()
        mesh.visual = trimesh.visual.TextureVisuals(
            material=PBRMaterial(
                name="gan3d", baseColorFactor=colour, metallicFactor=0.0, roughnessFactor=0.75
            )
        )
        return trimesh.exchange.gltf.export_glb(mesh, include_normals=True)
    if fmt == "obj":
        return trimesh.exchange.obj.export_obj(
            mesh, include_normals=True, include_texture=False
        ).encode()
    if fmt == "ply":
        return trimesh.exchange.ply.export_ply(mesh, encoding="binary")
    if fmt == "stl":
        return trimesh.exchange.stl.export_stl(mesh)
    raise ValueError(f"unknown mesh format {fmt!r}; use one of {sorted(MESH_FORMATS)}")


def packed_json(occupancy: np.ndarray) -> dict:
    """Occupancy [R, R, R] bool -> {"shape", "axis_order", "packing", "data"}: the grid
    flattened in C order over axes (x, y, z) (y up, +z front), packed 8 voxels a byte with the
    first voxel in the most significant bit (numpy.packbits), then base64."""
    bits = np.packbits(occupancy.astype(bool).reshape(-1))
    return {
        "shape": list(occupancy.shape),
        "axis_order": "xyz",
        "packing": "packbits-msb-first-c-order-base64",
        "data": base64.b64encode(bits.tobytes()).decode("ascii"),
    }


def unpack_json(doc: dict) -> np.ndarray:
    """Inverse of :func:`packed_json` (for clients and tests)."""
    shape = tuple(doc["shape"])
    bits = np.frombuffer(base64.b64decode(doc["data"]), dtype=np.uint8)
    return np.unpackbits(bits)[: int(np.prod(shape))].reshape(shape).astype(bool)


def encode_voxels(
    prob: np.ndarray, fmt: str, *, threshold: float, occupancy: bool = False
) -> bytes:
    """prob [R, R, R] float in [0, 1] -> bytes. npy: float32 probabilities, or uint8 {0, 1}
    when ``occupancy``; binvox and json are always occupancy at ``threshold``."""
    occ = prob >= threshold
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, occ.astype(np.uint8) if occupancy else prob.astype(np.float32))
        return buf.getvalue()
    if fmt == "binvox":
        grid = trimesh.voxel.VoxelGrid(occ)
        return trimesh.exchange.binvox.export_binvox(grid)
    if fmt == "json":
        return json.dumps(packed_json(occ), separators=(",", ":")).encode()
    raise ValueError(f"unknown voxel format {fmt!r}; use one of {sorted(VOXEL_FORMATS)}")
