"""A quick look at a training checkpoint as the service would serve it, in a minute or two:

    python scripts/peek_checkpoint.py runs/cpu64/checkpoint.pt peek.png

The sampling prior and the category concepts fitted as the evaluation fits them (procedural and
real train codes), then: 200 prior samples and their one-piece share (raw and after the default
clean-up), the nine concepts, the inner frames of the 36 walks between them (6 each), and the
real test models' voxel
round trip (IoU, pooled to 32^3 when finer, thin-part recall). A picture of 24 samples, the
concepts and the walk chair -> table. For comparing stages and variants; the full figures come from
`python -m training evaluate`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from app.latents import slerp
from training.data.pictures import render_grid, save_png, tile
from training.data.procedural import DATA_PRESETS, attribute_names, build, load_split
from training.data.real_set import load_real, real_dataset_for
from training.data.shapes import CATEGORY_NAMES
from training.engine.checkpoint import load_networks
from training.evaluation.common import decode, encode, iou, train_pool, voxels_input
from training.evaluation.latent_space import concept_vectors, fit_prior
from training.evaluation.real import single_piece_share
from training.evaluation.thin import pool, thin_part_recall
from training.models.judge import binary_targets

KEYS = ("single_piece_raw", "single_piece_after_cleanup", "mean_parts_raw")


def main(checkpoint: Path, out: Path, data_root: Path = Path("data")) -> None:
    cfg, nets, _ = load_networks(checkpoint)
    g, v = nets["G"].eval(), nets["V"].eval()
    train = train_pool(cfg, data_root)
    n_proc = len(load_split(build(DATA_PRESETS[cfg.data], data_root), "train")["voxels"])
    mu = encode(v, voxels_input(train["voxels"]))
    attrs = binary_targets(train["attrs"], attribute_names())
    prior = fit_prior(mu, train["category"], attrs, n_proc)
    concepts = concept_vectors(mu, train["category"], attrs)
    samples = decode(g, np.stack([prior.sample(s) for s in range(200)]))
    named = decode(g, np.stack([concepts[c] for c in CATEGORY_NAMES]))
    t = np.linspace(0, 1, 8)[:, None]
    walk = decode(g, ((1 - t) * concepts["chair"] + t * concepts["table"]).astype(np.float32))
    # the service's default walk (slerp), as the evaluation's concept_walks draws it
    pairs = [(a, b) for i, a in enumerate(CATEGORY_NAMES) for b in CATEGORY_NAMES[i + 1 :]]
    inner = [slerp(concepts[a], concepts[b], t[1:-1, 0]) for a, b in pairs]
    walks = decode(g, np.concatenate(inner))  # 36 walks x 6 inner frames
    for name, probs in (("samples", samples), ("concepts", named), ("walks", walks)):
        share = single_piece_share(probs, 0.5)
        print(name, {k: round(share[k], 3) for k in KEYS})
    if cfg.real_fraction > 0:
        gt = load_real(real_dataset_for(cfg, data_root), "test")["voxels"].astype(bool)
        rt = decode(g, encode(v, voxels_input(gt))) > 0.5
        f = max(1, gt.shape[1] // 32)
        print(
            f"real test round trip: IoU {iou(rt, gt).mean():.3f}, pooled to 32^3 "
            f"{iou(pool(rt, f), pool(gt, f)).mean():.3f}, thin-part recall "
            f"{np.nanmean(thin_part_recall(rt, gt)):.3f}"
        )
    grids = [*samples[:24], *named, *walk]
    labels = [""] * 24 + [f"concept {c}" for c in CATEGORY_NAMES] + ["walk"] * 8
    save_png(tile([render_grid(p, size=112) for p in grids], 8, labels), out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
