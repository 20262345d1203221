"""Dataset building: procedural shapes -> voxel grids + rendered images, in cached shards.

    build(DATA_PRESETS["cpu"], root=Path("data"))  -> data/<name>-<hash>/ with
        {train,val,test}-NNN.npz shards, dataset_card.json, DATASET_CARD.md

A shard holds, for N shapes (V views each, resolution R, image size S):
    voxels   [N, R^3 / 8] uint8  np.packbits of the [R, R, R] bool grid (axes x, y, z; y up)
    images   [N, V, S, S, 3] uint8 RGB, photographed as the real models are (pyrender)
    masks    [N, V, S, S] uint8 in {0, 1}
    category [N] int16  index into training.data.shapes.CATEGORY_NAMES
    seed     [N] int64
    attrs    [N, A] float32, NaN where the category lacks the attribute (order: attribute_names())
The cache key is a hash of the config, so a changed setting never reuses stale data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.data.shapes import CATEGORY_NAMES, all_attributes, make_shape

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_SEED_BASE = {"train": 0, "val": 1_000_000, "test": 2_000_000}  # disjoint seed ranges
SHARD_SIZE = 1024
# Bump when shape geometry, voxelisation or rendering changes: it is part of the cache key.
DATA_VERSION = 2  # 2: photographed with pyrender (1: the numpy sphere tracer)


@dataclass(frozen=True)
class DataConfig:
    name: str  # preset name, part of the cache folder name
    resolution: int = 32  # voxel grid side
    image_size: int = 64  # rendered image side, pixels
    views: int = 2  # renders per shape
    train_per_category: int = 400
    val_per_category: int = 32
    test_per_category: int = 48
    categories: tuple[str, ...] = CATEGORY_NAMES

    def count(self, split: str) -> int:
        return {
            "train": self.train_per_category,
            "val": self.val_per_category,
            "test": self.test_per_category,
        }[split]

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "version": DATA_VERSION}, sort_keys=True).encode()
        return f"{self.name}-{hashlib.sha256(blob).hexdigest()[:10]}"


DATA_PRESETS: dict[str, DataConfig] = {
    "tiny": DataConfig("tiny", resolution=16, image_size=32, views=1,
                       train_per_category=4, val_per_category=2, test_per_category=2),
    "cpu": DataConfig("cpu"),
    "cpu64": DataConfig("cpu64", resolution=64),  # the same shapes and renders, voxels at 64^3
    "paper": DataConfig("paper", resolution=64, image_size=128, views=4,
                        train_per_category=2000, val_per_category=100, test_per_category=200),
}  # fmt: skip


def attribute_names() -> list[str]:
    return [name for name, _, _ in all_attributes()]


def split_seeds(split: str, n: int) -> np.ndarray:
    return SPLIT_SEED_BASE[split] + np.arange(n, dtype=np.int64)


def make_sample(cfg: DataConfig, category: str, seed: int) -> dict[str, np.ndarray]:
    """One shape with its renders. Deterministic in (cfg, category, seed)."""
    shape = make_shape(category, int(seed))
    cat = CATEGORY_NAMES.index(category)
    from training.data.photo import (
        SUPERSAMPLE,
        Photographer,
        shape_scene,
        shared_renderer,
        training_pool,
    )

    images, masks = [], []
    # photographed as the real models are (training/data/photo.py: pyrender, the training
    # backgrounds), from a mesh of the shape coloured by part
    scene = shape_scene(shape, np.random.default_rng([cat, int(seed), 3]), cfg.image_size)
    camera = Photographer(scene, size=cfg.image_size, renderer=shared_renderer(cfg.image_size))
    pool = training_pool(cfg.image_size * SUPERSAMPLE)
    try:
        for v in range(cfg.views):
            rgb, mask, _ = camera.shoot(np.random.default_rng([cat, int(seed), 2, v]), pool)
            images.append(rgb)
            masks.append(mask)
    finally:
        camera.close()
    names = attribute_names()
    attrs = np.full(len(names), np.nan, dtype=np.float32)
    for k, val in shape.attributes.items():
        attrs[names.index(k)] = val
    return {
        "voxels": np.packbits(shape.voxels(cfg.resolution).reshape(-1)),
        "images": np.stack(images),
        "masks": np.stack(masks),
        "category": np.int16(cat),
        "seed": np.int64(seed),
        "attrs": attrs,
    }


def _job(args: tuple[DataConfig, str, int]) -> dict[str, np.ndarray]:
    return make_sample(*args)


def build(cfg: DataConfig, root: Path, *, workers: int = 2, force: bool = False) -> Path:
    """Build (or reuse) the cached dataset for ``cfg`` under ``root``. Returns its folder."""
    out = Path(root) / cfg.key()
    card_path = out / "dataset_card.json"
    if card_path.is_file() and not force:
        log.info("reusing cached dataset %s", out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    counts: dict[str, dict[str, int]] = {}
    attr_counts: dict[str, dict[str, float]] = {}
    total = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for split in SPLITS:
            jobs = [
                (cfg, c, int(s))
                for c in cfg.categories
                for s in split_seeds(split, cfg.count(split))
            ]
            samples = list(tqdm(pool.map(_job, jobs, chunksize=8), total=len(jobs), desc=split))
            for i in range(0, len(samples), SHARD_SIZE):
                chunk = samples[i : i + SHARD_SIZE]
                np.savez(
                    out / f"{split}-{i // SHARD_SIZE:03d}.npz",
                    **{k: np.stack([s[k] for s in chunk]) for k in chunk[0]},
                )
            counts[split] = {c: cfg.count(split) for c in cfg.categories}
            attrs = np.stack([s["attrs"] for s in samples])
            attr_counts[split] = {
                n: int(np.nansum(attrs[:, j] == 1.0))
                if kind == "binary"
                else float(np.nanmean(attrs[:, j]))
                for j, (n, kind, _) in enumerate(all_attributes())
            }
            total += len(samples)
    seconds = time.perf_counter() - start
    card = {
        "key": cfg.key(),
        "config": asdict(cfg),
        "attributes": [{"name": n, "kind": k, "categories": c} for n, k, c in all_attributes()],
        "counts": counts,
        "attribute_stats": attr_counts,  # binary: shapes with it; others: mean value
        "samples": total,
        "build_seconds": round(seconds, 1),
        "samples_per_second": round(total / seconds, 2),
        "workers": workers,
        "split_seed_base": SPLIT_SEED_BASE,
    }
    _write_card_md(out, card)
    card_path.write_text(json.dumps(card, indent=2) + "\n")  # written last: marks completion
    return out


def _write_card_md(out: Path, card: dict) -> None:
    cfg = card["config"]
    lines = [
        f"# Dataset card: {card['key']}",
        "",
        "Procedural shapes from `training/shapes` (deterministic by category and seed), voxelised",
        f"solid at {cfg['resolution']}^3 and rendered {cfg['views']}x at {cfg['image_size']} px",
        "with random views, colours, lighting and backgrounds.",
        "",
        f"- samples: {card['samples']}; built in {card['build_seconds']} s with {card['workers']} "
        f"workers = **{card['samples_per_second']} samples/s**",
        f"- split seed bases (disjoint): {card['split_seed_base']}",
        "",
        "| split | " + " | ".join(cfg["categories"]) + " |",
        "|---|" + "---|" * len(cfg["categories"]),
    ]
    for split, per_cat in card["counts"].items():
        lines.append(
            f"| {split} | " + " | ".join(str(per_cat[c]) for c in cfg["categories"]) + " |"
        )
    lines += [
        "",
        "| attribute | kind | categories | train: count (binary) or mean |",
        "|---|---|---|---|",
    ]
    for a in card["attributes"]:
        stat = card["attribute_stats"]["train"][a["name"]]
        lines.append(f"| {a['name']} | {a['kind']} | {', '.join(a['categories'])} | {stat:.3g} |")
    (out / "DATASET_CARD.md").write_text("\n".join(lines) + "\n")


def load_split(folder: Path, split: str) -> dict[str, np.ndarray]:
    """All shards of a split, concatenated; voxels unpacked to [N, R, R, R] uint8 in {0, 1}."""
    shards = sorted(Path(folder).glob(f"{split}-*.npz"))
    if not shards:
        raise FileNotFoundError(
            f"no {split} shards in {folder}; build it with `python -m training data`"
        )
    parts = [dict(np.load(s)) for s in shards]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    r = round((data["voxels"].shape[1] * 8) ** (1 / 3))
    data["voxels"] = np.unpackbits(data["voxels"], axis=1).reshape(-1, r, r, r)
    return data
