"""Bundle preview PNGs from a trained model: random samples, an interpolation strip, an
arithmetic example and reconstructions (input | output). Headless: numpy/scipy ray-marching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from app.latents import MixturePrior
from training.data.pictures import render_grid, save_png, tile
from training.data.shapes import CATEGORY_NAMES
from training.evaluation.common import decode, encode, service_codes
from training.export.directions import ANY
from training.models.networks import images_to_input


def _pick_arithmetic(concepts: dict[str, np.ndarray]) -> tuple[str, str, str] | None:
    """ "chair.has_armrests=1" - "chair.has_armrests=0" + "sofa.has_armrests=0" when present."""
    for attr in ("has_armrests", "has_legs", "pedestal_base"):
        cats = [c for c in CATEGORY_NAMES if f"{c}.{attr}=1" in concepts]
        if len(cats) >= 2:
            a, b = cats[0], cats[1]
            return f"{a}.{attr}=1", f"{a}.{attr}=0", f"{b}.{attr}=0"
    return None


def write_previews(
    nets: dict[str, nn.Module],
    concepts: dict[str, np.ndarray],
    prior: MixturePrior,
    test: dict,
    out: Path,
    *,
    threshold: float,
    image_threshold: float | None = None,
    size: int = 128,
    seed: int = 0,
    real_test: dict | None = None,
    directions: list | None = None,
    bank_categories: np.ndarray | None = None,
) -> list[Path]:
    """-> paths of the PNGs written under ``out``. Shapes from photos are answered and drawn
    at ``image_threshold`` (default: ``threshold``) as /v1/reconstruct serves them
    (``bank_categories``: a prototype encoder's code categories,
    training/evaluation/common.py)."""
    t_img = threshold if image_threshold is None else image_threshold
    g, e = nets["G"], nets["E"]
    rng = np.random.default_rng(seed)
    paths = []
    # 1. random samples from the bundle's prior, and with source "real" (around the real train
    # models' codes) when it has kernels for them
    sources = {"any": "samples.png", **({"real": "samples_real.png"} if prior.has_kernels else {})}
    for source, name in sources.items():
        seeds = rng.integers(0, 2**62, 12)
        z = np.stack([prior.sample(int(s), source=source) for s in seeds])
        imgs = [render_grid(p, threshold=threshold, size=size) for p in decode(g, z)]
        paths.append(save_png(tile(imgs, 6), out / name))
    # 2. category concepts (mean latent of held-out exemplars)
    cats = [c for c in CATEGORY_NAMES if c in concepts]
    probs = decode(g, np.stack([concepts[c] for c in cats]))
    imgs = [render_grid(p, threshold=threshold, size=size) for p in probs]
    paths.append(save_png(tile(imgs, len(imgs), cats), out / "concepts.png"))
    # 3. interpolation between two category concepts
    a, b = concepts[cats[0]], concepts[cats[2 % len(cats)]]
    w = np.linspace(0, 1, 8)[:, None]
    imgs = [render_grid(p, threshold=threshold, size=size) for p in decode(g, (1 - w) * a + w * b)]
    paths.append(save_png(tile(imgs, 8), out / "interpolation.png"))
    # 4. arithmetic: A - B + C = result
    terms = _pick_arithmetic(concepts)
    if terms:
        zs = [concepts[t] for t in terms]
        probs = decode(g, np.stack([*zs, zs[0] - zs[1] + zs[2]]))
        labels = [terms[0], f"- {terms[1]}", f"+ {terms[2]}", "= result"]
        imgs = [render_grid(p, threshold=threshold, size=size) for p in probs]
        paths.append(save_png(tile(imgs, 4, labels), out / "arithmetic.png"))
    # 5. reconstructions: one held-out render per category, input | output
    idx = [int(np.nonzero(test["category"] == i)[0][0]) for i in range(len(CATEGORY_NAMES))]
    views = torch.from_numpy(test["images"][idx, 0])
    probs = decode(g, service_codes(e, images_to_input(views).numpy(), bank_categories))
    pairs = []
    for img, p in zip(test["images"][idx, 0], probs, strict=True):
        photo = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
        pairs += [photo, render_grid(p, threshold=t_img, size=size)]
    paths.append(save_png(tile(pairs, 6), out / "reconstructions.png"))
    if directions:
        paths.append(_direction_preview(g, concepts, directions, out, threshold, size))
    if real_test is not None:
        paths += _real_previews(
            nets,
            real_test,
            out,
            threshold=threshold,
            image_threshold=t_img,
            size=size,
            bank_categories=bank_categories,
        )
    return paths


def _real_previews(
    nets: dict[str, nn.Module],
    real: dict,
    out: Path,
    *,
    threshold: float,
    image_threshold: float,
    size: int,
    bank_categories: np.ndarray | None,
) -> list[Path]:
    """Real test models (never trained on): a held-out render on white and one on a photograph
    -> the service's upload path -> G; and the model's voxels -> V -> G, then fitted as
    /v1/encode does by default (mesh round trip). The first test model of each category."""
    from app.fitting import DEFAULT_FIT_STEPS
    from training.evaluation.real import fit_latents, service_inputs

    g, e, v = nets["G"], nets["E"], nets["V"]
    idx = [int(np.nonzero(real["category"] == i)[0][0]) for i in range(len(CATEGORY_NAMES))
           if (real["category"] == i).any()]  # fmt: skip
    kinds = real["background"]
    rows, labels = [], []
    for i in idx:
        white = int(np.nonzero(kinds[i] == "white")[0][0])
        photo = int(np.nonzero(kinds[i] == "photo")[0][0])
        shots = real["images"][i, [white, photo]]
        probs = decode(g, service_codes(e, service_inputs(shots, nets.get("S")), bank_categories))
        truth = real["voxels"][i].astype(np.float32)
        code = encode(v, truth[None, None])
        fitted = fit_latents(g, code, truth[None], (DEFAULT_FIT_STEPS,))[DEFAULT_FIT_STEPS]
        round_trip = decode(g, fitted)[0]
        big = [np.asarray(Image.fromarray(s).resize((size, size), Image.BICUBIC)) for s in shots]
        rows += [big[0], render_grid(probs[0], threshold=image_threshold, size=size), big[1],
                 render_grid(probs[1], threshold=image_threshold, size=size),
                 render_grid(truth, size=size), render_grid(round_trip, threshold=threshold,
                                                            size=size)]  # fmt: skip
        name = CATEGORY_NAMES[int(real["category"][i])]
        labels += [f"{name}: photo", "-> shape", "photo", "-> shape", "its voxels", "-> encode"]
    return [save_png(tile(rows, 6, labels), out / "real_test.png")]


DIRECTION_AMOUNTS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # in units of each direction's range end


def _direction_preview(g, concepts, directions, out: Path, threshold: float, size: int) -> Path:
    """Every discovered direction and each category's first binary one: the category's concept
    moved to -high .. +high along it (the middle column is the concept itself); directions for
    every category ("any", SeFa) move the first category's concept."""
    rows, labels = [], []
    shown = [d for d in directions if d.kind == "discovered"]
    for cat in CATEGORY_NAMES:
        first = next((d for d in directions if d.category == cat and d.kind == "binary"), None)
        shown += [first] if first else []
    # directions for every category ("any") are shown on the first category's concept
    base = {d.category: CATEGORY_NAMES[0] if d.category == ANY else d.category for d in shown}
    shown.sort(key=lambda d: (CATEGORY_NAMES.index(base[d.category]), d.category != ANY,
                              d.kind != "binary", d.name))  # fmt: skip
    small = max(64, size // 2)
    for d in shown:
        if base[d.category] not in concepts:
            continue
        amounts = np.asarray(DIRECTION_AMOUNTS) * d.high
        z = concepts[base[d.category]] + np.outer(amounts, d.vector)
        rows += [render_grid(p, threshold=threshold, size=small) for p in decode(g, z)]
        labels += [d.name, *(f"{a * d.high:+.1f}" for a in DIRECTION_AMOUNTS[1:])]
    # two directions a row
    return save_png(tile(rows, 2 * len(DIRECTION_AMOUNTS), labels), out / "directions.png")
