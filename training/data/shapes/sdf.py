"""Analytic solid primitives as signed distance functions, and a Shape made of them.

One implementation per primitive serves both voxelisation (inside = sdf < 0 at voxel centres:
exact, no mesh needed) and rendering (sphere tracing in ``render.py``). Distances follow Inigo
Quilez's well-known formulas; the union (min) of exact SDFs is a lower bound, which is what
sphere tracing needs.

Frame: y is up, +z is the front, objects stand on y = 0 in their build frame; ``Shape`` centres
and scales them into [-1, 1]^3 (largest extent = 2 * (1 - margin)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.voxelize import MARGIN

Vec3 = tuple[float, float, float]
_AXES = {"x": 0, "y": 1, "z": 2}


def _length(a: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(a * a, axis=-1))


def _radial(q: np.ndarray, axis: str) -> tuple[np.ndarray, np.ndarray]:
    """Offsets q [N, 3] -> (distance from the axis, coordinate along it), each [N]."""
    a = _AXES[axis]
    return np.sqrt(np.sum(np.delete(q, a, axis=-1) ** 2, axis=-1)), q[:, a]


def _axial_bounds(
    center: Vec3, radial: float, along: float, axis: str
) -> tuple[np.ndarray, np.ndarray]:
    h = np.full(3, radial)
    h[_AXES[axis]] = along
    c = np.asarray(center)
    return c - h, c + h


@dataclass(frozen=True)
class Box:
    center: Vec3
    half: Vec3
    part: str

    def sdf(self, p: np.ndarray) -> np.ndarray:  # p [N, 3] -> [N]
        q = np.abs(p - self.center) - self.half
        return _length(np.maximum(q, 0.0)) + np.minimum(q.max(axis=-1), 0.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, h = np.asarray(self.center), np.asarray(self.half)
        return c - h, c + h


@dataclass(frozen=True)
class Cylinder:
    center: Vec3
    radius: float
    half_height: float
    part: str
    axis: str = "y"

    def sdf(self, p: np.ndarray) -> np.ndarray:
        rho, y = _radial(p - self.center, self.axis)
        d = np.stack([rho - self.radius, np.abs(y) - self.half_height], axis=-1)
        return np.minimum(d.max(axis=-1), 0.0) + _length(np.maximum(d, 0.0))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _axial_bounds(self.center, self.radius, self.half_height, self.axis)


@dataclass(frozen=True)
class Frustum:
    """A capped cone along y: radius ``r_bottom`` at center.y - half_height, ``r_top`` above."""

    center: Vec3
    r_bottom: float
    r_top: float
    half_height: float
    part: str

    def sdf(self, p: np.ndarray) -> np.ndarray:
        q = p - self.center
        qx = np.sqrt(q[:, 0] ** 2 + q[:, 2] ** 2)
        qy = q[:, 1]
        h, r1, r2 = self.half_height, self.r_bottom, self.r_top
        k2x, k2y = r2 - r1, 2.0 * h
        cax = qx - np.minimum(qx, np.where(qy < 0.0, r1, r2))
        cay = np.abs(qy) - h
        t = np.clip(((r2 - qx) * k2x + (h - qy) * k2y) / (k2x * k2x + k2y * k2y), 0.0, 1.0)
        cbx = qx - r2 + k2x * t
        cby = qy - h + k2y * t
        s = np.where((cbx < 0.0) & (cay < 0.0), -1.0, 1.0)
        return s * np.sqrt(np.minimum(cax**2 + cay**2, cbx**2 + cby**2))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        r = max(self.r_bottom, self.r_top)
        c = np.asarray(self.center)
        h = np.array([r, self.half_height, r])
        return c - h, c + h


@dataclass(frozen=True)
class Ellipsoid:
    center: Vec3
    radii: Vec3
    part: str

    def sdf(self, p: np.ndarray) -> np.ndarray:
        q = (p - self.center) / self.radii
        k0 = _length(q)
        k1 = np.maximum(_length(q / self.radii), 1e-9)
        return k0 * (k0 - 1.0) / k1

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        c, r = np.asarray(self.center), np.asarray(self.radii)
        return c - r, c + r


@dataclass(frozen=True)
class Torus:
    """A ring of tube radius ``minor`` around ``axis`` through ``center``."""

    center: Vec3
    major: float
    minor: float
    part: str
    axis: str = "y"

    def sdf(self, p: np.ndarray) -> np.ndarray:
        rho, y = _radial(p - self.center, self.axis)
        return np.sqrt((rho - self.major) ** 2 + y**2) - self.minor

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _axial_bounds(self.center, self.major + self.minor, self.minor, self.axis)


Primitive = Box | Cylinder | Frustum | Ellipsoid | Torus

# MARGIN (app/voxelize.py) is the canonical frame's margin, shared with the service's voxeliser:
# at 32^3 the outer voxel layer stays empty.


def cell_centres(resolution: int) -> np.ndarray:
    """The centres of an [R, R, R] grid's cells over [-1, 1]^3 -> [R^3, 3], in C order (x, y,
    z)."""
    c = (np.arange(resolution) + 0.5) / resolution * 2.0 - 1.0
    return np.stack(np.meshgrid(c, c, c, indexing="ij"), axis=-1).reshape(-1, 3)


@dataclass(frozen=True)
class Shape:
    """Union of ``parts`` minus union of ``carve``, normalised into [-1, 1]^3."""

    category: str
    seed: int
    attributes: dict[str, float]
    parts: tuple[Primitive, ...]
    carve: tuple[Primitive, ...] = ()
    _norm: tuple[np.ndarray, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lo = np.min([p.bounds()[0] for p in self.parts], axis=0)
        hi = np.max([p.bounds()[1] for p in self.parts], axis=0)
        centre = (lo + hi) / 2.0
        scale = 2.0 * (1.0 - MARGIN) / float(np.max(hi - lo))  # build units -> grid units
        object.__setattr__(self, "_norm", (centre, scale))

    def _local(self, p: np.ndarray, frame: Shape | None = None) -> np.ndarray:
        centre, scale = (frame or self)._norm
        return np.asarray(p, dtype=np.float64) / scale + centre

    def sdf(self, p: np.ndarray, *, frame: Shape | None = None) -> np.ndarray:
        """Signed distance in grid units. p [N, 3] float in [-1, 1]^3 -> [N] float64.
        ``frame``: use another shape's centring and scale (to compare two shapes in place)."""
        q = self._local(p, frame)
        d = np.min([prim.sdf(q) for prim in self.parts], axis=0)
        if self.carve:
            d = np.maximum(d, -np.min([prim.sdf(q) for prim in self.carve], axis=0))
        return d * (frame or self)._norm[1]

    def part_index(self, p: np.ndarray) -> np.ndarray:
        """Index into ``parts`` of the nearest positive part. p [N, 3] -> [N] int."""
        q = self._local(p)
        return np.argmin([prim.sdf(q) for prim in self.parts], axis=0)

    def voxels(self, resolution: int, *, frame: Shape | None = None) -> np.ndarray:
        """Solid occupancy: a voxel is set when the solid reaches into its cell (the surface is
        within half a voxel of its centre), so parts thinner than a voxel are never lost.
        -> [R, R, R] bool, axes (x, y, z), y up, +z front."""
        # within half of the voxel size 2 / R
        inside = self.sdf(cell_centres(resolution), frame=frame) < 1.0 / resolution
        return inside.reshape(resolution, resolution, resolution)
