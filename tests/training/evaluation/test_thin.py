"""Thin-part recall: a table's legs are thin, its top is not; an answer without legs recovers
none of the thin voxels; pooling keeps any occupied voxel."""

from __future__ import annotations

import numpy as np

from training.evaluation.thin import pool, thin_part_recall, thin_voxels


def _table(r: int = 32, leg: int = 2) -> np.ndarray:
    g = np.zeros((r, r, r), bool)
    g[4:28, 20:24, 4:28] = True  # top, 4 voxels thick
    for x in (5, 25):
        for z in (5, 25):
            g[x : x + leg, 4:20, z : z + leg] = True  # legs, `leg` voxels wide
    return g


def test_legs_are_thin_and_the_top_is_not() -> None:
    table = _table()
    thin = thin_voxels(table[None])[0]
    legs = table.copy()
    legs[:, 20:24] = False
    assert thin[legs].all()  # every leg voxel is thin (2 wide)
    assert not thin[8:24, 21:23, 8:24].any()  # the top's inside is not
    assert not thin_voxels(_table(leg=3)[None])[0][6, 10, 6]  # a 3-wide leg is not thin


def test_recall_counts_the_thin_voxels_an_answer_keeps() -> None:
    table = _table()
    no_legs = table.copy()
    no_legs[:, 4:20] = False
    solid = np.zeros_like(table)
    solid[4:28, 4:24, 4:28] = True  # a block covering everything
    recall = thin_part_recall(np.stack([table, no_legs, solid]), np.stack([table] * 3))
    assert recall[0] == 1.0 and recall[1] < 0.2 and recall[2] == 1.0
    block = np.zeros((1, 16, 16, 16), bool)
    block[0, 4:12, 4:12, 4:12] = True
    assert np.isnan(thin_part_recall(block, block)[0])  # nothing thin to recover


def test_pool_keeps_any_occupied_voxel() -> None:
    g = np.zeros((1, 8, 8, 8), bool)
    g[0, 3, 4, 5] = True
    p = pool(g, 2)
    assert p.shape == (1, 4, 4, 4) and p.sum() == 1 and p[0, 1, 2, 2]
