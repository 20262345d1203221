"""The object cut-out network: it learns masks, resumes exactly, and exports with parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.export import export_onnx
from training.segmenter import (
    FILE,
    Segmenter,
    SegmenterConfig,
    SegmenterExport,
    load_segmenter,
    train_segmenter,
)


def _squares(n: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Red rectangles of random size and place on green-blue noise: [N, S, S, 3], [N, S, S]."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    images[..., 0] = images[..., 1] // 3
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        y0, x0 = rng.integers(1, size // 2, 2)
        y1, x1 = y0 + rng.integers(3, size // 2), x0 + rng.integers(3, size // 2)
        masks[i, y0:y1, x0:x1] = 1
        images[i, y0:y1, x0:x1] = (220, 30, 30)
    return images, masks


CFG = SegmenterConfig(size=16, width=8, steps=60, batch=16, lr=3e-3)


def test_it_learns_the_masks_and_saves_what_the_card_reads(tmp_path: Path) -> None:
    parts = {"procedural": _squares(200)}
    result = train_segmenter(CFG, parts, _squares(40, seed=1), tmp_path)
    assert result["val_mask_iou"] > 0.8  # an untrained net scores ~0.2 (a square's share)
    net = load_segmenter(tmp_path)
    assert isinstance(net, Segmenter) and not net.training
    assert load_segmenter(tmp_path / "elsewhere") is None


def test_a_stopped_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    parts = {"procedural": _squares(100), "real": _squares(50, seed=2)}
    val = _squares(20, seed=1)
    cfg = SegmenterConfig(size=16, width=4, steps=8, batch=8)
    whole, halves = tmp_path / "whole", tmp_path / "halves"
    whole.mkdir(), halves.mkdir()
    train_segmenter(cfg, parts, val, whole)
    assert train_segmenter(cfg, parts, val, halves, stop_after=5) is None
    assert not (halves / FILE).exists()
    train_segmenter(cfg, parts, val, halves)
    a, b = torch.load(whole / FILE)["net"], torch.load(halves / FILE)["net"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_it_exports_with_parity(tmp_path: Path) -> None:
    net = Segmenter(CFG).eval()
    sig, err = export_onnx(
        SegmenterExport(net),
        tmp_path / "s.onnx",
        inputs={"image": ["batch", 3, 16, 16]},
        outputs={"object": ["batch", 1, 16, 16]},
    )
    assert err < 1e-4 and sig.outputs[0].shape == ["batch", 1, 16, 16]
