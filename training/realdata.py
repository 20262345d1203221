"""Real data for users who have it: folders of meshes (OBJ/OFF/STL/PLY/GLB) and binvox voxel
files, brought into the same canonical frame and grid as the procedural data (app/voxelize.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from app.voxelize import ShapeFileError, load_mesh, read_binvox, voxelize_mesh

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".obj", ".off", ".stl", ".ply", ".glb", ".gltf")
VOXEL_SUFFIXES = (".binvox",)


def load_shape_file(path: Path, resolution: int, *, up: Literal["y", "z"] = "y") -> np.ndarray:
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in VOXEL_SUFFIXES:
            return read_binvox(path.read_bytes(), resolution)
        if suffix in MESH_SUFFIXES:
            return voxelize_mesh(load_mesh(path.read_bytes(), suffix[1:]), resolution, up=up)
    except ShapeFileError as e:
        raise ShapeFileError(f"{path.name}: {e}") from e
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
