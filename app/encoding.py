"""Meshes and probability grids -> bytes + media type. Same input, same bytes.

Formats: glb, obj, ply, stl (meshes); npy (float32 probabilities or uint8 occupancy), binvox,
and packed JSON (occupancy bits, documented in :func:`packed_json`).
"""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
import trimesh

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


# bytes per triangle of each mesh format, an upper estimate for the shapes meshes are made of
# (two triangles per vertex; measured: glb 24.0, ply 25.0, stl 50.0, obj 71-81 as indices grow)
MESH_BYTES_PER_TRIANGLE = {"glb": 24, "ply": 25, "stl": 50, "obj": 90}
MESH_FILE_OVERHEAD = 2048  # headers, the glTF JSON chunk


def estimate_file_bytes(fmt: str, *, triangles: int, resolution: int) -> int:
    """An upper estimate of one file's size: a mesh of ``triangles`` in ``fmt``, or the voxel
    formats' size for a grid of side ``resolution`` (npy float32; binvox's run lengths at their
    worst; json packed bits in base64)."""
    if fmt in MESH_FORMATS:
        return MESH_FILE_OVERHEAD + MESH_BYTES_PER_TRIANGLE[fmt] * triangles
    cells = resolution**3
    return 256 + {"npy": 4 * cells, "binvox": 2 * cells, "json": cells // 6 + 4}[fmt]


def encode_glb(mesh: trimesh.Trimesh, *, colour=DEFAULT_COLOUR) -> bytes:
    """One mesh -> GLB: positions, unit normals, uint32 indices and a PBR material.

    Written here rather than with trimesh's exporter, which took ~30 ms for a 38k-face shape
    (more than the whole meshing budget); this layout is checked with the Khronos validator in
    the tests."""
    pos = np.ascontiguousarray(mesh.vertices, dtype="<f4")
    nrm = np.asarray(mesh.vertex_normals, dtype=np.float64)
    nrm = (nrm / np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)).astype("<f4")
    idx = np.ascontiguousarray(mesh.faces, dtype="<u4")
    blobs = [pos.tobytes(), nrm.tobytes(), idx.tobytes()]  # each a multiple of 4 bytes
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    views = [
        {"buffer": 0, "byteOffset": int(offsets[i]), "byteLength": len(b), "target": t}
        for i, (b, t) in enumerate(zip(blobs, (34962, 34962, 34963), strict=True))
    ]
    doc = {
        "asset": {"version": "2.0", "generator": "gan3d"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": {"POSITION": 0, "NORMAL": 1},
                        "indices": 2,
                        "material": 0,
                        "mode": 4,
                    }
                ]
            }
        ],
        "materials": [
            {
                "name": "gan3d",
                "pbrMetallicRoughness": {
                    "baseColorFactor": [c / 255 for c in colour],
                    "metallicFactor": 0.0,
                    "roughnessFactor": 0.75,
                },
            }
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": len(pos),
                "type": "VEC3",
                "min": pos.min(axis=0).tolist(),
                "max": pos.max(axis=0).tolist(),
            },
            {"bufferView": 1, "componentType": 5126, "count": len(nrm), "type": "VEC3"},
            {"bufferView": 2, "componentType": 5125, "count": int(idx.size), "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": int(offsets[-1])}],
    }
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    binary = b"".join(blobs)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", 0x46546C67, 2, total),
            struct.pack("<II", len(js), 0x4E4F534A),
            js,
            struct.pack("<II", len(binary), 0x004E4942),
            binary,
        ]
    )


def encode_mesh(mesh: trimesh.Trimesh, fmt: str, *, colour=DEFAULT_COLOUR) -> bytes:
    """A mesh in world coordinates -> file bytes (glb carries normals and a PBR material)."""
    if fmt == "glb":
        return encode_glb(mesh, colour=colour)
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
