"""Shapes from files -> occupancy grids in the model's canonical frame (numpy + trimesh).

Canonical frame: y up (``up="z"`` rotates z-up files), bounding box centred, largest extent
scaled to 2 * (1 - MARGIN) inside [-1, 1]^3, solid (interiors filled), axes (x, y, z).
Shared by the service (/v1/encode) and training (real-data loaders).
"""

from __future__ import annotations

import io
import json
import struct
from typing import Literal

import numpy as np
import trimesh
from scipy import ndimage

MARGIN = 0.08  # fraction of the half-extent left empty at each side of the grid


class ShapeFileError(ValueError):
    """A file that cannot become a voxel grid; the message says why."""


# glTF accessor element sizes: components per type, bytes per component type
_GLTF_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_GLTF_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}


def _check_glb(data: bytes) -> None:
    """A GLB's accessors (its arrays) may hold no data in the file, as zero-filled placeholders
    or sparse ones, and still declare any count, which trimesh allocates and processes: a
    432-byte file declaring 20 M vertices took 12 s and 4.7 GB before it was refused. Arrays
    that live in the file are at most its size, so a file whose accessors declare more than
    four times its size (plus 1 MB) is refused before trimesh reads it (counts are taken by
    size: a negative one must not offset a huge one)."""
    try:
        length, kind = struct.unpack_from("<II", data, 12)
        accessors = (
            json.loads(data[20 : 20 + length]).get("accessors", []) if kind == 0x4E4F534A else []
        )
        declared = sum(
            abs(int(a["count"])) * _GLTF_COMPONENTS[a["type"]] * _GLTF_BYTES[a["componentType"]]
            for a in accessors
        )
    except Exception:  # not a well-formed GLB: trimesh says what is wrong with it
        return
    if declared > 4 * len(data) + 2**20:
        raise ShapeFileError(
            f"its accessors declare {declared:,} bytes of arrays in a {len(data):,}-byte file "
            "(arrays the file does not hold, e.g. zero-filled placeholders, are not accepted)"
        )


def load_mesh(data: bytes, file_type: str, *, max_triangles: int | None = None) -> trimesh.Trimesh:
    """File bytes -> one mesh (a scene's instances placed and joined). ``max_triangles``: refuse
    files with more triangles than that, each instance counted, before they are joined (a 55 KB
    GLB placing one 1,280-triangle mesh at 2,000 nodes joined to 2.6 M triangles, and its
    voxelisation ran for minutes)."""
    if file_type == "glb":
        _check_glb(data)
    try:
        # materials skipped: only the geometry is voxelised, and a texture is an image that
        # trimesh decodes (two 8000 x 8000 textures in a 0.2 MB GLB took 3.4 s and 730 MB)
        scene = trimesh.load_scene(io.BytesIO(data), file_type=file_type, skip_materials=True)
        triangles = sum(
            len(getattr(scene.geometry[name], "faces", ())) * len(nodes)
            for name, nodes in scene.graph.geometry_nodes.items()
        )
        if max_triangles is not None and triangles > max_triangles:
            raise ShapeFileError(
                f"has {triangles:,} triangles (instances counted), more than the "
                f"{max_triangles:,} taken: simplify it, or upload voxels (npy or binvox)"
            )
        loaded = scene.to_mesh()
    except ShapeFileError:
        raise
    except Exception as e:  # trimesh raises many types for bad files
        raise ShapeFileError(f"cannot be read as {file_type} ({e})") from e
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ShapeFileError("contains no triangles")
    return loaded


