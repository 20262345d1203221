"""Evaluation on the held-out split, and concept vectors from the train split.

    python -m training evaluate --run-dir runs/cpu      -> runs/cpu/metrics.json

Protocols (all on voxels binarised at a threshold):
- reconstruction: test image (view 0) -> E -> its answer as /v1/reconstruct gives it without a
  hint (a prototype encoder: the blend of the guessed category's codes) -> G; IoU with the
  true grid, per category and mean, at 0.5 and at the threshold that maximises mean IoU on the
  *validation* splits
  (procedural and, when the run trained on them, real models' held-out renders, equally).
- generation: as many samples as test shapes from the bundle's prior: a Gaussian mixture
  fitted to the voxel-encoder codes of the *train* split (a component per category and binary
  attribute combination; N(0, I) is reported too); distance d = 1 - IoU;
  MMD = mean over test shapes of the distance to the nearest sample; COV = share of test shapes
  that are the nearest neighbour of at least one sample; 1-NNA = leave-one-out 1-nearest-
  neighbour accuracy on samples + test shapes labelled by origin (50% is ideal).
- arithmetic: test shapes lacking a binary attribute + that attribute's direction within their
  category ("chair.has_armrests=1" - "chair.has_armrests=0", the paper's "chair with arms -
  chair without arms + ...") -> judged to have it and still of their category. The direction
  averaged over categories (concept "has_armrests") is reported too.
- interpolation: 8 frames between the voxel-encoder latents of random test pairs; a frame is
  valid when non-empty and the judge gives some category >= 0.5; smoothness = the largest
  1 - IoU between consecutive frames. Also the walks between every two category concepts as
  the service draws them (slerp): inner frames in one piece, and judged as an endpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from app.latents import MixturePrior, slerp
from training.data.procedural import DATA_PRESETS, attribute_names, build, load_split
from training.data.real_set import real_dataset_for, wide_photos
from training.data.shapes import CATEGORY_NAMES
from training.engine.checkpoint import load_networks
from training.engine.segmenter import segmenter_summary
from training.evaluation.common import (
    decode,
    encode,
    generation_metrics,
    iou,
    judge_for,
    mean_metrics,
    prototype_categories,
    real_splits,
    service_codes,
    voxels_input,
)
from training.evaluation.latent_space import concept_vectors, fit_prior, within_category
from training.evaluation.real import (
    evaluate_real,
    example_seeds,
    readme_arithmetic,
    service_inputs,
    single_piece_share,
)
from training.models.judge import BINARY, binary_targets, judge_accuracy
from training.models.networks import images_to_input

log = logging.getLogger(__name__)
THRESHOLDS = np.round(np.arange(0.2, 0.75, 0.05), 2)
INTERP_PAIRS, INTERP_FRAMES = 24, 8
# generation metrics: the mean over this many draws of as many samples as test shapes (one
# draw of 432 moved 1-NNA by +-2 points from seed to seed)
GENERATION_DRAWS = 3


def evaluate(
    checkpoint: Path, *, data_root: Path = Path("data"), seed: int = 0, judge_steps: int = 400
) -> tuple[dict, dict[str, np.ndarray], MixturePrior]:
    """-> (metrics, concept vectors, sampling prior). Deterministic for a checkpoint and seed."""
    cfg, nets, state = load_networks(checkpoint)
    folder = build(DATA_PRESETS[cfg.data], data_root)
    train, val, test = (load_split(folder, s) for s in ("train", "val", "test"))
    real = real_splits(cfg, data_root)
    rng = np.random.default_rng(seed)
    g, v = nets["G"], nets["V"]
    bank_cats = prototype_categories(cfg, nets["E"], data_root)
    # 1. the shipped latent space: concept vectors and the sampling prior, from the voxel-encoder
    # codes of train exemplars, procedural and real (real models carry a category, no attributes)
    pool = {
        k: np.concatenate([train[k], real["train"][k]]) for k in ("voxels", "category", "attrs")
    }
    train_mu = encode(v, voxels_input(pool["voxels"]))
    train_attrs = binary_targets(pool["attrs"], attribute_names())
    concepts = concept_vectors(train_mu, pool["category"], train_attrs)
    prior = fit_prior(train_mu, pool["category"], train_attrs, len(train["voxels"]))
    # 2. thresholds, chosen on validation; single-view reconstruction as the service answers
    test_p, image_best, best = _thresholds(nets, val, test, real["val"], bank_cats)
    test_gt = test["voxels"].astype(bool)
    per_cat = {}
    for t_name, t in (("0.5", 0.5), ("best", image_best)):
        scores = iou(test_p > t, test_gt)
        per_cat[t_name] = {
            c: float(scores[test["category"] == i].mean()) for i, c in enumerate(CATEGORY_NAMES)
        }
    ae = iou(decode(g, encode(v, voxels_input(test["voxels"]))) > best, test_gt)
    # 3. generation quality of the prior's samples vs the test shapes
    samples, gen, gen_std = _generation(g, prior, test_gt, best, cfg.model.z_dim, rng)
    # 4. the judge, then what it judges: samples, arithmetic, walks
    judge = judge_for(cfg, data_root, steps=judge_steps, seed=seed)
    test_attrs = binary_targets(test["attrs"], attribute_names())
    judge_acc = judge_accuracy(judge, test["voxels"], test["category"], test_attrs)
    pc, _ = judge.predict(samples)
    test_mu = encode(v, voxels_input(test["voxels"]))
    arithmetic, arithmetic_global = _arithmetic(g, judge, concepts, test, test_mu, test_attrs, best)
    interpolation = _interpolation(g, judge, test_mu, best, rng)
    interpolation["concept_walks"] = _concept_walks(g, judge, concepts, best)
    # 5. real models, and the README's examples
    common = dict(nets=nets, judge=judge, threshold=best)
    metrics_real = (
        evaluate_real(
            real_test=real["test"],
            real_train_voxels=real["train"]["voxels"],
            prior=prior,
            seed=seed,
            image_threshold=image_best,
            bank_categories=bank_cats,
            wide=wide_photos(real_dataset_for(cfg, data_root), "test")["images"]
            if "S" in nets
            else None,
            **common,
        )
        if len(real["test"]["voxels"])
        else None
    )
    metrics = {
        "checkpoint": {"step": state["step"], "train_seconds": round(state["seconds"], 1)},
        "segmenter": segmenter_summary(Path(checkpoint).parent) if "S" in nets else None,
        "real": metrics_real,
        "readme_arithmetic": readme_arithmetic(
            test=test, concepts=concepts, attrs=test_attrs, **common
        ),
        "example_seeds": example_seeds(prior=prior, concepts=concepts, **common),
        "threshold": best,
        "image_threshold": image_best,
        "reconstruction_iou": {
            "mean_at_0.5": float(np.mean(list(per_cat["0.5"].values()))),
            "mean_at_best": float(np.mean(list(per_cat["best"].values()))),
            "per_category_at_0.5": per_cat["0.5"],
            "per_category_at_best": per_cat["best"],
        },
        "voxel_autoencoder_iou": float(ae.mean()),
        "generation_standard_normal": gen_std,
        "generation": {
            **gen,
            "prior": "gaussian mixture fitted to the procedural train codes + kernels around "
            "the real ones",
            "distance": "1 - IoU",
            "samples": len(samples),
            "draws": GENERATION_DRAWS,
            "references": len(test_gt),
        },
        "judge": judge_acc,
        "sample_category_confidence": float(pc.max(1).mean()),
        "sample_category_share": {
            c: float(np.mean(pc.argmax(1) == i)) for i, c in enumerate(CATEGORY_NAMES)
        },
        "arithmetic_success": arithmetic,
        "arithmetic_success_global_direction": arithmetic_global,
        "interpolation": interpolation,
    }
    return metrics, concepts, prior


def _thresholds(
    nets: dict, val: dict, test: dict, real_val: dict, bank_cats: np.ndarray | None
) -> tuple[np.ndarray, float, float]:
    """-> (the test split's single-view answers [N, R, R, R] as the service gives them, the
    image threshold, the threshold for everything else), both chosen on validation."""
    g, e, v = nets["G"], nets["E"], nets["V"]

    def recon(split: dict) -> np.ndarray:
        x = images_to_input(torch.from_numpy(split["images"][:, 0])).numpy()
        return decode(g, service_codes(e, x, bank_cats))

    val_p, test_p = recon(val), recon(test)
    val_gt = val["voxels"].astype(bool)
    # the image threshold serves procedural and real inputs alike: chosen on both validation
    # splits (real: every held-out render, through the service's upload path), weighted equally
    if len(real_val["voxels"]):
        imgs = real_val["images"].reshape(-1, *real_val["images"].shape[2:])
        real_p = decode(g, service_codes(e, service_inputs(imgs, nets.get("S")), bank_cats))
        real_gt = np.repeat(real_val["voxels"].astype(bool), real_val["images"].shape[1], axis=0)
    else:
        real_p = real_gt = None

    def val_score(t: float) -> float:
        score = float(iou(val_p > t, val_gt).mean())
        if real_p is None:
            return score
        return 0.5 * score + 0.5 * float(iou(real_p > t, real_gt).mean())

    image_best = float(max(THRESHOLDS, key=val_score))
    # the threshold for everything else (samples, walks, arithmetic, /v1/encode): chosen on the
    # voxel round trip V -> G of both validation splits. (One threshold for both paths let a
    # prototype-blending image encoder, whose answers are softer, pull it down to 0.2 and cost
    # the samples and the mesh round trip.)
    val_vox = np.concatenate([val["voxels"], real_val["voxels"]]).astype(bool)
    val_rt = decode(g, encode(v, voxels_input(val_vox.astype(np.uint8))))
    best = float(max(THRESHOLDS, key=lambda t: float(iou(val_rt > t, val_vox).mean())))
    return test_p, image_best, best


def _generation(
    g, prior: MixturePrior, test_gt: np.ndarray, threshold: float, z_dim: int, rng
) -> tuple[np.ndarray, dict, dict]:
    """-> (the first draw of samples [N, R, R, R] bool, the prior's generation metrics averaged
    over GENERATION_DRAWS draws, those of N(0, I)); N = the test shapes' count."""
    z = np.stack([prior.sample(int(s)) for s in rng.integers(0, 2**62, len(test_gt))])
    samples = decode(g, z) > threshold
    draws = [generation_metrics(samples, test_gt)]
    for _ in range(GENERATION_DRAWS - 1):  # more draws of the same size: a steadier estimate
        z_more = np.stack([prior.sample(int(s)) for s in rng.integers(0, 2**62, len(test_gt))])
        draws.append(generation_metrics(decode(g, z_more) > threshold, test_gt))
    z_std = rng.standard_normal((len(test_gt), z_dim)).astype(np.float32)
    return samples, mean_metrics(draws), generation_metrics(decode(g, z_std) > threshold, test_gt)


