"""Prototype answers for the image encoder (``ModelConfig.e_prototypes``, stage mode "prototype").

Why: single-view reconstruction networks mostly recognise rather than reconstruct (Tatarchenko
et al., "What Do Single-view 3D Reconstruction Networks Learn?", CVPR 2019: a retrieval baseline
over clustered training shapes matches them). Our regressing E put real photographs *between*
shapes, where G draws blobs. Measured on the cpu run behind bundle 3.1.0 (real test, 70 models):
E's regression scored IoU 0.29; always answering the best single decoded training code of the
right category would score 0.36; the best of 1,024 decoded training codes (an oracle) 0.56.

So E learns a classifier over K prototype codes and answers with their softmax-weighted mean:
1. bank: V's codes of the real train models and of their mirror images, filled up to K with a
   seeded random subset of procedural train shapes (G and V frozen, eval mode, as served);
2. targets: the IoU of every train shape (and its mirror image) with every decoded prototype,
   computed once; a sample's soft label is softmax(IoU / temperature) over the bank;
3. each prototype step trains E (trunk + head) on the cross-entropy against those labels.
The answer stays a latent, so G, arithmetic and the bundle's interface are unchanged.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

CHUNK = 256  # shapes per matmul when computing IoUs
THRESHOLD = 0.5  # occupancy threshold for the decoded prototypes


def _codes(V: nn.Module, voxels: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """voxels [N, R, R, R] uint8 -> V's mu [N, Z] float32 (V in eval mode)."""
    out = [
        V(voxels[i : i + CHUNK].float()[:, None].to(dev))[0].float().cpu()
        for i in range(0, len(voxels), CHUNK)
    ]
    return torch.cat(out)


def _decode(G: nn.Module, codes: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """codes [K, Z] -> occupancy [K, R^3] float32 in {0, 1} (G in eval mode)."""
    out = [
        (torch.sigmoid(G(codes[i : i + CHUNK].to(dev)).float()) > THRESHOLD).flatten(1).cpu()
        for i in range(0, len(codes), CHUNK)
    ]
    return torch.cat(out).float()


def _procedural_order(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).permutation(n))


def choose_bank(
    V: nn.Module, voxel_parts: list[torch.Tensor], k: int, seed: int, dev: torch.device
) -> torch.Tensor:
    """Step 1. voxel_parts: [procedural, real?] train grids [N, R, R, R] uint8 -> bank [K, Z].
    Real models (and mirror images) first, then procedural shapes in a seeded random order."""
    procedural, real = voxel_parts[0], voxel_parts[1] if len(voxel_parts) > 1 else None
    order = _procedural_order(len(procedural), seed)
    candidates = [] if real is None else [real, real.flip(1)]  # flip(1): x, as the batches do
    candidates.append(procedural[order[:k]])
    chosen = torch.cat(candidates)[:k]
    if len(chosen) < k:
        raise ValueError(f"e_prototypes={k} but only {len(chosen)} train shapes to choose from")
    return _codes(V, chosen, dev)


def has_prototypes(e: nn.Module) -> bool:
    """Whether an image encoder answers from a filled prototype bank."""
    return getattr(e, "proto", None) is not None and bool(e.proto.ready)


def answer_logits(e: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logits a served prototype encoder answers with: the mean of E's logits for the image
    and for its mirror image (a left-right flip, as training's mirror augmentation makes).
    Chosen on the real validation renders with the guessed-category answer: +0.011 IoU (paired
    by model, SE 0.005), the guess right 70 -> 74% on white. [B, 3, S, S] -> [B, K]."""
    return (e(x, prototype_logits=True) + e(x.flip(3), prototype_logits=True)) / 2


@torch.no_grad()
def prototype_logits(e: nn.Module, x: np.ndarray, batch: int = 64) -> torch.Tensor:
    """x [N, 3, S, S] float32 (network input) -> the served prototype logits [N, K]
    (:func:`answer_logits`; E in eval mode)."""
    return torch.cat([answer_logits(e, torch.from_numpy(x[i : i + batch]))
                      for i in range(0, len(x), batch)])  # fmt: skip


def bank_categories(categories: list[np.ndarray], k: int, seed: int) -> np.ndarray:
    """Each bank entry's category, as :func:`choose_bank` laid the bank out: categories
    [procedural [N], real [N]?] of the train shapes (real may be empty) -> [K] int."""
    procedural = np.asarray(categories[0])
    real = np.asarray(categories[1]) if len(categories) > 1 else np.zeros(0, int)
    order = _procedural_order(len(procedural), seed).numpy()
    return np.concatenate([real, real, procedural[order]])[:k].astype(np.int64)


@torch.no_grad()
def shape_targets(
    G: nn.Module, bank: torch.Tensor, voxel_parts: list[torch.Tensor], dev: torch.device
) -> torch.Tensor:
    """Step 2. IoU of every train shape with every decoded prototype:
    [sum N, 2 (as is / mirrored), K] float16, rows in the order of the parts concatenated."""
    grids = _decode(G, bank, dev)  # [K, R^3]
    sizes = grids.sum(1)
    rows = []
    for voxels in voxel_parts:
        for i in range(0, len(voxels), CHUNK):
            v = voxels[i : i + CHUNK]
            both = []
            for x in (v, v.flip(1)):
                x = x.flatten(1).float()
                inter = x @ grids.T
                union = x.sum(1, keepdim=True) + sizes[None] - inter
                both.append((inter / union.clamp_min(1.0)).half())
            rows.append(torch.stack(both, 1))
    return torch.cat(rows)


@torch.no_grad()
def prepare(
    E: nn.Module,
    G: nn.Module,
    V: nn.Module,
    voxel_parts: list[torch.Tensor],
    *,
    seed: int,
    dev: torch.device,
) -> torch.Tensor:
    """Fill E's bank if this run has not yet (steps 1) and return the targets (step 2)."""
    head = E.proto
    if not bool(head.ready):
        head.bank.copy_(choose_bank(V, voxel_parts, len(head.bank), seed, dev).to(dev))
        head.ready.fill_(1)
        log.info("prototype bank: %d codes", len(head.bank))
    targets = shape_targets(G, head.bank.float(), voxel_parts, dev)
    best = targets.float().max(2).values.mean()
    log.info("prototype targets for %d train shapes; best-prototype IoU %.3f", len(targets), best)
    return targets


@torch.no_grad()
def refill_bank(
    E: nn.Module, V: nn.Module, voxel_parts: list[torch.Tensor], *, seed: int, dev: torch.device
) -> None:
    """After G and V trained on (a stage after the prototype stages): the same bank shapes, in
    the same order, re-encoded by the new V, so E's classifier keeps its meaning (V in eval)."""
    E.proto.bank.copy_(choose_bank(V, voxel_parts, len(E.proto.bank), seed, dev).to(dev))
    log.info("prototype bank re-encoded: %d codes", len(E.proto.bank))


def soft_cross_entropy(logits: torch.Tensor, iou: torch.Tensor, temperature: float) -> torch.Tensor:
    """Step 3. logits [B, K], iou [B, K] with the batch's shapes -> mean cross-entropy against
    softmax(iou / temperature) (credit to every prototype about as good as the best)."""
    target = torch.softmax(iou.float() / temperature, dim=1)
    return -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
