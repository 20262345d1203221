"""The image encoder's prototype codes (the bundle's role "prototypes" file): with the encoder's
logits over them, an answer restricted to one category's codes (/v1/reconstruct).

The encoder's own answer is the softmax blend over all K codes. When it is unsure, that blend
mixes categories (part chair, part sofa) and G draws something between them. /v1/reconstruct
therefore blends only one category's codes: the one the user names (``category`` hint), or else
the one the encoder gives most softmax mass (its guess). Measured on the real validation
renders (bundle 3.4): the guessed-category blend scores IoU 0.322 / 0.300 on white/plain and on
photographs vs 0.320 / 0.272 for the blend of all codes (paired by model +0.015, SE 0.003); the
true category 0.352 / 0.344. ``ANY`` asks for the blend of all codes. (Since bundle 3.7 the
encoder's logits are already the mean of the photo's and its mirror image's, inside the ONNX
graph: training/models/prototypes.py, answer_logits.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.latents import LatentError

ANY = "any"  # blend every prototype code, whatever its category (the encoder's own answer)
# a category's codes are blended by softmax(logits / BLEND_TEMPERATURE): a little softer than the
# encoder's own softmax. Chosen on the real validation renders (bundle 3.9.0, paired by model):
# 1.5 vs 1: white/plain +0.006 IoU (SE 0.003), photographs +0.010 (SE 0.004), category as often
# right; 2 and 3 no better. The guess (which category) still reads the encoder's own softmax.
BLEND_TEMPERATURE = 1.5


class Prototypes:
    def __init__(self, bank: np.ndarray, categories: list[str], size: int) -> None:
        if bank.ndim != 2 or bank.shape[1] != size or len(categories) != len(bank):
            raise LatentError(f"prototypes file: bank [K, {size}] and categories [K] expected")
        self.bank = bank.astype(np.float32)  # [K, Z]
        self.categories = np.asarray(categories)  # [K] str
        self.names = sorted(set(categories))

    @classmethod
    def load(cls, path: Path, size: int) -> Prototypes:
        with np.load(path) as d:
            return cls(d["bank"], [str(c) for c in d["categories"]], size)

    def check(self, category: str) -> None:
        """Raises LatentError naming the known categories when ``category`` is neither one of
        them nor ``ANY``."""
        if category != ANY and category not in self.names:
            raise LatentError(
                f"unknown category {category!r}; use one of {', '.join(self.names)}, or {ANY}"
            )

    def mass(self, logits: np.ndarray) -> np.ndarray:
        """logits [N, K] -> [N, len(names)] float64: each category's share of the softmax mass
        (columns in the order of ``names``)."""
        w = _softmax(logits)
        return np.stack([w[:, self.categories == c].sum(1) for c in self.names], 1)

    def guess(self, logits: np.ndarray) -> tuple[str, float]:
        """logits [K] -> (category, probability): the category holding the most softmax mass,
        i.e. what the encoder takes the photo to show."""
        mass = self.mass(logits[None])[0]
        best = int(np.argmax(mass))
        return self.names[best], float(mass[best])

    def blend(self, logits: np.ndarray, category: str) -> np.ndarray:
        """logits [N, K] -> [N, Z] float32: the mean of ``category``'s codes weighted by
        softmax(logits / BLEND_TEMPERATURE); an unknown category raises LatentError (see
        :meth:`check`). (For ``ANY``, the encoder's own answer blends every code, at 1.)"""
        if category == ANY:
            raise LatentError(f"{ANY!r} is every category: use the encoder's own answer")
        self.check(category)
        keep = self.categories == category
        w = _softmax(logits[:, keep] / BLEND_TEMPERATURE)
        return (w @ self.bank[keep].astype(np.float64)).astype(np.float32)

    def blend_every(self, logits: np.ndarray) -> np.ndarray:
        """logits [N, K] -> [N, Z] float32: every code weighted by softmax(logits), as the
        encoder's own answer blends them (for logits the service pooled over several views)."""
        return (_softmax(logits) @ self.bank.astype(np.float64)).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """[N, K] -> [N, K] float64, rows summing to 1."""
    lg = logits.astype(np.float64)
    w = np.exp(lg - lg.max(1, keepdims=True))
    return w / w.sum(1, keepdims=True)
