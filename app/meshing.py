"""Occupancy probabilities -> a clean triangle mesh. Plain functions over arrays.

World frame: the grid spans [-1, 1]^3, axes (x, y, z) with y up and +z the front, which is
glTF's convention too, so meshes need no rotation for web viewers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage import measure

MAX_UPSAMPLE = 4
CROP_MARGIN = 3  # coarse voxels kept around the object's bounding box
DEFAULT_MIN_PART_FRACTION = 0.2  # floating fragments under 20% of the main part are removed
# a part apart from the main one is joined to it along the likeliest face-connected path whose
# voxels all have at least this fraction of the threshold (join_parts). Measured on 1,000 prior
# samples of bundle 3.10.0 at threshold 0.7 (seeds drawn apart from the evaluation's): in one
# piece after the clean-up without joining 95.6%; join level 0.7: 98.2%; 0.5: 99.2% (about 2
# voxels added per sample); 0.35: 99.2%
DEFAULT_JOIN_LEVEL = 0.5
# Marching cubes on the grid itself, then Taubin smoothing: a blurred upsampling first erases
# parts one voxel thin (wings, legs, poles), so it is an option, not the default
# (docs/model_history.md: the meshing of 3.10.1)
DEFAULT_UPSAMPLE = 1
DEFAULT_SMOOTH_ITERATIONS = 10
# part of GET /v1/shapes ETags: bump it when the same probabilities mesh differently
MESHING_VERSION = "2"


def join_parts(prob: np.ndarray, threshold: float, level: float) -> np.ndarray:
    """prob [R, R, R] -> the same with each part (face-connected voxels >= threshold) apart
    from the largest joined to it along the cheapest face-connected path (entering a voxel
    costs 1 - prob) through voxels >= ``level`` x threshold; the path's voxels under the
    threshold become 1. A part with no such path stays apart. The model's own probabilities
    draw the bridge: a table leg that G draws at 0.6 where it meets the top stays attached
    instead of floating (or being dropped as a fragment). Dijkstra from scipy.sparse.csgraph
    on the graph of the voxels that may carry a bridge (skimage's MCP gave the same paths at
    4x the time: it checks each start point in Python)."""
    labels, n = ndimage.label(prob >= threshold)
    if n <= 1:
        return prob
    main = int(np.bincount(labels.ravel())[1:].argmax()) + 1
    passable = prob >= level * threshold  # every part is in it
    node = np.full(prob.shape, -1, np.int64)  # [R, R, R] graph node of each passable voxel
    node[passable] = np.arange(int(passable.sum()))
    enter = 1.0 - prob[passable] + 1e-3  # > 0: csgraph drops zero-weight edges
    pairs = []
    for axis in range(3):  # face neighbours, both passable
        lo = node[tuple(slice(0, -1) if a == axis else slice(None) for a in range(3))]
        hi = node[tuple(slice(1, None) if a == axis else slice(None) for a in range(3))]
        both = (lo >= 0) & (hi >= 0)
        pairs += [(lo[both], hi[both]), (hi[both], lo[both])]
    src = np.concatenate([a for a, _ in pairs])
    dst = np.concatenate([b for _, b in pairs])
    graph = coo_matrix((enter[dst], (src, dst)), shape=(len(enter),) * 2).tocsr()
    body = labels == main  # paths start on its surface (a path from inside leaves through it)
    cost, previous, _ = dijkstra(
        graph,
        indices=node[body & ~ndimage.binary_erosion(body)],
        min_only=True,
        return_predecessors=True,
    )
    voxel, part_of = np.flatnonzero(passable), labels[passable]
    out = prob.copy()
    flat = out.reshape(-1)  # a view: bridges written here land in out
    for part in range(1, n + 1):
        mine = np.nonzero(part_of == part)[0]
        k = mine[np.argmin(cost[mine])]
        if part == main or not np.isfinite(cost[k]):
            continue
        path = []
        while k >= 0:  # back to a start, whose predecessor is negative
            path.append(k)
            k = previous[k]
        at = voxel[path]
        flat[at] = np.where(flat[at] < threshold, 1.0, flat[at])
    return out


def fill_cavities(prob: np.ndarray, threshold: float) -> np.ndarray:
    """prob [R, R, R] -> the same with empty space enclosed by the shape set to 1: shapes are
    solid (the training voxels are), and a cavity only makes a hidden inner surface, a mesh
    in several pieces (7% of prior samples of 3.10.0 had one)."""
    occupied = prob >= threshold
    cavity = ndimage.binary_fill_holes(occupied) & ~occupied
    return np.where(cavity, 1.0, prob).astype(prob.dtype) if cavity.any() else prob


def clean_up(
    prob: np.ndarray,
    threshold: float,
    *,
    join_level: float = DEFAULT_JOIN_LEVEL,
    min_part_fraction: float = DEFAULT_MIN_PART_FRACTION,
) -> np.ndarray:
    """The service's clean-up before meshing, prob [R, R, R] -> prob [R, R, R]: 1. join parts
    to the main one where the model draws a likely bridge (:func:`join_parts`; join_level 1
    joins nothing); 2. drop what is still apart and small (:func:`drop_small_parts`);
    3. fill enclosed cavities (:func:`fill_cavities`)."""
    if join_level < 1:
        prob = join_parts(prob, threshold, join_level)
    prob = drop_small_parts(prob, threshold, min_part_fraction)
    return fill_cavities(prob, threshold)


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


# marching cubes makes about two triangles per voxel face on the surface, times upsample^2
# (measured on the shipped bundle's samples, thresholds 0.001-0.7, upsample 1-4: 1.41-2.01)
TRIANGLES_PER_SURFACE_FACE = 2.1


def surface_faces(occupied: np.ndarray) -> int:
    """Voxel faces between occupied and empty cells of a bool grid [..., R, R, R] (the grid's
    border counts as empty)."""
    padded = np.pad(occupied, [(0, 0)] * (occupied.ndim - 3) + [(1, 1)] * 3)
    return sum(
        int(np.count_nonzero(np.diff(padded, axis=a))) for a in range(-3, 0)
    )  # diff of bools: True where neighbours differ


def estimate_triangles(prob: np.ndarray, options: MeshOptions) -> int:
    """An upper estimate of the triangles :func:`to_mesh` makes of prob [R, R, R], from its
    surface at the threshold, without meshing."""
    faces = surface_faces(prob >= options.threshold)
    triangles = int(TRIANGLES_PER_SURFACE_FACE * options.upsample**2 * faces)
    return min(triangles, options.target_faces) if options.target_faces else triangles


def count_parts(occupied: np.ndarray) -> int:
    """Face-connected parts of a bool grid [R, R, R]."""
    return int(ndimage.label(occupied)[1])


@dataclass(frozen=True)
class MeshOptions:
    threshold: float = 0.5  # iso-level on the probability field
    # blurred upsampling factor before marching cubes, 1..4 (parts one voxel thin thin out)
    upsample: int = DEFAULT_UPSAMPLE
    largest_component: bool = False  # drop all but the largest connected part
    # join parts through voxels >= join_level x threshold (clean_up); 1 joins nothing
    join_level: float = DEFAULT_JOIN_LEVEL
    # drop parts smaller than this fraction of the largest (voxels above the threshold, face-
    # connected); 0 keeps every floating fragment
    min_part_fraction: float = DEFAULT_MIN_PART_FRACTION
    smooth_iterations: int = DEFAULT_SMOOTH_ITERATIONS  # Taubin smoothing passes (keeps volume)
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
    prob = clean_up(
        prob,
        options.threshold,
        join_level=options.join_level,
        min_part_fraction=options.min_part_fraction,
    )
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