def voxelize_mesh(
    mesh: trimesh.Trimesh,
    resolution: int,
    *,
    up: Literal["y", "z"] = "y",
    max_triangles: int | None = None,
) -> np.ndarray:
    """Mesh -> solid occupancy [R, R, R] bool in the canonical frame. The one voxeliser of the
    project: /v1/encode uploads and the real training data both come through here.
    ``max_triangles``: refuse meshes that trimesh's voxeliser would split into more triangles
    than that (it halves every edge longer than a voxel until none is: 4,000 random triangles
    across a 195 KB STL became ~20 M, 36 s and 5.5 GB)."""
    mesh = mesh.copy()
    if up == "z":
        mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    lo, hi = mesh.bounds
    extent = float(np.max(hi - lo))
    if not np.isfinite(extent) or extent <= 0:
        raise ShapeFileError("the mesh has an empty or non-finite bounding box")
    mesh.apply_translation(-(lo + hi) / 2)
    mesh.apply_scale(2.0 * (1.0 - MARGIN) / extent)
    pitch = 2.0 / resolution
    # trimesh centres its voxels on integer multiples of the pitch; cell k of our grid spans
    # [-1 + k * pitch, -1 + (k + 1) * pitch], so shift the mesh to put that cell's centre on
    # k * pitch (without it every shape lands half a voxel off, on each axis)
    mesh.apply_translation(np.full(3, 1.0 - pitch / 2))
    if max_triangles is not None:
        split = _split_triangles(mesh.triangles, pitch)
        if split > max_triangles:
            raise ShapeFileError(
                f"its triangles would be split into about {split:,} to voxelise it (one per "
                f"voxel they span), more than the {max_triangles:,} taken: simplify the mesh or "
                "split its long triangles, or upload voxels (npy or binvox)"
            )
    try:
        surface = mesh.voxelized(pitch=pitch)
    except Exception as e:  # degenerate geometry surfaces as several exception types
        raise ShapeFileError(f"cannot be voxelised ({e})") from e
    idx = np.round(surface.points / pitch).astype(int)
    idx = idx[np.all((idx >= 0) & (idx < resolution), axis=1)]
    shell = np.zeros((resolution,) * 3, dtype=bool)
    shell[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return fill_solid(shell)


def _split_triangles(triangles: np.ndarray, pitch: float) -> int:
    """How many triangles trimesh's subdivision makes of these [N, 3, 3] (each split in four
    until its longest edge is at most ``pitch``): an upper bound of what voxelising costs."""
    longest = np.linalg.norm(triangles[:, [1, 2, 0]] - triangles, axis=2).max(axis=1)
    halvings = np.ceil(np.log2(np.maximum(longest / pitch, 1.0)))
    return int(np.sum(4.0**halvings))


def fill_solid(shell: np.ndarray) -> np.ndarray:
    """Surface voxels [R, R, R] bool -> solid: enclosed space filled, and space enclosed once
    gaps of up to two voxels are closed (real meshes are rarely watertight: a car's windows, a
    sofa's open underside), while every surface voxel, so every thin part, is kept."""
    pad = np.pad(shell, 2)
    closed = ndimage.binary_dilation(pad, iterations=1)
    closed = ndimage.binary_erosion(ndimage.binary_fill_holes(closed), iterations=1)
    solid = ndimage.binary_fill_holes(pad) | closed | pad
    return solid[2:-2, 2:-2, 2:-2]


def resample(vox: np.ndarray, resolution: int) -> np.ndarray:
    """Any-pool down (integer factor) or nearest-neighbour otherwise. -> [R, R, R] bool."""
    n = vox.shape[0]
    if n == resolution:
        return vox.astype(bool)
    if n > resolution and n % resolution == 0:
        f = n // resolution
        return vox.reshape(resolution, f, resolution, f, resolution, f).any(axis=(1, 3, 5))
    i = np.minimum((np.arange(resolution) + 0.5) * n / resolution, n - 1).astype(int)
    return vox[np.ix_(i, i, i)].astype(bool)


MAX_GRID_SIDE = 1024  # larger uploads are refused before any work
# mesh uploads: triangles after instancing, and after the voxeliser's splitting (load_mesh,
# voxelize_mesh); measured, 1,000 long triangles (1.28 M split, by the estimate) took 9 s and
# 1.5 GB, while a 10 MB upload of ordinary geometry (< ~400 k triangles, most smaller than a
# voxel) stays well below
MAX_UPLOAD_TRIANGLES = 1_000_000
# binvox is run-length encoded: an 8 MB file (within the upload limit) can declare 1024^3
# voxels, which decoded to 1.2 GB and took 3.4 s per request in the upload threads. Its header
# is read first, and grids above 256^3 (ShapeNet's binvox files are 128^3) are refused: a full
# 256^3 grid took 0.05 s and 16 MB, as bounded as an .npy grid, which the byte limit bounds
MAX_BINVOX_SIDE = 256


def _check_cubic(shape: tuple[int, ...], what: str, most: int = MAX_GRID_SIDE) -> None:
    if len(shape) != 3 or len(set(shape)) != 1:
        raise ShapeFileError(f"{what} must be a cubic 3D grid, got shape {list(shape)}")
    if not 1 <= shape[0] <= most:
        raise ShapeFileError(f"{what} must have a side of 1 to {most} voxels, got {shape[0]}")


def read_binvox(data: bytes, resolution: int) -> np.ndarray:
    """binvox bytes (ShapeNet's voxel format, y up) -> [R, R, R] bool, axes (x, y, z)."""
    binvox = trimesh.exchange.binvox
    try:
        parsed = binvox.parse_binvox(io.BytesIO(data), writeable=True)  # header; not decoded
    except Exception as e:
        raise ShapeFileError(f"not a readable binvox file ({e})") from e
    _check_cubic(tuple(int(n) for n in parsed.shape), "a binvox grid", MAX_BINVOX_SIDE)
    rle, voxels = parsed.rle_data, int(np.prod(parsed.shape))
    if len(rle) % 2 or int(rle[1::2].sum(dtype=np.int64)) != voxels:
        raise ShapeFileError(
            f"not a readable binvox file (its run-length data does not fill the {voxels:,} "
            "voxels its header declares)"
        )
    try:
        grid = binvox.voxel_from_binvox(
            rle, parsed.shape, parsed.translate, parsed.scale, axis_order="xzy"
        )
        vox = np.asarray(grid.matrix, dtype=bool)
    except Exception as e:
        raise ShapeFileError(f"not a readable binvox file ({e})") from e
    return resample(vox, resolution)


def read_npy(data: bytes, resolution: int) -> np.ndarray:
    """A .npy cubic grid (bool, or numbers where >= 0.5 is occupied) -> [R, R, R] bool."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as e:
        raise ShapeFileError(f"not a readable .npy array ({e})") from e
    if arr.dtype.kind not in "biuf":
        raise ShapeFileError(f"a voxel array must be boolean or numeric, got {arr.dtype}")
    _check_cubic(arr.shape, "a voxel array")
    return resample(arr >= 0.5, resolution)
