"""Occupancy probabilities -> a clean triangle mesh. Plain functions over arrays.

World frame: the grid spans [-1, 1]^3, axes (x, y, z) with y up and +z the front, which is
glTF's convention too, so meshes need no rotation for web viewers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage
from skimage import measure

MAX_UPSAMPLE = 4
CROP_MARGIN = 3  # coarse voxels kept around the object's bounding box
DEFAULT_MIN_PART_FRACTION = 0.2  # floating fragments under 20% of the main part are removed


def drop_small_parts(prob: np.ndarray, threshold: float, fraction: float) -> np.ndarray:
    """prob [R, R, R] -> the same with parts (face-connected voxels >= threshold) smaller than
    ``fraction`` of the largest part zeroed, so they make no surface. fraction 0: unchanged."""
    if fraction <= 0:
        return prob
    labels, n = ndimage.label(prob >= threshold)
    if n <= 1:
        return prob
    sizes = np.bincount(labels.ravel())[1:]
    small = np.nonzero(sizes < fraction * sizes.max())[0] + 1
    if len(small) == 0:
        return prob
    return np.where(np.isin(labels, small), 0.0, prob).astype(prob.dtype)


def count_parts(occupied: np.ndarray) -> int:
    """Face-connected parts of a bool grid [R, R, R]."""
    return int(ndimage.label(occupied)[1])


@dataclass(frozen=True)
class MeshOptions:
    threshold: float = 0.5  # iso-level on the probability field
    upsample: int = 1  # smooth upsampling factor before marching cubes, 1..4
    largest_component: bool = False  # drop all but the largest connected part
    # drop parts smaller than this fraction of the largest (voxels above the threshold, face-
    # connected); 0 keeps every floating fragment
    min_part_fraction: float = DEFAULT_MIN_PART_FRACTION
    smooth_iterations: int = 0  # Taubin smoothing passes (keeps volume)
    target_faces: int | None = None  # quadric decimation down to about this many faces


def upsample(prob: np.ndarray, factor: int) -> np.ndarray:
    """[R, R, R] -> [R * f, R * f, R * f] float32 in [0, 1]: each voxel repeated f times, then
    a Gaussian blur of half a coarse voxel. Smooth, no overshoot (a cubic spline rings and
    invents surfaces near flat fields) and ~10x faster than scipy's cubic zoom (bench/mesh)."""
    if factor == 1:
        return prob.astype(np.float32)
    up = prob.astype(np.float32).repeat(factor, 0).repeat(factor, 1).repeat(factor, 2)
    return ndimage.gaussian_filter(up, sigma=0.5 * factor, mode="nearest", truncate=2.0)


def to_mesh(prob: np.ndarray, options: MeshOptions = MeshOptions()) -> trimesh.Trimesh | None:
    """prob [R, R, R] float in [0, 1] -> mesh in world coordinates, or None when no voxel
    reaches the threshold (an empty shape)."""
    prob = drop_small_parts(prob, options.threshold, options.min_part_fraction)
    inside = np.argwhere(prob >= options.threshold)
    if len(inside) == 0:
        return None
    # Work on the object's bounding box only. The blur reaches one coarse voxel, so a blurred
    # value can reach the threshold only within one coarse voxel of an input that does; the
    # marching-cubes edges that cross it end one fine voxel further out, and their values need
    # inputs one more coarse voxel out: a margin of three keeps every value the surface uses
    # equal to the whole-grid one (and ~half the upsampling and marching-cubes time).
    r, f = prob.shape[0], options.upsample
    lo = np.maximum(inside.min(0) - CROP_MARGIN, 0)
    hi = np.minimum(inside.max(0) + 1 + CROP_MARGIN, r)
    field = upsample(prob[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]], f)
    if not (field >= options.threshold).any():
        return None
    padded = np.pad(field, 1)  # zero border closes surfaces at the grid edge
    verts, faces, normals, _ = measure.marching_cubes(padded, level=options.threshold)
    # padded index -> fine index in the whole grid -> cell centre -> world
    verts = ((verts - 1.0 + lo * f) + 0.5) / (r * f) * 2.0 - 1.0
    # skimage winds faces towards increasing values (inward here); reverse for outward faces.
    # Its vertices are already shared and its gradient normals point outward: no processing.
    mesh = trimesh.Trimesh(verts, faces[:, ::-1], vertex_normals=normals, process=False)
    if options.largest_component and len(mesh.faces):
        parts = mesh.split(only_watertight=False)
        if len(parts) > 1:
            mesh = max(parts, key=lambda m: len(m.faces))
    if options.smooth_iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, iterations=options.smooth_iterations)
    if options.target_faces and len(mesh.faces) > options.target_faces:
        mesh = mesh.simplify_quadric_decimation(face_count=options.target_faces)
    return mesh
