"""Whether a photo shows one of the model's categories at all (/v1/reconstruct's "Not
recognised"; the bundle's roles "recognizer" and "recognition").

The shape encoder cannot tell: it learned to see from a few hundred 3D models, so whatever a
photo shows lands near some prototype (a cat came back as a lamp, stated 0.98), and its logits
and features refuse only 10-13% of photos of other things at 3% of in-category ones refused
(docs/model_history.md). A network trained on ImageNet knows photos of everything: the
recognizer's features of a photo are compared with those of the train renders, and a photo
whose k nearest renders are not similar enough (mean cosine under the threshold, chosen so
that 3% of the validation renders fall under it) is not recognised. Several views of one
object: the mean of their scores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.latents import LatentError


class Recognition:
    def __init__(self, references: np.ndarray, k: int, threshold: float) -> None:
        if references.ndim != 2 or not 1 <= k <= len(references):
            raise LatentError("recognition file: references [N, D] and 1 <= k <= N expected")
        refs = references.astype(np.float32)
        self.references = refs / np.maximum(np.linalg.norm(refs, axis=1, keepdims=True), 1e-12)
        self.k, self.threshold = int(k), float(threshold)

    @classmethod
    def load(cls, path: Path, features: int) -> Recognition:
        with np.load(path) as d:
            refs = d["references"]
            if refs.ndim != 2 or refs.shape[1] != features:
                raise LatentError(f"recognition file: references [N, {features}] expected")
            return cls(refs, int(d["k"]), float(d["threshold"]))

    def score(self, features: np.ndarray) -> float:
        """features [V, D] (views of one object) -> the mean over views of the mean cosine
        similarity to the k nearest references."""
        f = features.astype(np.float32)
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        sims = f @ self.references.T  # [V, N]
        top = np.partition(sims, -self.k, axis=1)[:, -self.k :]
        return float(top.mean())

    def recognised(self, score: float) -> bool:
        return score >= self.threshold