def _arithmetic(
    g, judge, concepts: dict, test: dict, test_mu: np.ndarray, test_attrs: np.ndarray, best
) -> tuple[dict[str, float], dict[str, float]]:
    """Test shapes lacking a binary attribute + its direction -> the share judged to have it
    and still of their category: with the direction within their category, and averaged."""
    arithmetic, arithmetic_global = {}, {}
    for ai, attr in enumerate(BINARY):
        lack = np.nonzero(test_attrs[:, ai] == 0.0)[0]
        if attr not in concepts or len(lack) == 0:
            continue
        within = np.stack([within_category(concepts, c, attr) for c in test["category"][lack]])
        for result, direction in ((arithmetic, within), (arithmetic_global, concepts[attr])):
            out = decode(g, test_mu[lack] + direction) > best
            jc, ja = judge.predict(out)
            ok = (ja[:, ai] > 0.5) & (jc.argmax(1) == test["category"][lack])
            result[attr] = float(ok.mean())
    return arithmetic, arithmetic_global


def _interpolation(g, judge, test_mu: np.ndarray, best: float, rng) -> dict:
    """Walks between random test pairs: the share of valid frames and the largest jump."""
    pairs = rng.integers(0, len(test_mu), (INTERP_PAIRS, 2))
    w = np.linspace(0, 1, INTERP_FRAMES)[:, None]
    valid, jumps = [], []
    for a, b in pairs:
        frames = decode(g, (1 - w) * test_mu[a] + w * test_mu[b]) > best
        fc, _ = judge.predict(frames)
        valid += list(frames.reshape(len(frames), -1).any(1) & (fc.max(1) >= 0.5))
        jumps.append(float(1 - iou(frames[1:], frames[:-1]).min()))
    return {
        "valid_frames": float(np.mean(valid)),
        "mean_largest_jump": float(np.mean(jumps)),
        "pairs": INTERP_PAIRS,
        "frames": INTERP_FRAMES,
    }


