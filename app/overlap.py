"""Intersection over union of occupancy grids and masks: the one implementation, used by the
service (/v1/encode's fit_iou) and by training's evaluation, export and data clean-up (a torch
twin runs on the training device in training/models/prototypes.py, where the bank's IoUs are
computed in chunks on the GPU)."""

from __future__ import annotations

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample IoU of bool arrays [N, ...] -> [N] float; two empty samples count as 1."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    inter, union = (a & b).sum(1), (a | b).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every sample of a [N, ...] and of b [M, ...] (bool or {0, 1}) -> [N, M]."""
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)
