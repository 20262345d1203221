"""Preview PNGs, headless and pip-only: shapes rendered with the numpy sphere tracer, voxel
grids drawn as depth-shaded cubes (orthographic, per-voxel), tiled into labelled grids."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from training.shapes import CATEGORY_NAMES, make_shape
from training.shapes.render import View, render

PREVIEW_VIEW = View(
    azimuth=math.radians(35), elevation=math.radians(25), distance=4.0, fov=math.radians(40)
)


def voxel_image(vox: np.ndarray, size: int = 96) -> np.ndarray:
    """Occupancy [R, R, R] (x, y, z; y up) -> [size, size, 3] uint8: a view from the front-right,
    each visible voxel face shaded by its direction and depth."""
    r = vox.shape[0]
    v = vox.astype(bool)
    # rotate so the camera looks along -z from the front-right corner: use three visible faces
    img = np.ones((r * 2, r * 2, 3))
    depth = np.full((r * 2, r * 2), -np.inf)
    xs, ys, zs = np.nonzero(v)
    # isometric-ish projection: screen u = x - z, w = y - (x + z) / 2
    u = (xs - zs + r).astype(int)
    w = (2 * r - 1 - (ys + (r - 1 - xs + r - 1 - zs) // 2) // 1).astype(int)
    key = xs + ys + zs  # closer to the camera = larger
    order = np.argsort(key)
    shade = 0.45 + 0.5 * (ys[order] / max(r - 1, 1))
    for ui, wi, k, s in zip(u[order], w[order] // 1, key[order], shade, strict=True):
        if 0 <= wi < 2 * r and 0 <= ui < 2 * r and k >= depth[wi, ui]:
            depth[wi, ui] = k
            img[wi, ui] = np.array([0.35, 0.45, 0.75]) * s + 0.1
    out = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    return np.asarray(out.resize((size, size), Image.NEAREST))


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
        row += [voxel_image(sh.voxels(resolution), size) for sh in shapes[:2]]
        for k, sh in enumerate(shapes[:3]):
            rgb, _ = render(sh, np.random.default_rng([ci, k, 99]), size=size)
            row.append(rgb)
        rows.append(np.concatenate(row, axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)
    return path
