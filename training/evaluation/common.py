"""What every evaluation shares: the networks run over arrays (encode, decode), the service's
own answer to a photo (service_codes: the blend of the guessed category's prototype codes),
IoU (app/overlap.py's, re-exported), generation metrics, and the splits a run trained on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from app.overlap import iou, pairwise_iou  # noqa: F401  (re-exported for the evaluations)
from app.prototypes import Prototypes
from training.data.procedural import DATA_PRESETS, attribute_names, build, load_split
from training.data.real_set import load_real, real_dataset_for
from training.data.shapes import CATEGORY_NAMES
from training.models.judge import Judge, binary_targets, train_judge
from training.models.prototypes import bank_categories, has_prototypes, prototype_logits

# judges trained in this process, by run config, data root, steps and seed (judge_for)
_JUDGES: dict[tuple[str, str, int, int], Judge] = {}


@torch.no_grad()
def encode(net: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Encoder mu for inputs x (float32 network input) -> [N, Z]."""
    return np.concatenate(
        [net(torch.from_numpy(x[i : i + batch]))[0].numpy() for i in range(0, len(x), batch)]
    )


def served_prototypes(e: nn.Module, bank_cats: np.ndarray) -> Prototypes:
    """A prototype encoder's bank as the service loads it from prototypes.npz (app/prototypes.py):
    the evaluation answers photos with the service's own guess and blend."""
    bank = e.proto.bank.detach().cpu().numpy().astype(np.float32)
    return Prototypes(bank, [CATEGORY_NAMES[c] for c in bank_cats], bank.shape[1])


def hinted_codes(
    e: nn.Module, x: np.ndarray, bank_cats: np.ndarray, named: list[str]
) -> np.ndarray:
    """What /v1/reconstruct answers when told the category: per photo, the blend of the named
    category's prototype codes. x [N, 3, S, S] float32, named [N] -> [N, Z]."""
    protos, logits = served_prototypes(e, bank_cats), prototype_logits(e, x).numpy()
    return np.concatenate(
        [protos.blend(row[None], c) for row, c in zip(logits, named, strict=True)]
    )


def every_codes(e: nn.Module, x: np.ndarray, bank_cats: np.ndarray) -> np.ndarray:
    """category=any: every prototype code by the encoder's own softmax. -> [N, Z]."""
    return served_prototypes(e, bank_cats).blend_every(prototype_logits(e, x).numpy())


def category_mass(e: nn.Module, x: np.ndarray, bank_cats: np.ndarray, n: int) -> np.ndarray:
    """A prototype encoder's softmax mass per category (what the service reports as its guess).
    x [N, 3, S, S] float32, bank_cats [K] int -> [N, n] float, columns in CATEGORY_NAMES order,
    rows summing to 1."""
    protos = served_prototypes(e, bank_cats)
    mass = protos.mass(prototype_logits(e, x).numpy())
    out = np.zeros((len(x), n))
    out[:, [CATEGORY_NAMES.index(c) for c in protos.names]] = mass
    return out


def service_codes(e: nn.Module, x: np.ndarray, bank_cats: np.ndarray | None) -> np.ndarray:
    """What /v1/reconstruct answers without a hint: for a prototype encoder, the blend of the
    prototypes of the category it gives most mass (app/prototypes.py's guess and blend); else
    E's mu. x [N, 3, S, S] float32 network input -> [N, Z]."""
    if bank_cats is None:
        return encode(e, x)
    protos, logits = served_prototypes(e, bank_cats), prototype_logits(e, x).numpy()
    return np.concatenate([protos.blend(row[None], protos.guess(row)[0]) for row in logits])


def prototype_categories(cfg, e: nn.Module, data_root: Path) -> np.ndarray | None:
    """Each prototype code's category [K] int, as the bundle's prototypes.npz names them, for a
    prototype encoder; None for any other."""
    if not has_prototypes(e):
        return None
    return bank_categories(train_categories(cfg, data_root), len(e.proto.bank), cfg.seed)


def train_categories(cfg, data_root: Path) -> list[np.ndarray]:
    """Categories of the train shapes in the order training holds them: [procedural, real]
    (real empty for a run without real models)."""
    procedural = load_split(build(DATA_PRESETS[cfg.data], data_root), "train")["category"]
    return [procedural, real_splits(cfg, data_root)["train"]["category"]]


@torch.no_grad()
def decode(g: nn.Module, z: np.ndarray, batch: int = 64) -> np.ndarray:
    """Latents [N, Z] -> occupancy probabilities [N, R, R, R] float32."""
    out = [
        g.probabilities(torch.from_numpy(np.asarray(z[i : i + batch], dtype=np.float32)))
        for i in range(0, len(z), batch)
    ]
    return torch.cat(out)[:, 0].numpy()


def mean_metrics(draws: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each figure over several draws of generation_metrics."""
    return {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}


def generation_metrics(samples: np.ndarray, refs: np.ndarray) -> dict[str, float]:
    """MMD, COV, 1-NNA with d = 1 - IoU (see module doc). samples, refs: bool grids."""
    d_sr = 1.0 - pairwise_iou(samples, refs)  # [S, R]
    mmd = float(d_sr.min(axis=0).mean())
    cov = float(len(np.unique(d_sr.argmin(axis=1))) / len(refs))
    both = np.concatenate([samples, refs])
    labels = np.r_[np.zeros(len(samples)), np.ones(len(refs))]
    d = 1.0 - pairwise_iou(both, both)
    np.fill_diagonal(d, np.inf)
    nna = float(np.mean(labels[d.argmin(axis=1)] == labels))
    return {"mmd": mmd, "cov": cov, "one_nna": nna}


def voxels_input(v: np.ndarray) -> np.ndarray:
    """Voxel grids [N, R, R, R] -> the voxel encoder's input [N, 1, R, R, R] float32."""
    return v[:, None].astype(np.float32)


def real_splits(cfg, data_root: Path) -> dict[str, dict[str, np.ndarray]]:
    """The real dataset's splits when the run trained on it; otherwise empty splits."""
    if cfg.real_fraction <= 0:
        r = cfg.model.resolution
        empty = {"voxels": np.zeros((0, r, r, r), np.uint8), "category": np.zeros(0, np.int16),
                 "attrs": np.zeros((0, len(attribute_names())), np.float32)}  # fmt: skip
        return {"train": empty, "val": empty, "test": empty}
    folder = real_dataset_for(cfg, data_root)
    return {s: load_real(folder, s) for s in ("train", "val", "test")}


def train_pool(cfg, data_root: Path) -> dict[str, np.ndarray]:
    """The run's train shapes, procedural then real: voxels [N, R, R, R] uint8, category [N],
    attrs [N, A_all] (real models carry a category, no attributes)."""
    train = load_split(build(DATA_PRESETS[cfg.data], data_root), "train")
    real = real_splits(cfg, data_root)["train"]
    return {k: np.concatenate([train[k], real[k]]) for k in ("voxels", "category", "attrs")}


def judge_for(cfg, data_root: Path, *, steps: int, seed: int) -> Judge:
    """The voxel judge (category + binary attributes) trained on :func:`train_pool`, once per
    process for a run's data, steps and seed: the evaluation and the export's direction
    measurements share it."""
    key = (json.dumps(cfg.to_dict(), sort_keys=True), str(Path(data_root).resolve()), steps, seed)
    if key not in _JUDGES:
        pool = train_pool(cfg, data_root)
        attrs = binary_targets(pool["attrs"], attribute_names())
        _JUDGES[key] = train_judge(pool["voxels"], pool["category"], attrs, steps=steps, seed=seed)
    return _JUDGES[key]
