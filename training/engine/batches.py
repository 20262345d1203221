"""Training batches: the train split held in memory, drawn by (seed, step, rank), with the
image augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.data.procedural import load_split
from training.data.real_set import load_real
from training.engine import attributes
from training.models.networks import images_to_input


def augment_images(
    images: torch.Tensor, gen: torch.Generator, color_jitter: float = 0.0
) -> torch.Tensor:
    """Random zoom (80-100% of the frame) and shift, so E tolerates framing; with
    ``color_jitter`` j > 0 also brightness, contrast and saturation each scaled by U(1-j, 1+j),
    so E cannot tell models apart by their colours alone. [B, 3, S, S] in [-1, 1]."""
    b = images.shape[0]
    scale = 0.8 + 0.2 * torch.rand(b, generator=gen)
    shift = (torch.rand(b, 2, generator=gen) * 2 - 1) * (1 - scale)[:, None]
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    if color_jitter <= 0:
        return out
    bright, contrast, sat = 1 + (torch.rand(3, b, 1, 1, 1, generator=gen) * 2 - 1) * color_jitter
    x = (out + 1) / 2 * bright
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * sat
    x = x.mean((1, 2, 3), keepdim=True) + (x - x.mean((1, 2, 3), keepdim=True)) * contrast
    return x.clamp(0, 1) * 2 - 1


class Batches:
    """The train split held in memory as uint8 tensors; batches drawn by (seed, step, rank).
    With real models, a ``real_fraction`` of each batch comes from them (a few hundred real
    models beside thousands of procedural shapes would otherwise be a rounding error). With
    ``ties``, the procedural shapes' binary attributes and counterfactual grids too
    (training/engine/attributes.py)."""

    def __init__(
        self,
        folder: Path,
        real_folder: Path | None = None,
        real_fraction: float = 0.0,
        ties: bool = False,
    ):
        d = load_split(folder, "train")
        self.parts = [(torch.from_numpy(d["voxels"]), torch.from_numpy(d["images"]))]
        self.fractions = [1.0 - real_fraction]
        if ties:  # only the tied attributes (attributes.TIED); the others read as absent
            self.binary = torch.from_numpy(attributes.tied_binary(d["attrs"]))
            cf = attributes.counterfactuals(folder)
            tied = attributes.TIED[np.maximum(cf["attribute"], 0)] & (cf["attribute"] >= 0)
            self.cf_voxels = torch.from_numpy(cf["voxels"])  # [N, SLOTS, R, R, R] uint8
            # [N, SLOTS] index into BINARY, -1: empty or not tied
            self.cf_attribute = torch.from_numpy(np.where(tied, cf["attribute"], -1))
        if real_folder is not None and real_fraction > 0:
            r = load_real(real_folder, "train")
            self.parts.append((torch.from_numpy(r["voxels"]), torch.from_numpy(r["images"])))
            self.fractions = [1.0 - real_fraction, real_fraction]

    def batch(
        self, rng: np.random.Generator, size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> voxels [B, 1, R, R, R] float in {0, 1}, images [B, 3, S, S] (normalised), each
        sample's row in the parts concatenated [B] int64 and whether it is mirrored [B] bool."""
        counts = np.diff(np.round(np.cumsum([0.0, *self.fractions]) * size).astype(int))
        vox_parts, img_parts, row_parts, offset = [], [], [], 0
        for (voxels, images), k in zip(self.parts, counts, strict=True):
            idx = torch.from_numpy(rng.integers(0, len(voxels), k))
            view = torch.from_numpy(rng.integers(0, images.shape[1], k))
            vox_parts.append(voxels[idx].float()[:, None])  # [k, 1, R, R, R] in {0, 1}
            img_parts.append(images_to_input(images[idx, view]))
            row_parts.append(idx + offset)
            offset += len(voxels)
        vox, img = torch.cat(vox_parts), torch.cat(img_parts)
        # mirror augmentation: x -> -x in the world is a left-right flip of the photograph
        flip = torch.from_numpy(rng.random(size) < 0.5)
        vox[flip] = vox[flip].flip(2)
        img[flip] = img[flip].flip(3)
        return vox, img, torch.cat(row_parts), flip

    def ties(
        self, rows: torch.Tensor, flip: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For a batch (``rows``, ``flip`` from :meth:`batch`) -> binary attributes [B, A] (NaN:
        not applicable or not tied, and for real models), then for every tied attribute of every
        procedural shape: its batch position [M], the attribute [M] and the shape with that
        attribute toggled [M, 1, R, R, R] (tied attributes only)."""
        proc = rows < len(self.binary)
        binary = torch.full((len(rows), self.binary.shape[1]), float("nan"))
        binary[proc] = self.binary[rows[proc]]
        slots = torch.full((len(rows), self.cf_attribute.shape[1]), -1, dtype=torch.int64)
        slots[proc] = self.cf_attribute[rows[proc]]
        pos, slot = torch.nonzero(slots >= 0, as_tuple=True)
        grids = self.cf_voxels[rows[pos], slot].float()[:, None]
        grids[flip[pos]] = grids[flip[pos]].flip(2)  # mirrored like the batch's own grids
        return binary, pos, slots[pos, slot], grids
