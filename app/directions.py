"""Named edit directions from the bundle's "directions" file (fitted by
training/export/directions.py): a start latent plus amounts along them is an edited shape
(POST /v1/edit)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.latents import LatentError, weighted_sum


@dataclass(frozen=True)
class Direction:
    name: str
    category: str
    kind: str  # binary | continuous | discrete | discovered
    low: float  # amounts outside [low, high] are refused
    high: float
    meaning: str
    vector: np.ndarray  # [Z] float32

    def describe(self) -> dict:
        return {"name": self.name, "category": self.category, "kind": self.kind,
                "range": [self.low, self.high], "meaning": self.meaning}  # fmt: skip


class Directions:
    def __init__(self, directions: list[Direction], size: int) -> None:
        bad = [d.name for d in directions if d.vector.shape != (size,) or not d.low < d.high]
        if bad:
            raise LatentError(f"directions {bad} lack the latent size {size} or a valid range")
        self.by_name = {d.name: d for d in directions}

    @classmethod
    def load(cls, path: Path, size: int) -> Directions:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))["directions"]
        return cls([Direction(**{**d, "vector": np.asarray(d["vector"], np.float32)})
                    for d in raw], size)  # fmt: skip

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def apply(self, z: np.ndarray, edits: list[tuple[str, float]]) -> np.ndarray:
        """z [Z] + sum of amount * direction -> [Z] float32; unknown names and amounts out of
        range raise LatentError saying what is allowed."""
        terms = [(1.0, np.asarray(z, np.float32))]
        for name, amount in edits:
            d = self.by_name.get(name)
            if d is None:
                raise LatentError(
                    f"unknown direction {name!r}; GET /v1/directions lists them "
                    f"({', '.join(self.names()[:8])}, ...)"
                )
            if not d.low <= amount <= d.high:
                raise LatentError(f"amount {amount} for {name!r} is outside [{d.low}, {d.high}]")
            terms.append((amount, d.vector))
        return weighted_sum(terms)  # checks the result is finite float32
