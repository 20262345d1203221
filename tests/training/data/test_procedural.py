"""Dataset CLI, shards, cards and splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from training.__main__ import main
from training.data.procedural import DATA_PRESETS, SPLITS, build, load_split, split_seeds


def test_split_seeds_are_disjoint() -> None:
    cfg = DATA_PRESETS["paper"]
    seeds = {s: set(split_seeds(s, cfg.count(s)).tolist()) for s in SPLITS}
    assert not (seeds["train"] & seeds["val"]) and not (seeds["train"] & seeds["test"])
    assert not (seeds["val"] & seeds["test"])


def test_tiny_build_shards_card_and_cache(tmp_path: Path) -> None:
    cfg = DATA_PRESETS["tiny"]
    out = build(cfg, tmp_path, workers=1)
    card = json.loads((out / "dataset_card.json").read_text())
    n_cat = len(cfg.categories)
    assert card["samples"] == n_cat * (
        cfg.train_per_category + cfg.val_per_category + cfg.test_per_category
    )
    assert card["samples_per_second"] > 0
    assert (out / "DATASET_CARD.md").read_text().count("|") > 20
    train = load_split(out, "train")
    r, s = cfg.resolution, cfg.image_size
    assert train["voxels"].shape == (n_cat * cfg.train_per_category, r, r, r)
    assert train["images"].shape == (n_cat * cfg.train_per_category, cfg.views, s, s, 3)
    assert train["masks"].shape == train["images"].shape[:-1]
    assert train["voxels"].reshape(len(train["voxels"]), -1).any(axis=1).all()
    test = load_split(out, "test")
    assert not set(train["seed"].tolist()) & set(test["seed"].tolist())
    # binary attributes are 0/1 where the category has them, NaN elsewhere
    assert np.isnan(train["attrs"]).any() and set(
        np.unique(train["attrs"][~np.isnan(train["attrs"])])
    ) >= {0.0, 1.0}
    # a second build reuses the cache
    mtime = (out / "train-000.npz").stat().st_mtime
    assert build(cfg, tmp_path, workers=1) == out
    assert (out / "train-000.npz").stat().st_mtime == mtime


def test_cli_builds_data_and_preview(tmp_path: Path, capsys) -> None:
    png = tmp_path / "preview.png"
    main(
        [
            "data",
            "--preset",
            "tiny",
            "--root",
            str(tmp_path / "d"),
            "--workers",
            "1",
            "--preview",
            str(png),
        ]
    )
    assert "samples/s" in capsys.readouterr().out
    img = Image.open(png)
    assert img.width > 300 and img.height > 300
