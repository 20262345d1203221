"""The object cut-out network: it learns masks, resumes exactly, and exports with parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from training.engine.segmenter import (
    BACKGROUND_POOL,
    FILE,
    _zoom_out,
    background_pool,
    load_segmenter,
    train_segmenter,
)
from training.export.onnx import export_onnx
from training.models.segmenter import Segmenter, SegmenterConfig, SegmenterExport


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


def test_zoomed_out_samples_are_the_object_smaller_on_another_background() -> None:
    images, masks = _squares(6, size=32)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    m = torch.from_numpy(masks).float()[:, None]
    pool = background_pool(32, [], seed=0)
    assert pool.shape == (BACKGROUND_POOL, 3, 32, 32) and pool.min() >= -1 and pool.max() <= 1
    gen = torch.Generator().manual_seed(0)
    zx, zm = _zoom_out(x, m, pool, 0.5, gen)
    # the first half: smaller masks, and every pixel away from the mask (the edge pixels are
    # blends) is one pool background's
    for i in range(3):
        assert 0 < zm[i].sum() < m[i].sum()
        away = torch.nn.functional.max_pool2d(zm[i : i + 1], 3, 1, 1)[0, 0] == 0
        assert any(torch.equal(zx[i][:, away], b[:, away]) for b in pool)
    # the rest untouched
    assert torch.equal(zx[3:], x[3:]) and torch.equal(zm[3:], m[3:])
