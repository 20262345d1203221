"""Preview PNGs, headless and pip-only: shapes rendered with the numpy sphere tracer, voxel and
probability grids ray-marched at their iso-surface, tiled into labelled grids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from training.data.shapes import CATEGORY_NAMES, make_shape
from training.data.shapes.render import View, camera_rays, render

PREVIEW_VIEW = View(
    azimuth=math.radians(35), elevation=math.radians(25), distance=4.0, fov=math.radians(40)
)


def label(img: np.ndarray, text: str) -> np.ndarray:
    pil = Image.fromarray(img)
    ImageDraw.Draw(pil).text((3, 2), text, fill=(0, 0, 0))
    return np.asarray(pil)


def dataset_preview(
    path: Path, *, per_category: int = 4, resolution: int = 32, size: int = 96
) -> Path:
    """Rows = categories; columns = clean renders, voxel grids and photo-like training renders."""
    rows = []
    for ci, name in enumerate(CATEGORY_NAMES):
        row = []
        shapes = [make_shape(name, s) for s in range(per_category)]
        for sh in shapes:
            rgb, _ = render(sh, np.random.default_rng(0), size=size, plain=True, view=PREVIEW_VIEW)
            row.append(label(rgb, name if not row else ""))
        row += [
            render_grid(sh.voxels(resolution).astype(np.float32), size=size) for sh in shapes[:2]
        ]
        for k, sh in enumerate(shapes[:3]):
            rgb, _ = render(sh, np.random.default_rng([ci, k, 99]), size=size)
            row.append(rgb)
        rows.append(np.concatenate(row, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)
    return path


GRID_STEPS = 160  # ray-marching steps across the bounding sphere
BASE_COLOUR = np.array([0.55, 0.62, 0.78])


def render_grid(
    prob: np.ndarray,
    *,
    threshold: float = 0.5,
    size: int = 128,
    view: View = PREVIEW_VIEW,
    colour: np.ndarray = BASE_COLOUR,
) -> np.ndarray:
    """A probability (or occupancy) grid [R, R, R] (x, y, z; y up) -> [size, size, 3] uint8:
    the iso-surface at ``threshold`` of the trilinearly interpolated field, ray-marched and
    shaded with field-gradient normals, on white. Pure numpy/scipy."""
    from scipy.ndimage import map_coordinates

    r = prob.shape[0]
    field = np.pad(prob.astype(np.float32), 1)  # zero border: surfaces close at the edge

    def sample(p: np.ndarray) -> np.ndarray:  # world [N, 3] in [-1, 1] -> field values
        idx = (p + 1.0) / 2.0 * r - 0.5 + 1.0  # voxel centres at integer coordinates (+pad)
        return map_coordinates(field, idx.T, order=1, mode="constant", cval=0.0)

    eye, dirs = camera_rays(view, size)
    b = dirs @ eye
    disc = b * b - (eye @ eye - 3.0)
    t0 = -b - np.sqrt(np.maximum(disc, 0))
    t1 = -b + np.sqrt(np.maximum(disc, 0))
    dt = (t1 - t0) / GRID_STEPS
    hit = np.zeros(len(dirs), dtype=bool)
    t_hit = np.zeros(len(dirs))
    active = np.nonzero(disc > 0)[0]
    for k in range(GRID_STEPS):
        if active.size == 0:
            break
        t = t0[active] + k * dt[active]
        inside = sample(eye + t[:, None] * dirs[active]) >= threshold
        hit[active[inside]] = True
        t_hit[active[inside]] = t[inside]
        active = active[~inside]
    idx = np.nonzero(hit)[0]
    lo, hi = t_hit[idx] - dt[idx], t_hit[idx]
    for _ in range(6):  # bisection onto the iso-surface
        mid = (lo + hi) / 2
        inside = sample(eye + mid[:, None] * dirs[idx]) >= threshold
        hi, lo = np.where(inside, mid, hi), np.where(inside, lo, mid)
    p = eye + hi[:, None] * dirs[idx]
    e = 1.0 / r
    grad = np.stack([sample(p + o) - sample(p - o) for o in np.eye(3) * e], axis=1)
    normal = -grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)
    light = np.array([0.5, 1.0, 0.3]) + eye / np.linalg.norm(eye)
    light /= np.linalg.norm(light)
    shade = 0.35 + 0.65 * np.clip(normal @ light, 0, 1)
    img = np.ones((len(dirs), 3))
    img[idx] = np.clip(colour[None] * shade[:, None] + 0.05, 0, 1)
    return (img.reshape(size, size, 3) * 255 + 0.5).astype(np.uint8)


def tile(images: list[np.ndarray], cols: int, labels: list[str] | None = None) -> np.ndarray:
    """Equal-sized images -> one grid image (white padding), optional per-image labels."""
    if labels:
        images = [label(im, t) for im, t in zip(images, labels, strict=True)]
    h, w = images[0].shape[:2]
    rows = -(-len(images) // cols)
    out = np.full((rows * h, cols * w, 3), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        out[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] = im[
            ..., :3
        ]
    return out


def save_png(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, optimize=True)
    return path
