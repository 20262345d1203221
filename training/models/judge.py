"""A small voxel classifier (category + binary attributes) used as a judge by the evaluation.

Trained on the train split with small random shifts and voxel noise so it also reads the
slightly noisy shapes a generator makes. Its own held-out accuracy is reported beside every
number it judges, so a weak judge is visible.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.data.shapes import CATEGORY_NAMES, all_attributes

BINARY = [name for name, kind, _ in all_attributes() if kind == "binary"]


class Judge(nn.Module):
    def __init__(self, resolution: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, r = 1, resolution
        while r > 4:
            layers += [nn.Conv3d(c, width, 3, 2, 1), nn.BatchNorm3d(width), nn.ReLU(True)]
            c, width, r = width, width * 2, r // 2
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(c * r**3, len(CATEGORY_NAMES) + len(BINARY))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, 1, R, R, R] -> category logits [B, C], attribute logits [B, A]."""
        out = self.head(self.trunk(x))
        return out[:, : len(CATEGORY_NAMES)], out[:, len(CATEGORY_NAMES) :]

    @torch.no_grad()
    def predict(self, vox: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """vox [N, R, R, R] (bool or {0, 1}) -> category probs [N, C], attribute probs [N, A]."""
        self.eval()
        cats, attrs = [], []
        for i in range(0, len(vox), batch):
            x = torch.from_numpy(np.asarray(vox[i : i + batch], dtype=np.float32))[:, None]
            c, a = self(x)
            cats.append(F.softmax(c, dim=1).numpy())
            attrs.append(torch.sigmoid(a).numpy())
        return np.concatenate(cats), np.concatenate(attrs)


def binary_targets(attrs: np.ndarray, attr_names: list[str]) -> np.ndarray:
    """Dataset attrs [N, A_all] (NaN = not applicable) -> [N, len(BINARY)] with NaN kept."""
    return attrs[:, [attr_names.index(n) for n in BINARY]]


def train_judge(
    vox: np.ndarray, cats: np.ndarray, attrs: np.ndarray, *, steps: int = 400, seed: int = 0
) -> Judge:
    """vox [N, R, R, R] uint8, cats [N] int, attrs [N, len(BINARY)] float with NaN."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    judge = Judge(vox.shape[1])
    opt = torch.optim.Adam(judge.parameters(), 2e-3)
    judge.train()
    for _ in range(steps):
        idx = rng.integers(0, len(vox), 64)
        x = torch.from_numpy(vox[idx].astype(np.float32))[:, None]
        shift = [int(s) for s in rng.integers(-1, 2, 3)]
        x = torch.roll(x, shifts=shift, dims=(2, 3, 4))
        flip = torch.rand(x.shape) < 0.01  # voxel noise
        x = torch.where(flip, 1 - x, x)
        c_logits, a_logits = judge(x)
        t = torch.from_numpy(attrs[idx])
        mask = ~torch.isnan(t)
        loss = F.cross_entropy(c_logits, torch.from_numpy(cats[idx]).long())
        if mask.any():
            loss = loss + F.binary_cross_entropy_with_logits(a_logits[mask], t[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return judge.eval()


def judge_accuracy(judge: Judge, vox: np.ndarray, cats: np.ndarray, attrs: np.ndarray) -> dict:
    pc, pa = judge.predict(vox)
    mask = ~np.isnan(attrs)
    return {
        "category_accuracy": float(np.mean(pc.argmax(1) == cats)),
        "attribute_accuracy": float(np.mean((pa[mask] > 0.5) == (attrs[mask] == 1.0))),
    }
