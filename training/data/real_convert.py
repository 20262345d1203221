"""Real data for users who have it: folders of meshes (OBJ/OFF/STL/PLY/GLB) and binvox voxel
files, brought into the same canonical frame and grid as the procedural data (app/voxelize.py).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import trimesh

from app.overlap import pairwise_iou
from app.voxelize import MARGIN, ShapeFileError, load_mesh, read_binvox, voxelize_mesh
from training.data import minetest
from training.data.real_sources import OBJECTS_LEFT_OUT, SPLIT_GROUP, RealModel

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


# --- Real models from Debian packages (training/data/real_sources.py) ---------------------------

REAL_SPLITS = {"test": 0.2, "val": 0.1}  # per category, by model; the rest is train
DUPLICATE_IOU = 0.9  # two models of a category closer than this at the data resolution: keep one


def _model_file(model: RealModel, cache: Path) -> Path:
    """The model as a file trimesh reads (OBJ + MTL + textures), converted once into ``cache``.
    AC3D goes through Debian's assimp command (assimp-utils): trimesh has no AC3D reader, and
    the command line keeps a crash in a malformed file out of this process."""
    if model.package == minetest.PACKAGE:  # a Minetest mesh: materials from its node's tiles
        return minetest.textured_obj(Path(model.path), model.name, cache)
    if model.member:  # an OBJ inside an .sh3f zip: extract its folder (textures, MTL)
        folder = model.member.rsplit("/", 1)[0] + "/"
        out = cache / "sh3f" / Path(model.path).stem
        target = out / model.member
        if not target.is_file():
            with zipfile.ZipFile(model.path) as z:
                z.extractall(out, [n for n in z.namelist() if n.startswith(folder)])
        return target
    # binary glTF where objects are left out by name (it keeps AC3D's object names; OBJ groups
    # by material)
    suffix = ".glb" if model.package in OBJECTS_LEFT_OUT else ".obj"
    target = cache / "ac" / (hashlib.sha256(model.uid.encode()).hexdigest()[:16] + suffix)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        if shutil.which("assimp") is None:
            raise ShapeFileError("the assimp command is missing: apt-get install assimp-utils")
        fmt = ["-fglb2"] if suffix == ".glb" else []
        done = subprocess.run(
            ["assimp", "export", model.path, str(target), *fmt], capture_output=True, timeout=120
        )
        if done.returncode != 0 or not target.is_file():
            raise ShapeFileError(f"assimp could not convert it: {done.stderr[-300:]!r}")
    return target


def load_scene(model: RealModel, cache: Path) -> trimesh.Scene:
    """The model with its materials in the canonical frame: y up, front +z, centred, largest
    extent 2 * (1 - MARGIN) (the same frame voxelize_mesh puts it in)."""
    path = _model_file(model, cache)
    try:
        scene = trimesh.load(path, force="scene")
    except Exception as e:
        raise ShapeFileError(f"{path.name}: cannot be read ({e})") from e
    left_out = OBJECTS_LEFT_OUT.get(model.package)
    if left_out is not None:
        scene = trimesh.Scene(
            [
                scene.geometry[geom].copy().apply_transform(transform)
                for node in scene.graph.nodes_geometry
                if not left_out.search(node)
                for transform, geom in [scene.graph[node]]
            ]
        )
    if not scene.geometry:
        raise ShapeFileError(f"{path.name}: contains no triangles")
    scene.apply_transform(model.canonical_rotation())
    lo, hi = scene.bounds
    if model.size is not None:  # SH3D stretches the model's box to the catalogue dimensions
        scale = np.asarray(model.size) / np.maximum(hi - lo, 1e-9)
        scene.apply_transform(np.diag([*scale, 1.0]))
        lo, hi = scene.bounds
    extent = float(np.max(hi - lo))
    if not np.isfinite(extent) or extent <= 0:
        raise ShapeFileError(f"{path.name}: empty or non-finite bounding box")
    norm = np.eye(4)
    norm[:3, :3] *= 2.0 * (1.0 - MARGIN) / extent
    norm[:3, 3] = -(lo + hi) / 2 * norm[0, 0]
    scene.apply_transform(norm)
    return scene


def voxelize_model(model: RealModel, resolution: int, cache: Path) -> np.ndarray:
    """-> [R, R, R] bool, solid, canonical frame."""
    mesh = load_scene(model, cache).to_mesh()
    return voxelize_mesh(mesh, resolution)


def assign_splits(models: list[RealModel]) -> dict[str, str]:
    """uid -> split, by model and per category, fixed by each uid's hash (REAL_SPLITS). Each
    SPLIT_GROUP of packages draws apart: a source added later never moves an earlier model."""
    out = {}

    def group_of(m: RealModel) -> tuple[int, str]:
        return SPLIT_GROUP.get(m.package, 0), m.split_as or m.category

    for group in sorted({group_of(m) for m in models}):
        ms = sorted(
            (m for m in models if group_of(m) == group),
            key=RealModel.split_key,
        )
        n_test = max(1, round(REAL_SPLITS["test"] * len(ms)))
        n_val = max(1, round(REAL_SPLITS["val"] * len(ms))) if len(ms) > 2 else 0
        for i, m in enumerate(ms):
            out[m.uid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def drop_duplicates(
    models: list[RealModel], voxels: np.ndarray
) -> tuple[list[int], dict[str, str]]:
    """Indices to keep, and dropped uid -> the uid it duplicates (IoU >= DUPLICATE_IOU)."""
    keep: list[int] = []
    dropped: dict[str, str] = {}
    for i, m in enumerate(models):
        twin = None
        for j in keep:
            if models[j].category != m.category or not (voxels[i].any() or voxels[j].any()):
                continue
            if pairwise_iou(voxels[i : i + 1], voxels[j : j + 1])[0, 0] >= DUPLICATE_IOU:
                twin = models[j].uid
                break
        if twin is None:
            keep.append(i)
        else:
            dropped[m.uid] = twin
    return keep, dropped
