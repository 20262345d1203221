"""Thin parts (legs, poles, handles): which voxels of a shape are thin, and how many of them an
answer recovers; and answers pooled to a coarser grid, to compare bundles of two resolutions.

    thin = thin_voxels(gt)                    # [N, R, R, R] bool: parts at most 2 voxels thick
    recall = thin_part_recall(answer, gt)     # [N]: share of gt's thin voxels the answer has
    coarse = pool(grids, 2)                   # 64^3 -> 32^3, a cell occupied if any voxel is

A voxel is thin when no cube (thickness + 1) voxels wide that lies inside the shape covers it:
exactly the voxels that a morphological opening by that cube removes (scipy.ndimage). At 64^3 a
table leg or a lamp pole is 1-2 voxels thick, so this is the share of legs and poles kept.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_opening

THIN = 2  # voxels: "at most 2 voxels thick" (issue "64^3 and sharp")


def thin_voxels(grids: np.ndarray, thickness: int = THIN) -> np.ndarray:
    """[N, R, R, R] bool -> the voxels no (thickness + 1)-wide cube inside the shape covers."""
    grids = np.asarray(grids, dtype=bool)
    cube = np.zeros((3, *(thickness + 1,) * 3), dtype=bool)
    cube[1] = True  # one sample at a time: the structure does not reach across the batch axis
    return grids & ~binary_opening(grids, structure=cube)


def thin_part_recall(answer: np.ndarray, gt: np.ndarray, thickness: int = THIN) -> np.ndarray:
    """Per sample, the share of ``gt``'s thin voxels that ``answer`` [N, R, R, R] occupies;
    NaN for a shape with no thin parts (averaged with np.nanmean)."""
    thin = thin_voxels(gt, thickness)
    n = thin.reshape(len(thin), -1).sum(1)
    hit = (thin & np.asarray(answer, dtype=bool)).reshape(len(thin), -1).sum(1)
    return np.where(n > 0, hit / np.maximum(n, 1), np.nan)


def pool(grids: np.ndarray, factor: int = 2) -> np.ndarray:
    """[N, R, R, R] bool -> [N, R/f, R/f, R/f]: a cell is occupied when any of its voxels is."""
    n, r = len(grids), grids.shape[1]
    m = r // factor
    cells = np.asarray(grids, dtype=bool).reshape(n, m, factor, m, factor, m, factor)
    return cells.any(axis=(2, 4, 6))
