"""Tied attributes (``Stage.tie_attributes``): one latent dimension per binary attribute, shared
by every category that has it, so a direction found in one category works in another.

Why: the README's arithmetic ("chair with armrests - chair without + sofa without") found no
armrests on sofas (9%): the latent encoded armrests separately per category (the chairs'
direction added armrests to 0 of 12 validation sofas even at 2x, the sofas' own to 75%).
Only attributes that more than one category has are tied (``TIED``: has_armrests for chairs
and sofas, pedestal_base for chairs and tables, has_legs for sofas and shelves); the others
already transfer within their one category. Two terms tie them, on the procedural train shapes
(real models carry no attributes):
1. supervision: V's code in dimension j (binary attribute j of ``judge.BINARY``) is pulled to
   +TIE_VALUE when the shape has the attribute and -TIE_VALUE when it lacks it;
2. counterfactuals: the same shape with that one attribute toggled (``make_shape`` overrides
   change only what the attribute owns) must decode from the shape's code with dimension j
   negated, so G reads the attribute from that dimension in every category alike. Armrests
   are a few dozen of 32,768 voxels, so besides the plain reconstruction loss the voxels where
   the two shapes differ get a loss of their own (:func:`difference_loss`); without it, 330
   steps moved the armrests onto no validation sofa from the tied dimension alone. (Tying all
   21 binary attributes so gave 92% armrests on sofas after 300 steps but pulled the voxel
   round trip from 0.93 to 0.53 on validation: rebuilding G for every attribute at once.)
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.data.procedural import attribute_names, load_split
from training.data.shapes import CATEGORY_NAMES, all_attributes, make_shape
from training.models.judge import BINARY, binary_targets

log = logging.getLogger(__name__)
TIE_VALUE = 1.5  # |code| in an attribute's dimension (the prior's units: ~1.5 std)
_SHARED = {name for name, kind, cats in all_attributes() if kind == "binary" and len(cats) > 1}
TIED = np.array([name in _SHARED for name in BINARY])  # [len(BINARY)] bool
SLOTS = 3  # binary attributes per category, at most
CACHE = "counterfactuals-{split}.npz"  # beside the dataset's shards (not matched by their glob)


def _toggled(args: tuple[int, int, list[tuple[int, str, float]], int]) -> np.ndarray:
    """(category, seed, [(slot, attribute, value)], resolution) -> packed grids [SLOTS, R^3/8]."""
    cat, seed, flips, r = args
    out = np.zeros((SLOTS, r**3 // 8), np.uint8)
    for slot, name, value in flips:
        shape = make_shape(CATEGORY_NAMES[cat], seed, **{name: 1.0 - value})
        out[slot] = np.packbits(shape.voxels(r).reshape(-1))
    return out


def counterfactuals(folder: Path, split: str = "train", *, workers: int = 2) -> dict:
    """For every procedural shape of a split, each of its binary attributes toggled (cached in
    the dataset folder) -> {"voxels": [N, SLOTS, R, R, R] uint8, "attribute": [N, SLOTS] int64
    index into BINARY (-1: empty slot)}."""
    path = Path(folder) / CACHE.format(split=split)
    if not path.is_file():
        d = load_split(folder, split)
        r = d["voxels"].shape[1]
        binary = binary_targets(d["attrs"], attribute_names())
        jobs, index = [], np.full((len(binary), SLOTS), -1, np.int64)
        for i, row in enumerate(binary):
            have = np.nonzero(~np.isnan(row))[0]
            index[i, : len(have)] = have
            flips = [(s, BINARY[j], float(row[j])) for s, j in enumerate(have)]
            jobs.append((int(d["category"][i]), int(d["seed"][i]), flips, r))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            grids = list(tqdm(pool.map(_toggled, jobs, chunksize=16), total=len(jobs),
                              desc=f"counterfactuals {split}"))  # fmt: skip
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, voxels=np.stack(grids), attribute=index)
        tmp.replace(path)  # atomic: a half-written cache is never read
        log.info("counterfactual grids for %d %s shapes -> %s", len(jobs), split, path)
    with np.load(path) as f:
        packed, index = f["voxels"], f["attribute"]
    r = round((packed.shape[2] * 8) ** (1 / 3))
    voxels = np.unpackbits(packed, axis=2).reshape(len(packed), SLOTS, r, r, r)
    return {"voxels": voxels, "attribute": index}


def tied_binary(attrs: np.ndarray) -> np.ndarray:
    """Dataset attrs [N, A_all] (NaN = not applicable) -> [N, len(BINARY)] with only the tied
    attributes' values; the others read as NaN (not supervised, never toggled)."""
    binary = binary_targets(attrs, attribute_names())
    binary[:, ~TIED] = np.nan
    return binary


def code_targets(binary: torch.Tensor) -> torch.Tensor:
    """Binary attributes [B, A] in {0, 1} or NaN -> the codes' targets in dims 0..A-1 (NaN kept)."""
    return (binary * 2 - 1) * TIE_VALUE


def supervision_loss(mu: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Term 1. mu [B, Z], binary [B, A] (NaN: not applicable) -> mean squared distance of the
    known attribute dimensions from their targets (0 when none is known)."""
    target = code_targets(binary)
    known = ~torch.isnan(target)
    if not known.any():
        return torch.zeros((), device=mu.device)
    return (mu[:, : target.shape[1]].float()[known] - target[known]).pow(2).mean()


def difference_loss(
    logits: torch.Tensor, toggled: torch.Tensor, original: torch.Tensor
) -> torch.Tensor:
    """Term 2's focus: BCE of the counterfactual decodes over only the voxels where the toggled
    shape differs from the original, averaged over those voxels (0 when none differ).
    logits, toggled, original [M, 1, R, R, R]."""
    differ = toggled != original
    if not differ.any():
        return torch.zeros((), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float()[differ], toggled[differ])


def toggle(z: torch.Tensor, attribute: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Term 2's codes: z [B, Z] with dimension ``attribute`` [B] (index into BINARY) set to the
    target of the toggled value; binary [B, A] holds each shape's own values."""
    rows = torch.arange(len(z), device=z.device)
    value = 1.0 - binary[rows, attribute]
    out = z.clone()
    out[rows, attribute] = code_targets(value).to(z.dtype)
    return out
