"""The latent space the bundle ships, fitted from the train split's voxel-encoder codes (never
test shapes): named concept vectors, and the sampling prior (a mixture over the procedural
codes and a kernel around each real model's code). Fitted with the evaluation, which measures
that prior's samples; the export writes both into the bundle (concepts.npz, prior.npz)."""

from __future__ import annotations

import numpy as np

from app.latents import MixturePrior, fit_mixture, with_kernels
from training.data.shapes import CATEGORY_NAMES
from training.models.judge import BINARY

# the real-model kernels' spread, in units of their category's per-dimension std: on the real
# validation models (bundle 3.5's networks), 0.3 gave 1-NNA 55% and 97.5% of samples in one
# piece, 0.6 gave 53% and 95.5%; 0 would only replay the train models
KERNEL_BANDWIDTH = 0.3


def concept_vectors(mu: np.ndarray, cats: np.ndarray, attrs: np.ndarray) -> dict[str, np.ndarray]:
    """Named latents from encoded exemplars: each category's train code nearest its mean (a
    real exemplar, so it decodes as a whole object: the mean itself decoded as a seat and back
    without legs, a table top without legs); each binary attribute's direction (mean over
    categories of mean-with minus mean-without); and per category the means with/without each
    binary attribute ("chair.has_armrests=1"), which arithmetic uses as differences."""
    out: dict[str, np.ndarray] = {}
    for ci, name in enumerate(CATEGORY_NAMES):
        if (cats == ci).any():
            codes = mu[cats == ci]
            out[name] = codes[np.argmin(((codes - codes.mean(0)) ** 2).sum(1))]
    for ai, attr in enumerate(BINARY):
        diffs = []
        for ci, name in enumerate(CATEGORY_NAMES):
            sel = cats == ci
            on, off = sel & (attrs[:, ai] == 1.0), sel & (attrs[:, ai] == 0.0)
            if on.any() and off.any():
                out[f"{name}.{attr}=1"], out[f"{name}.{attr}=0"] = mu[on].mean(0), mu[off].mean(0)
                diffs.append(mu[on].mean(0) - mu[off].mean(0))
        if diffs:
            out[attr] = np.mean(diffs, axis=0)
    return {k: v.astype(np.float32) for k, v in out.items()}


def within_category(concepts: dict[str, np.ndarray], cat: int, attr: str) -> np.ndarray:
    """The attribute's direction inside one category ("chair.has_armrests=1" minus "...=0"),
    or the cross-category direction when the category lacks either side."""
    on, off = (f"{CATEGORY_NAMES[cat]}.{attr}={v}" for v in (1, 0))
    return concepts[on] - concepts[off] if on in concepts else concepts[attr]


def prior_components(cats: np.ndarray, binary: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """One mixture component per (category, binary attributes) combination seen in the data:
    measured on the cpu run's VAE checkpoint, 60 such components gave COV 46% / 1-NNA 70% vs
    44% / 73% for one component per category. -> (labels [N], names [K])."""
    keys = [
        CATEGORY_NAMES[c]
        + "|"
        + ",".join(f"{a}={int(x)}" for a, x in zip(BINARY, row, strict=True) if not np.isnan(x))
        for c, row in zip(cats, binary, strict=True)
    ]
    names, labels = np.unique(keys, return_inverse=True)
    return labels, [str(n) for n in names]


def fit_prior(
    mu: np.ndarray, category: np.ndarray, binary: np.ndarray, n_procedural: int
) -> MixturePrior:
    """The sampling prior from train codes mu [N, Z] (procedural first, then real), their
    category [N] and binary attributes [N, len(BINARY)]: a mixture over the procedural codes,
    one component per (category, binary attributes) combination, and a kernel around each
    real model's code, weighted by their share of the codes."""
    n = n_procedural
    labels, names = prior_components(category[:n], binary[:n])
    prior = fit_mixture(mu[:n], labels, names)
    if len(mu) > n:
        prior = with_kernels(
            prior,
            mu[n:],
            [CATEGORY_NAMES[c] for c in category[n:]],
            bandwidth=KERNEL_BANDWIDTH,
            weight=(len(mu) - n) / len(mu),
        )
    return prior