def _concept_walks(g, judge, concepts: dict, best: float) -> dict:
    """The service's default walk (slerp, 8 frames) between every two category concepts: the
    inner frames' share in one piece after the default clean-up, and the share judged as one
    of the walk's two categories."""
    names = [c for c in CATEGORY_NAMES if c in concepts]
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    t = np.linspace(0, 1, INTERP_FRAMES)[1:-1]
    z = [slerp(concepts[names[i]], concepts[names[j]], t) for i, j in pairs]
    probs = decode(g, np.concatenate(z)) if z else np.zeros((0, 1, 1, 1), np.float32)
    fc, _ = judge.predict(probs > best)
    guess = fc.argmax(1).reshape(len(pairs), len(t))
    ends = np.array([[CATEGORY_NAMES.index(names[i]), CATEGORY_NAMES.index(names[j])]
                     for i, j in pairs]).reshape(-1, 2, 1)  # fmt: skip
    return {
        "walks": len(pairs),
        "inner_frames": len(t),
        "single_piece_after_cleanup": single_piece_share(probs, best)["single_piece_after_cleanup"],
        "judged_an_endpoint": float(((guess == ends[:, 0]) | (guess == ends[:, 1])).mean()),
    }


def write_metrics(metrics: dict, path: Path) -> Path:
    path.write_text(json.dumps(metrics, indent=2) + "\n")
    return path
