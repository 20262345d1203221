"""Real data for users who have it: meshes (OBJ/OFF/STL/PLY/GLB) and binvox voxel files,
brought into the same canonical frame and grid as the procedural data.

Canonical frame: y up (``up="z"`` rotates z-up files), bounding box centred, largest extent
scaled to 2 * (1 - MARGIN) inside [-1, 1]^3, solid (interiors filled). Axes (x, y, z).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import trimesh

from training.shapes.sdf import MARGIN

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".obj", ".off", ".stl", ".ply", ".glb", ".gltf")
VOXEL_SUFFIXES = (".binvox",)


class ShapeFileError(ValueError):
    """A file that cannot become a voxel grid; the message names the file."""


def _as_mesh(path: Path) -> trimesh.Trimesh:
    try:
        loaded = trimesh.load(str(path), force="mesh")
    except Exception as e:  # trimesh raises many types for bad files
        raise ShapeFileError(f"{path.name}: cannot be read as a mesh ({e})") from e
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ShapeFileError(f"{path.name}: contains no triangles")
    return loaded


def voxelize_mesh(
    mesh: trimesh.Trimesh, resolution: int, *, up: Literal["y", "z"] = "y"
) -> np.ndarray:
    """Mesh -> solid occupancy [R, R, R] bool in the canonical frame."""
    mesh = mesh.copy()
    if up == "z":
        mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    lo, hi = mesh.bounds
    extent = float(np.max(hi - lo))
    if not np.isfinite(extent) or extent <= 0:
        raise ShapeFileError("mesh has an empty or non-finite bounding box")
    mesh.apply_translation(-(lo + hi) / 2)
    mesh.apply_scale(2.0 * (1.0 - MARGIN) / extent)
    pitch = 2.0 / resolution
    grid = mesh.voxelized(pitch=pitch).fill()
    idx = np.floor((grid.points + 1.0) / pitch).astype(int)
    idx = idx[np.all((idx >= 0) & (idx < resolution), axis=1)]
    out = np.zeros((resolution,) * 3, dtype=bool)
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return out


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


def read_binvox(path: Path, resolution: int) -> np.ndarray:
    """A binvox file (ShapeNet's voxel format, y up) -> [R, R, R] bool, axes (x, y, z)."""
    try:
        with open(path, "rb") as f:
            grid = trimesh.exchange.binvox.load_binvox(f, axis_order="xzy")
        vox = np.asarray(grid.matrix, dtype=bool)
    except Exception as e:
        raise ShapeFileError(f"{path.name}: not a readable binvox file ({e})") from e
    if vox.ndim != 3 or len(set(vox.shape)) != 1:
        raise ShapeFileError(f"{path.name}: binvox grid must be cubic, got {vox.shape}")
    return resample(vox, resolution)


def load_shape_file(path: Path, resolution: int, *, up: Literal["y", "z"] = "y") -> np.ndarray:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in VOXEL_SUFFIXES:
        return read_binvox(path, resolution)
    if suffix in MESH_SUFFIXES:
        mesh = _as_mesh(path)
        try:
            return voxelize_mesh(mesh, resolution, up=up)
        except Exception as e:  # degenerate geometry surfaces as several exception types
            raise ShapeFileError(f"{path.name}: cannot be voxelised ({e})") from e
    raise ShapeFileError(f"{path.name}: unsupported format; use {MESH_SUFFIXES + VOXEL_SUFFIXES}")


@dataclass
class FolderResult:
    voxels: np.ndarray  # [N, R, R, R] bool
    names: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> reason


def load_folder(folder: Path, resolution: int, *, up: Literal["y", "z"] = "y") -> FolderResult:
    """Every mesh / binvox file under ``folder`` (recursively). Bad files are skipped, counted
    and logged with their reason; they never stop the build."""
    files = sorted(
        p for p in Path(folder).rglob("*") if p.suffix.lower() in MESH_SUFFIXES + VOXEL_SUFFIXES
    )
    grids, names, skipped = [], [], {}
    for p in files:
        try:
            v = load_shape_file(p, resolution, up=up)
            if not v.any():
                raise ShapeFileError(f"{p.name}: voxelises to an empty grid")
        except ShapeFileError as e:
            skipped[str(p.relative_to(folder))] = str(e)
            log.warning("skipped %s", e)
            continue
        grids.append(v)
        names.append(str(p.relative_to(folder)))
    if skipped:
        log.warning("%d of %d files skipped", len(skipped), len(files))
    voxels = np.stack(grids) if grids else np.zeros((0,) + (resolution,) * 3, dtype=bool)
    return FolderResult(voxels, names, skipped)
