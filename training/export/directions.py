"""Edit directions in latent space, fitted at export from the train split's own labels, so they
follow the model whenever it is retrained (served by GET /v1/directions and POST /v1/edit).

1. supervised, per category and attribute, on voxel-encoder codes of train shapes:
   - binary ("chair.has_armrests"): mean code with the attribute minus mean code without;
     amount +1 adds it to a shape without, -1 removes it;
   - continuous / discrete ("table.height"): mean code of the top quartile of the parameter
     minus the bottom quartile's; amount +1 is about that change in the parameter (its size in
     the parameter's units is in the meaning);
2. discovered: per category, the two principal directions of its codes (PCA, as GANSpace does
   for 2D GANs), amount 1 = one standard deviation; and for every category ("any"), the
   generator's own closed-form directions (SeFa, Shen & Zhou, CVPR 2021): the top eigenvectors
   of A A^T, A the first layer's weight [Z, C * 4^3] with its BatchNorm's per-channel scale
   folded in (a fixed linear map in eval mode), so the latent moves the first features most;
   amount 1 = one standard deviation of the train codes along it;
3. measured on test shapes (``direction_metrics``): binary edits judged flipped (and the
   category's other attributes judged unchanged), continuous edits whose measured extent moves
   monotonically (and how much the other two extents and the judged attributes move), and
   identity (IoU with the start) vs amount.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from app.overlap import iou
from training.data.shapes import CATEGORY_NAMES, all_attributes

AMOUNT_RANGE = 1.5  # supervised directions: amounts in [-1.5, 1.5]
PCA_RANGE = 3.0  # discovered: +-3 standard deviations
PCA_PER_CATEGORY = 2
SEFA_DIRECTIONS = 3
ANY = "any"  # the category of directions that apply to every shape
MIN_EXEMPLARS = 5  # per side of a supervised direction
IDENTITY_AMOUNTS = (0.25, 0.5, 1.0)
SLIDER_AMOUNTS = (-1.0, -0.5, 0.0, 0.5, 1.0)
# continuous parameters measured on decoded voxels as an occupied extent along an axis
# (0 = x, width; 1 = y, height); the others (seat height, back height, ...) are not measured
EXTENT_AXIS = {"height": 1, "width": 0, "wingspan": 0}


@dataclass(frozen=True)
class Direction:
    name: str  # "<category>.<attribute>" or "<category>.pc<k>"
    category: str
    kind: str  # binary | continuous | discrete | discovered
    low: float
    high: float
    meaning: str
    vector: list[float]  # [Z]


def sefa(first_weight: np.ndarray, bn_scale: np.ndarray, k: int) -> np.ndarray:
    """first_weight [Z, C, ...] (ConvTranspose3d's [in, out, k, k, k]), bn_scale [C] ->
    [k, Z] unit directions, largest eigenvalue of A A^T first, sign fixed (largest |entry| > 0)."""
    a = first_weight * bn_scale[None, :, None, None, None]
    a = a.reshape(len(a), -1).astype(np.float64)
    _, vecs = np.linalg.eigh(a @ a.T)  # ascending eigenvalues
    top = vecs[:, ::-1][:, :k].T
    signs = np.sign(top[np.arange(k), np.abs(top).argmax(1)])
    return top * signs[:, None]


def fit_directions(
    mu: np.ndarray,
    cats: np.ndarray,
    attrs: np.ndarray,
    attr_names: list[str],
    *,
    sefa_basis: np.ndarray | None = None,
) -> list[Direction]:
    """mu [N, Z] codes, cats [N] int, attrs [N, A] (NaN = not applicable) -> directions;
    ``sefa_basis`` [k, Z] unit vectors (:func:`sefa`) adds the generator's own directions."""
    out: list[Direction] = []
    for attr, kind, categories in all_attributes():
        col = attrs[:, attr_names.index(attr)]
        for cat in categories:
            sel = (cats == CATEGORY_NAMES.index(cat)) & ~np.isnan(col)
            y, z = col[sel], mu[sel]
            if kind == "binary":
                on, off = y == 1.0, y == 0.0
                if on.sum() < MIN_EXEMPLARS or off.sum() < MIN_EXEMPLARS:
                    continue
                vec = z[on].mean(0) - z[off].mean(0)
                what = attr.replace("_", " ")
                meaning = f"+1 gives a {cat} {what}, -1 takes it away"
            else:
                lo, hi = np.quantile(y, [0.25, 0.75]) if len(y) else (0.0, 0.0)
                low, high = y <= lo, y >= hi
                if hi <= lo or low.sum() < MIN_EXEMPLARS or high.sum() < MIN_EXEMPLARS:
                    continue
                vec = z[high].mean(0) - z[low].mean(0)
                delta = float(y[high].mean() - y[low].mean())
                what = attr.replace("_", " ")
                meaning = f"+1 raises a {cat}'s {what} by about {delta:.2f} (shape units)"
            out.append(Direction(f"{cat}.{attr}", cat, kind, -AMOUNT_RANGE, AMOUNT_RANGE,
                                 meaning, vec.astype(np.float32).tolist()))  # fmt: skip
    for ci, cat in enumerate(CATEGORY_NAMES):
        z = mu[cats == ci]
        if len(z) < 2 * PCA_PER_CATEGORY:
            continue
        z = z - z.mean(0)
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        for k in range(PCA_PER_CATEGORY):
            std = s[k] / np.sqrt(len(z) - 1)
            share = s[k] ** 2 / (s**2).sum()
            meaning = (f"the {cat} codes' principal direction {k + 1} "
                       f"({share:.0%} of their variance); 1 = one standard deviation")  # fmt: skip
            out.append(Direction(f"{cat}.pc{k + 1}", cat, "discovered", -PCA_RANGE, PCA_RANGE,
                                 meaning, (vt[k] * std).astype(np.float32).tolist()))  # fmt: skip
    for k, unit in enumerate([] if sefa_basis is None else sefa_basis):
        std = float((mu @ unit).std())
        meaning = (f"the generator's closed-form direction {k + 1} (SeFa): what moves its first "
                   "features most; 1 = one standard deviation of the codes along it")  # fmt: skip
        out.append(Direction(f"{ANY}.sefa{k + 1}", ANY, "discovered", -PCA_RANGE, PCA_RANGE,
                             meaning, (unit * std).astype(np.float32).tolist()))  # fmt: skip
    return out


def save_directions(directions: list[Direction], path: Path) -> Path:
    path.write_text(json.dumps({"directions": [asdict(d) for d in directions]}))
    return path


def _extent(vox: np.ndarray, axis: int) -> np.ndarray:
    """vox [N, R, R, R] bool -> occupied extent along ``axis`` in cells [N] (0 when empty)."""
    other = tuple(a for a in (1, 2, 3) if a != axis + 1)
    filled = vox.any(axis=other)  # [N, R]
    first = filled.argmax(1)
    last = filled.shape[1] - 1 - filled[:, ::-1].argmax(1)
    return np.where(filled.any(1), last - first + 1, 0)


def direction_metrics(
    directions: list[Direction],
    *,
    test_mu: np.ndarray,
    test_cats: np.ndarray,
    test_attrs: np.ndarray,
    attr_names: list[str],
    decode,  # z [N, Z] -> occupancy probabilities [N, R, R, R]
    judge,  # judge.predict(vox) -> (category probs, binary attribute probs)
    binary_names: list[str],
    threshold: float,
) -> dict:
    """Step 3, on test shapes of each direction's category."""
    flips, monotonic, identity = {}, {}, {a: [] for a in IDENTITY_AMOUNTS}
    others_kept, cont_kept, cont_extents = {}, {}, {}
    for d in directions:
        ci = -1 if d.category == ANY else CATEGORY_NAMES.index(d.category)
        vec = np.asarray(d.vector, np.float32)
        start = test_mu if ci < 0 else test_mu[test_cats == ci]
        if not len(start):
            continue
        base = decode(start) > threshold
        for a in IDENTITY_AMOUNTS:
            edited = decode(start + a * vec) > threshold
            identity[a].append(float(iou(base, edited).mean()))
        attr = d.name.split(".", 1)[1]
        if d.kind == "binary":
            col = test_attrs[test_cats == ci, attr_names.index(attr)]
            ai = binary_names.index(attr)
            # the category's other binary attributes, judged before and after the edit
            others = [binary_names.index(n) for n, kind, cats in all_attributes()
                      if kind == "binary" and d.category in cats and n != attr]  # fmt: skip
            _, before = judge.predict(base)
            done, kept = [], []
            for sign, has in ((1.0, 0.0), (-1.0, 1.0)):
                sel = col == has
                if sel.any():
                    _, probs = judge.predict(decode(start[sel] + sign * vec) > threshold)
                    done += list((probs[:, ai] > 0.5) != bool(has))
                    if others:
                        same = (probs[:, others] > 0.5) == (before[sel][:, others] > 0.5)
                        kept += list(same.mean(1))
            if done:
                flips[d.name] = float(np.mean(done))
            if kept:
                others_kept[d.name] = float(np.mean(kept))
        elif d.kind != "discovered" and attr in EXTENT_AXIS:
            ext = np.stack([_extent(decode(start + a * vec) > threshold, EXTENT_AXIS[attr])
                            for a in SLIDER_AMOUNTS], 1)  # fmt: skip
            steps = np.diff(ext, axis=1)
            ok = (steps >= 0).all(1) & (ext[:, -1] > ext[:, 0])
            monotonic[d.name] = float(ok.mean())
            # what else moves at amount +1: the other two extents (relative change) and the
            # category's judged binary attributes
            end = decode(start + vec) > threshold
            change = [np.abs(_extent(end, ax) - _extent(base, ax)) / np.maximum(
                _extent(base, ax), 1) for ax in (0, 1, 2) if ax != EXTENT_AXIS[attr]]  # fmt: skip
            cont_extents[d.name] = float(np.mean(change))
            judged = [binary_names.index(n) for n, kind, cats in all_attributes()
                      if kind == "binary" and d.category in cats]  # fmt: skip
            if judged:
                _, before = judge.predict(base)
                _, after = judge.predict(end)
                same = (after[:, judged] > 0.5) == (before[:, judged] > 0.5)
                cont_kept[d.name] = float(same.mean())
    return {
        "count": len(directions),
        "binary_flip_rate": flips,
        # share of the category's other binary attributes whose judged value an edit keeps
        "binary_others_kept": others_kept,
        "continuous_monotonic_share": monotonic,
        # at amount +1: mean relative change of the two extents the slider does not measure,
        # and the share of the category's judged binary attributes kept
        "continuous_other_extents_change": cont_extents,
        "continuous_others_kept": cont_kept,
        "identity_iou_vs_amount": {str(a): float(np.mean(v)) for a, v in identity.items() if v},
    }


def fit_and_measure(
    checkpoint: Path, *, data_root: Path, threshold: float, judge_steps: int = 400, seed: int = 0
) -> tuple[list[Direction], dict]:
    """Steps 1-3 for a trained checkpoint (the export calls this): fitted on procedural and real
    train codes (real models carry no attributes: they shape only the discovered directions),
    measured on the procedural test split with the evaluation's judge (same data, same seed)."""
    from training.data.procedural import DATA_PRESETS, attribute_names, build, load_split
    from training.engine.checkpoint import load_networks
    from training.evaluation.common import decode, encode, judge_for, train_pool, voxels_input
    from training.models.judge import BINARY

    cfg, nets, _ = load_networks(checkpoint)
    folder = build(DATA_PRESETS[cfg.data], data_root)
    test = load_split(folder, "test")
    pool = train_pool(cfg, data_root)
    names = attribute_names()
    mu = encode(nets["V"], voxels_input(pool["voxels"]))
    conv, bn = nets["G"].net[0], nets["G"].net[1]  # the first layer: 1^3 -> 4^3, and its norm
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().cpu().numpy()
    basis = sefa(conv.weight.detach().cpu().numpy(), scale, SEFA_DIRECTIONS)
    directions = fit_directions(mu, pool["category"], pool["attrs"], names, sefa_basis=basis)
    judge = judge_for(cfg, data_root, steps=judge_steps, seed=seed)  # the evaluation's
    metrics = direction_metrics(
        directions,
        test_mu=encode(nets["V"], voxels_input(test["voxels"])),
        test_cats=test["category"],
        test_attrs=test["attrs"],
        attr_names=names,
        decode=lambda z: decode(nets["G"], z),
        judge=judge,
        binary_names=BINARY,
        threshold=threshold,
    )
    return directions, metrics
