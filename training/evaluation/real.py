"""Evaluation on the real test split (models from Debian packages, never trained on), beside
the procedural numbers of training/evaluation/procedural.py. Protocols:

- single-view reconstruction from held-out renders (backgrounds and lights no training step
  saw): IoU with the model's voxels at the evaluation threshold, and whether the judge (a voxel
  classifier trained on the train split, procedural + real) puts the result in the model's
  category; reported separately for white/plain backgrounds and for photographs.
- mesh round trip: the model's voxels (made by app/voxelize.py, the voxeliser /v1/encode uses)
  -> voxel encoder -> generator, IoU with the input; then as /v1/encode answers by default:
  the code fitted by Adam steps on the generator's reconstruction loss (app/fitting.py, with
  the exported gradient module), and, for comparison, the older fixed-point refinement.
- samples: prior samples that are one face-connected piece after the service's default
  clean-up (app/meshing.clean_up), and whose default mesh (what a GLB request returns) is one
  piece, over SAMPLES_FOR_PIECES seeds.
- generation 1-NNA (d = 1 - IoU) against the real test shapes, of the default samples and of
  source "real" (kernels around the real train models' codes; also how close those samples
  stay to their nearest real train model, beside the same for the test models).
- the README's arithmetic example: procedural test sofas without armrests + ("chair with
  armrests" - "chair without"), judged to have armrests and still a sofa.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from app.bundle import ImageSpec
from app.fitting import DEFAULT_FIT_STEPS, DEFAULT_FIXED_POINT_STEPS, Adam, fixed_point_step
from app.images import SEGMENT_PASSES, ImageInputError, find_object
from app.latents import MixturePrior
from app.meshing import (
    DEFAULT_JOIN_LEVEL,
    DEFAULT_MIN_PART_FRACTION,
    MeshOptions,
    clean_up,
    count_parts,
    to_mesh,
)
from training.data.shapes import CATEGORY_NAMES
from training.evaluation.common import (
    category_mass,
    decode,
    encode,
    every_codes,
    generation_metrics,
    hinted_codes,
    iou,
    mean_metrics,
    pairwise_iou,
    service_codes,
)
from training.evaluation.thin import pool, thin_part_recall
from training.models.gradient import GeneratorGradientExport
from training.models.judge import BINARY, Judge

# prior samples drawn for the one-piece share (200 moved it by +-3 points from seed to seed)
# and, in sets of as many as there are test models, for the generation metrics (averaged)
SAMPLES_FOR_PIECES = 1000
FIT_STEPS_REPORTED = (10, 20, DEFAULT_FIT_STEPS, 80)
PLAIN_BACKGROUNDS = ("white", "plain")


@torch.no_grad()
def service_inputs(
    images: np.ndarray,
    segmenter: nn.Module | None = None,
    size: int | None = None,
    passes: int = SEGMENT_PASSES,
    refused: list[int] | None = None,
) -> np.ndarray:
    """[N, H, W, 3] uint8 photos -> [N, 3, S, S] float32 exactly as /v1/reconstruct prepares an
    upload (app/images.py find_object: object mask from the border colour, else from the
    ``segmenter`` when there is one, square crop at the training fill, normalised); S = ``size``
    (the encoder's input side), by default the photos' own; ``passes``: the segmenter's looks.
    A photo the service refuses with a 400 (one flat colour: in real data version 2, one render
    of an aircraft's beacon light, a file version 3 leaves out) gives zeros, and its index is
    appended to ``refused``."""
    spec = ImageSpec(size=size or images.shape[1])

    def segment(x: np.ndarray) -> np.ndarray:
        return torch.sigmoid(segmenter(torch.from_numpy(x[None])))[0, 0].numpy()

    out = np.zeros((len(images), 3, spec.size, spec.size), np.float32)
    cut_out = segment if segmenter else None
    for i, im in enumerate(images):
        try:
            out[i] = find_object(Image.fromarray(im), spec, cut_out, passes)[0]
        except ImageInputError:
            if refused is not None:
                refused.append(i)
    return out


def one_piece_meshes(probs: np.ndarray, threshold: float) -> np.ndarray:
    """probs [N, R, R, R] -> [N] bool: the service's default mesh of each is one piece."""
    meshes = [to_mesh(p, MeshOptions(threshold=threshold)) for p in probs]
    return np.array([m is not None and len(m.split(only_watertight=False)) == 1 for m in meshes])


def single_piece_share(probs: np.ndarray, threshold: float) -> dict[str, float]:
    """probs [N, R, R, R] -> share of shapes in one piece: as drawn, after the service's
    default clean-up (voxels), and as the default mesh (its connected surfaces)."""
    before = [count_parts(p >= threshold) for p in probs]
    after = [count_parts(clean_up(p, threshold) >= threshold) for p in probs]
    return {
        "single_piece_raw": float(np.mean(np.array(before) == 1)),
        "single_piece_after_cleanup": float(np.mean(np.array(after) == 1)),
        "single_piece_mesh": float(one_piece_meshes(probs, threshold).mean()),
        "mean_parts_raw": float(np.mean(before)),
        "min_part_fraction": DEFAULT_MIN_PART_FRACTION,
        "join_level": DEFAULT_JOIN_LEVEL,
        "samples": len(probs),
    }


@torch.no_grad()
def fit_latents(
    g: nn.Module, z: np.ndarray, targets: np.ndarray, steps: tuple[int, ...], batch: int = 64
) -> dict[int, np.ndarray]:
    """/v1/encode's fitting: Adam steps on each code against its target grid [N, R, R, R],
    with the gradient graph the bundle exports -> {steps: fitted codes} for each of ``steps``."""
    grad_of = GeneratorGradientExport(g).eval()
    out: dict[int, list[np.ndarray]] = {s: [] for s in steps}
    for i in range(0, len(z), batch):
        zi, target = z[i : i + batch], torch.from_numpy(targets[i : i + batch].astype(np.float32))
        adam = Adam()
        for step in range(1, max(steps) + 1):
            grad, _ = grad_of(torch.from_numpy(zi), target)
            zi = adam.step(zi, grad.numpy())
            if step in out:
                out[step].append(zi)
    return {s: np.concatenate(v) for s, v in out.items()}


def _generation_vs(samples: np.ndarray, refs: np.ndarray) -> dict[str, float]:
    """Generation metrics of the samples in sets of len(refs) (whole sets only), averaged."""
    n = len(refs)
    sets = [samples[i : i + n] for i in range(0, len(samples) - n + 1, n)]
    return {**mean_metrics([generation_metrics(s, refs) for s in sets]), "sets": len(sets)}


def evaluate_real(
    *,
    real_test: dict[str, np.ndarray],
    nets: dict[str, nn.Module],
    judge: Judge,
    prior: MixturePrior,
    threshold: float,
    image_threshold: float | None = None,
    seed: int = 0,
    bank_categories: np.ndarray | None = None,
    real_train_voxels: np.ndarray | None = None,
    wide: np.ndarray | None = None,
    samples: int = SAMPLES_FOR_PIECES,
) -> dict:
    """Metrics on the real test split (see the module doc); ``wide``: photographs of the same
    models that nobody cropped to the object [N, V', H, W, 3] (training/data/real_set.py,
    wide_photos); ``samples``: prior samples drawn for the one-piece share and generation."""
    g, v = nets["G"], nets["V"]
    gt = real_test["voxels"].astype(bool)
    cats = real_test["category"].astype(int)
    n, views = real_test["images"].shape[:2]
    t_img = threshold if image_threshold is None else image_threshold
    # 1. single-view reconstruction from every held-out render, through the service's own
    # upload path (object found and framed by app/images.py), as a user's photo would go
    recon = _single_view(real_test, nets, judge, t_img, bank_categories, wide)
    # 2. mesh round trip through the voxel encoder (what /v1/encode + decode does)
    mu = encode(v, gt[:, None].astype(np.float32))
    round_trip = iou(decode(g, mu) > threshold, gt)
    fitted_iou, fixed_point, fitted_shapes = _fitted(nets, mu, gt, threshold)
    fitted = {s: float(v.mean()) for s, v in fitted_iou.items()}
    # 3-4. prior samples: one piece after clean-up; 1-NNA against the real test shapes
    pieces, gen, real_source = _samples(g, prior, gt, threshold, seed, samples, real_train_voxels)
    judge_real = judge.predict(gt)[0].argmax(1) == cats
    return {
        "models": n,
        "renders_per_model": views,
        "reconstruction": recon,
        "mesh_round_trip_iou": float(round_trip.mean()),
        "mesh_round_trip_iou_refined": fitted[DEFAULT_FIT_STEPS],
        "refine_steps": DEFAULT_FIT_STEPS,
        "refine_method": "gradient",
        "mesh_round_trip_iou_by_fit_steps": fitted,
        "mesh_round_trip_iou_fixed_point": float(fixed_point.mean()),
        "fixed_point_steps": DEFAULT_FIXED_POINT_STEPS,
        "mesh_round_trip_per_category": {
            c: float(round_trip[cats == i].mean())
            for i, c in enumerate(CATEGORY_NAMES)
            if (cats == i).any()
        },
        "mesh_round_trip_per_category_fitted": {
            c: float(fitted_iou[DEFAULT_FIT_STEPS][cats == i].mean())
            for i, c in enumerate(CATEGORY_NAMES)
            if (cats == i).any()
        },
        # legs, poles, handles (training/evaluation/thin.py), after the default fitting
        **_thin_and_pooled("mesh_round_trip", fitted_shapes, gt, cats),
        "samples": pieces,
        "generation_vs_real_test": gen,
        "source_real": real_source,
        "judge_category_accuracy_on_real_test": float(judge_real.mean()),
    }


def _single_view(
    real_test: dict, nets: dict, judge: Judge, t_img: float, bank_categories, wide
) -> dict:
    """Step 1: every held-out render answered as the service answers it, by background kind;
    with a prototype encoder also the guess, the category hint and category=any; and the
    wide photographs, with the segmenter's looks and with one."""
    g, e = nets["G"], nets["E"]
    gt = real_test["voxels"].astype(bool)
    cats = real_test["category"].astype(int)
    n, views = real_test["images"].shape[:2]
    imgs = real_test["images"].reshape(n * views, *real_test["images"].shape[2:])
    turned_away: list[int] = []
    x = service_inputs(imgs, nets.get("S"), refused=turned_away)
    refused = np.isin(np.arange(len(imgs)), turned_away)  # answered with a 400: misses here
    probs = decode(g, service_codes(e, x, bank_categories))
    rec = probs > t_img
    gt_v, cat_v = np.repeat(gt, views, axis=0), np.repeat(cats, views)
    scores = np.where(refused, 0.0, iou(rec, gt_v))
    pc, _ = judge.predict(rec)
    right = (pc.argmax(1) == cat_v) & ~refused
    whole = one_piece_meshes(probs, t_img)
    kinds = real_test["background"].reshape(-1)
    groups = {"plain": np.isin(kinds, PLAIN_BACKGROUNDS), "photo": kinds == "photo"}
    recon = {
        name: {
            **_thin_and_pooled("", rec[sel], gt_v[sel], cat_v[sel]),
            "iou": float(scores[sel].mean()),
            "category_accuracy": float(right[sel].mean()),
            "renders": int(sel.sum()),
            "refused": int((sel & refused).sum()),
            # what a GLB request returns: the answer's default mesh in one piece
            "single_piece_mesh": float(whole[sel].mean()),
            "per_category_iou": {
                c: float(scores[sel & (cat_v == i)].mean())
                for i, c in enumerate(CATEGORY_NAMES)
                if (sel & (cat_v == i)).any()
            },
        }
        for name, sel in groups.items()
    }
    # ... and when the user names the category (/v1/reconstruct's hint; prototype encoders)
    if bank_categories is not None:
        # the service's guess (X-Gan3d-Category): the category with most softmax mass
        mass = category_mass(e, x, bank_categories, len(CATEGORY_NAMES))
        guess_right = (mass.argmax(1) == cat_v) & ~refused
        for name, sel in groups.items():
            recon[name]["guess_accuracy"] = float(guess_right[sel].mean())
            recon[name]["guess_mean_probability"] = float(mass[sel].max(1).mean())
        named = [CATEGORY_NAMES[c] for c in cat_v]
        hinted = iou(decode(g, hinted_codes(e, x, bank_categories, named)) > t_img, gt_v)
        # ... and the blend of every prototype (category=any: the encoder's own answer)
        every = iou(decode(g, every_codes(e, x, bank_categories)) > t_img, gt_v)
        hinted, every = np.where(refused, 0.0, hinted), np.where(refused, 0.0, every)
        for name, sel in groups.items():
            recon[name]["iou_with_category_hint"] = float(hinted[sel].mean())
            recon[name]["iou_all_prototypes"] = float(every[sel].mean())
    # ... and from wide photographs, as the service answers them and with one segmenter look
    if wide is not None and "S" in nets:
        wv = wide.shape[1]
        flat = wide.reshape(-1, *wide.shape[2:])
        gt_w, cat_w = np.repeat(gt, wv, axis=0), np.repeat(cats, wv)
        recon["photo_wide"] = {"renders": len(flat)}
        for key, passes in (("", SEGMENT_PASSES), ("_one_look", 1)):
            xw = service_inputs(flat, nets["S"], size=x.shape[-1], passes=passes)
            out = decode(g, service_codes(e, xw, bank_categories)) > t_img
            recon["photo_wide"][f"iou{key}"] = float(iou(out, gt_w).mean())
            right_w = judge.predict(out)[0].argmax(1) == cat_w
            recon["photo_wide"][f"category_accuracy{key}"] = float(right_w.mean())
    return recon


def _fitted(nets: dict, mu: np.ndarray, gt: np.ndarray, threshold: float):
    """Step 2's fitting, as /v1/encode answers: -> (IoU per fitting steps by gradient, IoU of the
    fixed-point refinement of bundles without the gradient graph, the shapes after the default
    fitting)."""
    g, v = nets["G"], nets["V"]
    # ... and as /v1/encode answers by default: the code fitted by gradient steps
    shapes = {
        s: decode(g, z) > threshold for s, z in fit_latents(g, mu, gt, FIT_STEPS_REPORTED).items()
    }
    fitted_iou = {s: iou(shape, gt) for s, shape in shapes.items()}
    # ... and the fixed-point refinement of bundles without the gradient graph
    z = mu
    for _ in range(DEFAULT_FIXED_POINT_STEPS):  # as /v1/encode without a gradient graph
        z = fixed_point_step(z, mu, encode(v, decode(g, z)[:, None]))
    fixed_point = iou(decode(g, z) > threshold, gt)
    return fitted_iou, fixed_point, shapes[DEFAULT_FIT_STEPS]


def _thin_and_pooled(prefix: str, answer: np.ndarray, gt: np.ndarray, cats: np.ndarray) -> dict:
    """Thin-part recall (overall and per category) of answers [N, R, R, R] bool; at 64^3 and
    above also their IoU pooled to 32^3, comparable with 32^3 bundles' figures."""
    recall = thin_part_recall(answer, gt)  # NaN for shapes without thin parts
    prefix = f"{prefix}_" if prefix else ""
    out = {
        f"{prefix}thin_part_recall": (
            None if np.isnan(recall).all() else float(np.nanmean(recall))
        ),
        f"{prefix}thin_part_recall_per_category": {
            c: float(np.nanmean(recall[sel]))
            for i, c in enumerate(CATEGORY_NAMES)
            if (sel := (cats == i) & ~np.isnan(recall)).any()
        },
    }
    if gt.shape[1] >= 64:
        f = gt.shape[1] // 32
        out[f"{prefix}iou_pooled32"] = float(iou(pool(answer, f), pool(gt, f)).mean())
    return out


def _samples(g, prior: MixturePrior, gt: np.ndarray, threshold: float, seed: int, samples: int,
             real_train_voxels):  # fmt: skip
    """Steps 3-4: prior samples in one piece, generation against the real test shapes; and
    the same with source "real", with how close each sample stays to its nearest train model."""
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**62, samples)
    z = np.stack([prior.sample(int(s)) for s in seeds])
    sample_probs = decode(g, z)
    pieces = single_piece_share(sample_probs, threshold)
    gen = _generation_vs(sample_probs > threshold, gt)
    # ... and with source "real" (kernels around the real train models' codes), with how close
    # each sample stays to its nearest real train model, beside the same for the test models
    real_source = None
    if prior.has_kernels:
        z = np.stack([prior.sample(int(s), source="real") for s in seeds])
        probs_r = decode(g, z)
        shapes_r = probs_r > threshold
        real_source = {
            "samples": single_piece_share(probs_r, threshold),
            "generation_vs_real_test": _generation_vs(shapes_r, gt),
        }
        if real_train_voxels is not None and len(real_train_voxels):
            train_v = real_train_voxels.astype(bool)
            real_source["nearest_train_iou"] = float(pairwise_iou(shapes_r, train_v).max(1).mean())
            real_source["test_nearest_train_iou"] = float(pairwise_iou(gt, train_v).max(1).mean())
    return pieces, gen, real_source


def readme_arithmetic(
    *, test: dict, concepts: dict, nets: dict, judge: Judge, threshold: float, attrs: np.ndarray
) -> dict:
    """Test sofas without armrests + (chair.has_armrests=1 - chair.has_armrests=0)."""
    ai = BINARY.index("has_armrests")
    sofa = CATEGORY_NAMES.index("sofa")
    sel = np.nonzero((test["category"] == sofa) & (attrs[:, ai] == 0.0))[0]
    if len(sel) == 0 or "chair.has_armrests=1" not in concepts:
        return {"armrests_present": None, "still_sofa": None, "exemplars": 0}
    direction = concepts["chair.has_armrests=1"] - concepts["chair.has_armrests=0"]
    mu = encode(nets["V"], test["voxels"][sel][:, None].astype(np.float32))
    out = decode(nets["G"], mu + direction) > threshold
    jc, ja = judge.predict(out)
    return {
        "armrests_present": float(np.mean(ja[:, ai] > 0.5)),
        "still_sofa": float(np.mean(jc.argmax(1) == sofa)),
        "exemplars": len(sel),
    }


EXAMPLE_TEMPERATURE = 0.5  # the README's sampling examples use this temperature


def example_seeds(
    *, prior: MixturePrior, concepts: dict, nets: dict, judge: Judge, threshold: float,
    categories: tuple[str, ...] = ("chair", "table", "sofa", "airplane"), tries: int = 100,
) -> dict[str, int | None]:  # fmt: skip
    """The README's example seeds, by a fixed rule: for each category, the first seed from 0
    whose sample around the category's concept (temperature 0.5, exactly as POST /v1/sample
    {"seeds": [s], "concept": c, "temperature": 0.5} draws it) the judge assigns to that
    category; None when no seed below ``tries`` is."""
    out: dict[str, int | None] = {}
    for c in categories:
        if c not in concepts:
            continue
        z = np.stack(
            [
                prior.sample(s, temperature=EXAMPLE_TEMPERATURE, centre=concepts[c])
                for s in range(tries)
            ]
        )
        pc, _ = judge.predict(decode(nets["G"], z) > threshold)
        hits = np.nonzero(pc.argmax(1) == CATEGORY_NAMES.index(c))[0]
        out[c] = int(hits[0]) if len(hits) else None
    return out
